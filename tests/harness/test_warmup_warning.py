"""A warm-up longer than the run is said in one WARNING line: the run would otherwise learn nothing
and report 0.00 with no reason given."""

import logging

from peftbench.budgets.plan import BatchPlan
from peftbench.harness.config import TrialConfig
from peftbench.harness.setup import optimization, warn_long_warmup


def warnings_for(cfg: TrialConfig, caplog, *, train_rows: int, epochs: int) -> list[logging.LogRecord]:
    opt = optimization(cfg, BatchPlan(micro_batch=8, accumulation=1, chosen_by="fixed"),
                       train_rows=train_rows, epochs=epochs, world=1)
    with caplog.at_level(logging.WARNING, logger="peftbench.harness.setup"):
        warn_long_warmup(opt, trial_id=cfg.trial_id)
    return [r for r in caplog.records if r.levelno == logging.WARNING]


def test_the_authors_warmup_on_a_one_epoch_run_is_one_warning_naming_both_numbers_and_the_key(caplog):
    cfg = TrialConfig(method="lora", task="sst2", learning_rate=1e-3, epochs=1)  # warmup_steps: the default, 500
    [record] = warnings_for(cfg, caplog, train_rows=64, epochs=1)  # 8 optimizer steps
    line = record.getMessage()
    assert "\n" not in line and "500" in line and "8 optimizer steps" in line and "warmup_steps" in line


def test_a_warmup_within_the_run_says_nothing(caplog):
    cfg = TrialConfig(method="lora", task="sst2", learning_rate=1e-3, epochs=1, warmup_steps=8)
    assert warnings_for(cfg, caplog, train_rows=64, epochs=1) == []
