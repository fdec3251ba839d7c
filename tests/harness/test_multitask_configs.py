"""configs/multitask-glue.yaml is Hyperformer's GLUE setting in spec keys; it validates as a whole once
the methods it names (sharing modes, Hyperformer) are registered."""

from pathlib import Path

import pytest
import yaml

from peftbench.cli.main import main
from peftbench.harness.spec import parse_spec
from peftbench.methods import get_method

CONFIG = Path(__file__).parents[2] / "configs" / "multitask-glue.yaml"
GLUE = ["rte", "sst2", "mrpc", "stsb", "qqp", "mnli", "qnli", "cola"]


def has_multitask_methods() -> bool:
    try:
        get_method("hyperformer++")
        get_method("adapter").make_config({"sharing": "per-task"})
    except (KeyError, TypeError, ValueError):
        return False
    return True


def test_the_glue_mixture_is_hyperformers_setting():
    raw = yaml.safe_load(CONFIG.read_text())
    spec = parse_spec({**raw, "methods": ["full", "adapter"]})  # the methods every branch has
    assert spec.tasks == ("glue8",) and spec.mixtures == {"glue8": tuple(GLUE)}
    for trial in spec.trials():
        assert trial.mixture == tuple(GLUE) and trial.model == "google-t5/t5-base" and trial.data == "hub"
        assert (trial.sampling, trial.temperature, trial.learning_rate) == ("temperature", 10.0, 3e-4)
        assert (trial.batch_size, trial.warmup_steps, trial.eval_every_steps) == (32, 500, 1000)
        # their adapters read no task name; their checkpoint is chosen by the flat mean (t5_trainer.py:262-263)
        assert trial.task_prefix == "never" and trial.labels == "digits" and trial.mixture_score == "flat"
        assert trial.label_smoothing == 0.1 and trial.steps == 65536
        # their rows drawn with replacement (multitask_sampler.py:104), their smoothed loss summed (utils.py:64-65)
        assert trial.row_sampling == "with-replacement" and trial.smoothed_loss == "sum"


@pytest.mark.skipif(not has_multitask_methods(), reason="sharing modes and Hyperformer not on this branch")
def test_the_real_glue_mixture_config_validates(capsys):
    assert main(["sweep", str(CONFIG), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "7 trials = 7 methods × 1 tasks × 1 learning rates × 1 seeds" in out
    assert "mixture glue8: rte + sst2 + mrpc + stsb + qqp + mnli + qnli + cola" in out
