"""A CPU trial's memory measurement, made once per workload of a sweep and kept in the sweep's folder."""

import json

import pytest

from peftbench.budgets import estimate
from peftbench.budgets.plan import BatchPlan
from peftbench.harness import memory
from peftbench.harness.config import TrialConfig

PLAN = BatchPlan(micro_batch=4, accumulation=1, chosen_by="fixed")
ROWS = [{"input_ids": [5] * 12, "labels": [6] * 3}, {"input_ids": [5] * 7, "labels": [6] * 2}]


@pytest.fixture
def measurements(monkeypatch):
    """The workloads measured (each call of the real ``estimate_fit``), each worker's memo emptied as if
    every trial ran in a fresh process."""
    seen = []
    real = estimate.estimate_fit

    def counted(workload, **kw):
        seen.append((workload.method, kw["batch_size"]))
        return real(workload, **kw)

    monkeypatch.setattr(estimate, "estimate_fit", counted)
    memory._tensor_peak.cache_clear()
    yield seen
    memory._tensor_peak.cache_clear()


def peak(tmp_path, *, lr=3e-3, seed=0, rows=ROWS, cache=True):
    memory._tensor_peak.cache_clear()  # another worker
    cfg = TrialConfig(model="tiny-t5", method="bitfit", task="sst2", learning_rate=lr, seed=seed, data="fixtures")
    path = tmp_path / "budget-cache.json" if cache else None
    return memory.cpu_tensor_peak(cfg, "tiny-t5", rows, PLAN, cache_path=path)


def test_other_rates_and_seeds_reuse_the_first_measurement(tmp_path, measurements):
    first = peak(tmp_path)
    assert peak(tmp_path, lr=3e-2, seed=1) == first
    assert measurements == [("bitfit", 4)]  # one step measured, at the trial's micro-batch only (no slope probe)
    assert first[0] > 0 and first[1].startswith("MemTracker on real CPU tensors")
    longer = [{"input_ids": [5] * 40, "labels": [6] * 3}]
    assert peak(tmp_path, rows=longer)[0] > first[0]  # another workload: measured again
    assert len(measurements) == 2


def test_the_figure_is_the_uncached_measurement(tmp_path, measurements):
    assert peak(tmp_path) == peak(tmp_path, cache=False)


@pytest.mark.parametrize("tamper", ["other key", "wrong type", "missing field"])
def test_an_entry_that_does_not_check_out_is_measured_again(tmp_path, measurements, tamper):
    honest = peak(tmp_path)
    path = tmp_path / "budget-cache.json"
    data = json.loads(path.read_text())
    (entry,) = data["entries"].values()
    entry["fit"]["peak_bytes"] = 1
    if tamper == "other key":
        entry["key"]["micro_batch"] = 999
    elif tamper == "wrong type":
        entry["fit"]["peak_bytes"] = "1"
    else:
        del entry["fit"]["how"]
    path.write_text(json.dumps(data))
    assert peak(tmp_path) == honest
    assert len(measurements) == 2
