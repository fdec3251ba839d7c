"""A lower-is-better metric, registered in a test, is selected the right way round end to end: the best
epoch of a real tiny trial is its lowest validation, the record says so, and the report picks the
learning rate of the lowest mean validation score from the records alone."""

from __future__ import annotations

import dataclasses

import pytest

from peftbench import tasks
from peftbench.harness.config import TrialConfig
from peftbench.harness.records import new_record
from peftbench.harness.trial import run_trial
from peftbench.reports import select
from peftbench.tasks.metrics import LABELS, LOWER, get_metric, register_metric, unregister_metric


@pytest.fixture
def error_metric():
    """``label_error``: lower is better; its values are scripted per call, so the best epoch is known."""
    scripted = iter([30.0, 10.0, 20.0, 12.5])  # three validations, then the test split

    @register_metric(higher_is_better=False, inputs=LABELS)
    def label_error(preds: list[int], refs: list[int]) -> dict[str, float]:
        assert len(preds) == len(refs) > 0  # real predictions of the real split reach it
        return {"label_error": next(scripted)}

    yield label_error
    unregister_metric("label_error")


def test_a_lower_is_better_metric_is_registered_once_with_its_direction(error_metric):
    assert get_metric("label_error") is error_metric and error_metric.direction == LOWER
    with pytest.raises(ValueError, match="registered twice"):
        register_metric(higher_is_better=True, inputs=LABELS, name="label_error")(lambda p, r: {})


def test_the_best_epoch_of_a_lower_is_better_task_is_its_lowest_validation(error_metric, monkeypatch, tmp_path):
    sst2 = dataclasses.replace(tasks.get_task("sst2"), metrics=(error_metric,))
    monkeypatch.setitem(tasks._REGISTRY, "sst2", sst2)
    cfg = TrialConfig(model="tiny-t5", method="bitfit", task="sst2", learning_rate=1e-3, seed=0, epochs=3,
                      data="fixtures", train_size=8, batch_size=8, warmup_steps=1)
    record = run_trial(cfg, tmp_path)
    assert record["status"] == "ok", record["error"]
    assert [m["label_error"] for m in record["val_metrics"]] == [30.0, 10.0, 20.0]
    assert record["best_epoch"] == 2 and record["val_score"] == 10.0  # highest-is-best would say epoch 1
    assert record["test_score"] == 12.5
    assert record["score_direction"] == LOWER and record["metric_directions"] == {"label_error": LOWER}


def lr_record(learning_rate: float, val: float, **fields) -> dict:
    """An ok record of adapter on sst2 at ``learning_rate`` whose validation and test scores are ``val``."""
    cfg = TrialConfig(model="tiny-t5", method="adapter", task="sst2", learning_rate=learning_rate, seed=0)
    return new_record(cfg, status="ok", val_score=val, test_score=val, test_metrics={"label_error": val},
                      trainable_pct=1.0, peak_memory_bytes=1e6, memory_measured_by="by hand", time_per_epoch_s=1.0,
                      **fields)


def test_the_report_selects_the_learning_rate_of_the_lowest_validation_when_records_say_lower():
    lower = [lr_record(lr, val, score_direction=LOWER, metric_directions={"label_error": LOWER})
             for lr, val in [(1e-3, 10.0), (3e-3, 30.0)]]
    assert select.summarize(lower).loc[0, "learning_rate"] == 1e-3
    # records from before directions were recorded: higher is better, as every metric of the authors'
    older = [lr_record(lr, val) for lr, val in [(1e-3, 10.0), (3e-3, 30.0)]]
    assert select.summarize(older).loc[0, "learning_rate"] == 3e-3
