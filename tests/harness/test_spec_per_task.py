"""Sweep specs: per-task and per-train-size epochs and batch sizes, and the train-size grid axis."""

import pytest

from peftbench.harness.config import TrialConfig
from peftbench.harness.records import OPTIONAL_KEYS, new_record
from peftbench.harness.spec import SpecError, parse_spec

BASE = {"model": "tiny-t5", "methods": ["full", "adapter"], "tasks": ["sst2", "cb"],
        "learning_rates": [1e-3, 1e-4], "seeds": [0, 1]}


def test_epochs_and_batch_size_per_task():
    spec = parse_spec({**BASE, "epochs": {"sst2": 3, "cb": 20}, "batch_size": {"sst2": 100, "cb": 32}})
    by_task = {(t.task, t.epochs, t.batch_size) for t in spec.trials()}
    assert by_task == {("sst2", 3, 100), ("cb", 20, 32)}


def test_train_sizes_are_a_grid_axis_with_their_own_epochs():
    spec = parse_spec({**BASE, "train_size": [100, 500], "epochs": {100: 1000, 500: 200}, "batch_size": 40})
    trials = spec.trials()
    assert len(trials) == 2 * 2 * 2 * 2 * 2
    assert {(t.train_size, t.epochs) for t in trials} == {(100, 1000), (500, 200)}
    assert len({t.trial_id for t in trials}) == len(trials)
    assert "-n100-" in trials[0].trial_id
    assert "32 trials = 2 methods × 2 tasks × 2 learning rates × 2 seeds × 2 train sizes" in spec.describe()


def test_without_train_size_the_grid_and_ids_have_no_size():
    spec = parse_spec(BASE)
    assert {t.train_size for t in spec.trials()} == {None}
    assert "-n" not in spec.trials()[0].trial_id
    assert spec.describe().startswith("sweep: 16 trials = 2 methods × 2 tasks × 2 learning rates × 2 seeds\n")


@pytest.mark.parametrize(("extra", "message"), [
    ({"epochs": {"sst2": 3}}, "epochs: no value for cb"),
    ({"epochs": {"sst2": 3, "cb": 20, "rte": 20}}, "epochs: rte are not tasks of this spec"),
    ({"batch_size": {"sst2": 3, 100: 20}}, "keys must be all task names or all train sizes"),
    ({"epochs": {100: 1000}}, "epochs: 100 are not train sizes of this spec"),
    ({"train_size": [100], "epochs": {500: 200}}, "epochs: no value for 100"),
    ({"epochs": {"sst2": 0, "cb": 3}}, "epochs: expected a positive integer or a mapping"),
    ({"train_size": [100, 100]}, r"train_size\[1\]: 100 is already in the list"),
    ({"train_size": [0]}, "train_size: expected positive integers"),
])
def test_bad_per_point_settings_name_the_key(extra, message):
    with pytest.raises(SpecError, match=message):
        parse_spec({**BASE, **extra}, source="x.yaml")


def test_records_carry_the_train_size():
    cfg = TrialConfig(model="tiny-t5", method="full", task="sst2", learning_rate=1e-3, seed=0, train_size=100)
    record = new_record(cfg, status="ok", error=None)
    assert "train_size" in OPTIONAL_KEYS and record["train_size"] == 100
