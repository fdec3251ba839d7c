"""The measured budget path on a simulated CUDA device (tests/cudasim.py): the cap, the search, leaks."""

import json
import weakref

import pytest
import torch

from budgets.measure import CudaMemory, ProbeTrainer, measure_fit
from budgets.parse import capacity
from budgets.plan import find_fit, plan_batch
from budgets.workload import Workload
from cudasim import collected, simulated_cuda

SMALL = {"source_len": 16, "target_len": 4}


def test_plan_batch_caps_the_process_at_its_budget_on_the_device_by_index(monkeypatch):
    # torch refuses set_per_process_memory_fraction(f, torch.device("cuda")): no index (issue 19, bug 1)
    with simulated_cuda(monkeypatch, total=80 * 10**9) as memory:
        plan = plan_batch(Workload("tiny-t5", "adapter", **SMALL), batch=None, fixed_batch=8, budget_bytes=24 * 10**9)
    assert (plan.micro_batch, plan.chosen_by) == (8, "fixed")
    assert memory.cap == 24 * 10**9


def test_the_simulated_allocator_counts_live_storages_and_raises_over_its_cap(monkeypatch):
    with simulated_cuda(monkeypatch, total=10_000) as memory:
        torch.cuda.set_per_process_memory_fraction(0.5, torch.device("cuda", 3))
        kept = torch.empty(1_000, dtype=torch.uint8)
        view = kept[10:]  # a view shares its storage: not counted again
        assert memory.live == 1_000 and view.untyped_storage().nbytes() == 1_000
        with pytest.raises(torch.OutOfMemoryError):
            torch.empty(4_001, dtype=torch.uint8)
        del kept, view
        assert memory.live == 0 and memory.high == 1_000


def test_budget_measure_runs_end_to_end_on_the_simulated_device(monkeypatch, capsys):
    from cli.main import main

    budget = 20 * 10**6
    with simulated_cuda(monkeypatch, total=80 * 10**9) as memory:
        code = main(["budget", "--measure", "--method", "adapter", "--seq-len", "16", "--target-len", "4",
                     "--budget", "0.02GB", "--json"])
        assert memory.cap == budget
        left = memory.live  # every probe's model, optimizer and activations are gone
    row = json.loads(capsys.readouterr().out)
    print(row, left)
    assert code == 0 and not row["estimated"] and row["how"].startswith("measured")
    assert 1 < row["batch_size"] and row["peak_bytes"] <= capacity(budget) < row["peak_bytes"] * 1.5
    assert left < 10**5
