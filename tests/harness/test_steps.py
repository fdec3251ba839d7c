"""A trial counting optimizer steps instead of epochs (``steps``, Hyperformer's 65,536): it stops at that
step inside its last epoch, its schedule spans those steps, and it is validated and tested at the end."""

from peftbench.harness import setup as trial_setup
from peftbench.harness.config import TrialConfig
from peftbench.harness.trial import run_trial


def test_a_trial_of_n_steps_takes_n_optimizer_steps_and_validates_at_the_last(tmp_path, monkeypatch):
    seen = []

    def evaluate(model, tokenizer, task, fmt, rows, batch_size, device):  # generation is slow: count instead
        return {"accuracy": 50.0, "invalid": 0, "examples": len(rows)}

    real_close = trial_setup.Engine.close

    def close(engine):
        seen.append((engine.optimizer_steps, engine.opt.total_steps, engine.scheduler.get_last_lr()[0]))
        return real_close(engine)

    monkeypatch.setattr(trial_setup, "generate_and_score", evaluate)
    monkeypatch.setattr(trial_setup.Engine, "close", close)
    # rte's 160 fixture rows in batches of 32: 5 steps an epoch; 7 steps are 2 epochs, the second cut short
    cfg = TrialConfig(method="bitfit", task="rte", learning_rate=1e-2, data="fixtures", epochs=20, steps=7,
                      batch_size=32, warmup_steps=1, max_source_length=24)
    record = run_trial(cfg, tmp_path)
    assert record["status"] == "ok", record["error"]
    (steps, total, last_lr), *_ = seen
    assert (steps, total, last_lr) == (7, 7, 0.0)  # the schedule decays to 0 at the last step
    assert record["epochs"] == 2 and [at["step"] for at in record["evaluated_at"]] == [5, 7]
