"""Result records: every schema key, atomic writes, a faithful round trip."""

import json

import pytest

from peftbench.harness.config import TrialConfig
from peftbench.harness.records import (
    KEYS,
    OPTIONAL_KEYS,
    SCHEMA,
    new_record,
    read_record,
    read_records,
    validate,
    write_record,
)


def make_record(**fields):
    cfg = TrialConfig(model="tiny-t5", method="adapter", task="sst2", learning_rate=1e-3, seed=3)
    return new_record(cfg, status="ok", error=None, val_metrics=[{"accuracy": 50.0, "invalid": 2}],
                      best_epoch=1, val_score=50.0, test_metrics={"accuracy": 61.25, "invalid": 0},
                      test_score=61.25, **fields)


def test_round_trip(tmp_path):
    record = make_record()
    path = write_record(tmp_path, record)
    assert path == tmp_path / "results" / f"{record['trial_id']}.json"
    assert read_record(path) == json.loads(json.dumps(record))
    assert set(KEYS) | set(OPTIONAL_KEYS) <= set(record) and record["schema"] == SCHEMA
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp file left behind
    assert read_records(tmp_path) == [read_record(path)]


def test_provenance_names_versions_and_device():
    prov = make_record()["provenance"]
    assert prov["versions"]["torch"] and prov["python"] and prov["device"].startswith(("cpu", "NVIDIA"))


@pytest.mark.parametrize("broken", [
    {"schema": "peftbench.result/0"},
    {"status": "maybe"},
])
def test_validate_rejects(broken):
    with pytest.raises(ValueError):
        validate({**make_record(), **broken})


def test_validate_names_missing_keys():
    record = make_record()
    del record["test_score"]
    with pytest.raises(ValueError, match="lacks keys: test_score"):
        validate(record)


def test_trial_id_changes_with_any_setting():
    a = TrialConfig(model="tiny-t5", method="adapter", task="sst2", learning_rate=1e-3, seed=0)
    b = TrialConfig(model="tiny-t5", method="adapter", task="sst2", learning_rate=1e-3, seed=0, epochs=4)
    assert a.trial_id != b.trial_id and a.trial_id.startswith("adapter-sst2-lr0.001-s0-")

