"""Which weights the test scores: the best validation's (``select: best``, the default) or those after the
last epoch (``select: last``, VL-Adapter's multitask.py:574); the record says which validation it was.

Validation is scripted to get worse every time, so the best is the first and the two settings must test
different weights; each evaluation's score is a fingerprint of the weights it saw."""

import pytest

from peftbench.harness import setup as trial_setup
from peftbench.harness.config import ConfigError, TrialConfig
from peftbench.harness.trial import run_trial


def config(**kw) -> TrialConfig:
    return TrialConfig(**{"method": "bitfit", "task": "rte", "learning_rate": 3e-2, "seed": 0, "data": "fixtures",
                          "epochs": 3, "batch_size": 32, "warmup_steps": 1, "max_source_length": 24, **kw})


def fingerprint(model) -> float:
    return float(sum(p.detach().double().sum() for p in model.parameters() if p.requires_grad))


@pytest.fixture
def evaluations(monkeypatch):
    """Each evaluation's (split, weights' fingerprint); validation scores fall 90, 80, 70, ..."""
    seen, splits = [], []
    real_split_metrics = trial_setup.Trial.split_metrics

    def split_metrics(trial, split, samples=None):
        splits.append(split)
        return real_split_metrics(trial, split, samples)

    def evaluate(model, tokenizer, task, fmt, rows, batch_size, device):
        seen.append((splits[-1], fingerprint(model)))
        validations = sum(s == "validation" for s, _ in seen)
        return {"accuracy": 100.0 - 10 * validations, "invalid": 0, "examples": len(rows)}

    monkeypatch.setattr(trial_setup.Trial, "split_metrics", split_metrics)
    monkeypatch.setattr(trial_setup, "generate_and_score", evaluate)
    return seen


@pytest.mark.parametrize("select", ["best", "last"])
def test_the_test_scores_the_selected_validations_weights(select, tmp_path, evaluations):
    record = run_trial(config(select=select), tmp_path)
    assert record["status"] == "ok", record["error"]
    validations = [w for split, w in evaluations if split == "validation"]
    (tested,) = [w for split, w in evaluations if split == "test"]
    assert len(validations) == 3 and len(set(validations)) == 3  # training moved the weights every epoch
    chosen = 0 if select == "best" else 2
    assert tested == validations[chosen]
    assert record["best_epoch"] == chosen + 1 and record["config"]["select"] == select


def test_testing_the_last_weights_validates_them_when_validation_runs_every_n_steps(tmp_path, evaluations):
    """Every 4 steps of 5 per epoch: the last epoch ends between two validations, so one more at its end."""
    record = run_trial(config(select="last", eval_every_steps=4), tmp_path)
    assert record["status"] == "ok", record["error"]
    validations = [w for split, w in evaluations if split == "validation"]
    (tested,) = [w for split, w in evaluations if split == "test"]
    assert tested == validations[-1]
    assert record["best_step"] == 15


def test_select_is_best_or_last_and_the_default_keeps_earlier_trial_ids():
    with pytest.raises(ConfigError, match="select: expected one of best, last"):
        config(select="first")
    assert config().select == "best"
    assert config(select="best").trial_id == config().trial_id != config(select="last").trial_id


def test_the_text_configs_test_the_best_validation_and_the_vl_configs_the_last():
    from pathlib import Path

    from peftbench.harness.spec import load_spec

    configs = Path(__file__).parents[2] / "configs"
    for path in sorted(configs.glob("*.yaml")):
        wanted = "last" if path.name.startswith("vl-adapter") else "best"
        assert {t.select for t in load_spec(path).trials()} == {wanted}, path.name
