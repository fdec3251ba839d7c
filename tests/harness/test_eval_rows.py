"""On a CPU a trial generates its validation and test rows 64 at a time (the smoke's generation is per-call
overhead), and the predictions are those of its training micro-batch."""

from peftbench.budgets.plan import BatchPlan
from peftbench.harness.config import TrialConfig
from peftbench.harness.generation import generate
from peftbench.harness.setup import CPU_EVAL_ROWS, setup


def test_a_cpu_trial_generates_more_rows_at_once_with_the_same_predictions():
    cfg = TrialConfig(method="lora", task="sst2", learning_rate=1e-3, model="tiny-t5", data="fixtures", epochs=1,
                      warmup_steps=0)
    trial = setup(cfg, BatchPlan(micro_batch=4, accumulation=1, chosen_by="fixed"))
    try:
        assert trial.eval_rows == CPU_EVAL_ROWS > trial.plan.micro_batch
        rows, task, model = trial.splits["sst2"]["validation"][:12], trial.task.members[0], trial.engine.module
        assert len(rows) > trial.plan.micro_batch  # else both would be one batch
        assert (generate(model, trial.tokenizer, task, rows, trial.eval_rows, trial.device)
                == generate(model, trial.tokenizer, task, rows, trial.plan.micro_batch, trial.device))
    finally:
        trial.engine.close()
