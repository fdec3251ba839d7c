"""The measured budget path on a simulated CUDA device (tests/testkit/cudasim.py): the cap, the search, leaks."""

import functools
import json
import weakref

import pytest
import torch

from peftbench.budgets.measure import ProbeTrainer
from peftbench.budgets.parse import capacity
from peftbench.budgets.plan import find_fit, plan_batch
from peftbench.budgets.workload import Workload

from testkit.cudasim import collected, run_gloo_workers, simulated_cuda

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
    from peftbench.cli.main import main

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


def test_a_probe_trainer_closed_after_a_deepspeed_step_leaves_nothing_alive():
    # DeepSpeed's hooks keep engine, model and ZeRO state alive after `del` (issue 19, bug 3)
    trainer = ProbeTrainer(Workload("tiny-t5", "full", **SMALL), device="cpu")
    trainer.step(2)
    refs = [weakref.ref(trainer.model), weakref.ref(trainer.engine.deepspeed)]
    trainer.close()
    del trainer
    assert collected(refs)


def test_out_of_memory_probes_of_full_fine_tuning_free_their_engines(monkeypatch):
    built = []
    build = Workload.build

    def tracked_build(self, device="cpu"):
        model = build(self, device)
        built.append(weakref.ref(model))
        return model

    monkeypatch.setattr(Workload, "build", tracked_build)
    # ZeRO-2 would add a 2 GB gradient bucket (5e8 fp32 elements) to every step: stage 0 keeps it small
    workload = Workload("tiny-t5", "full", {"zero_stage": 0}, **SMALL)
    BUDGET = 20 * 10**6
    with simulated_cuda(monkeypatch) as memory:
        fit, _ = find_fit(workload, budget_bytes=BUDGET, measure=True)
        assert collected(built) and memory.cap == BUDGET  # every probe's engine went with it
    assert len(built) >= 2  # a trainer is built again only after a probe ran out of memory
    assert fit.batch_size >= 1 and fit.peak_bytes <= capacity(BUDGET)


@pytest.mark.parametrize("method", ["full", "adapter"])  # a DeepSpeed engine, and plain torch
def test_a_probe_trainer_is_freed_after_its_categories(method):
    trainer = ProbeTrainer(Workload("tiny-t5", method, **SMALL), device="cpu")
    categories = trainer.categories(2)
    refs = [weakref.ref(trainer.model)]
    trainer.close()
    del trainer
    assert collected(refs)
    assert categories["optimizer_state"] > 0 and categories["activations"] > 0


def _plan_on_a_worker(rank: int, *, cache: str):
    """One Ray Train worker's batch plan, on a simulated GPU of its own."""
    monkeypatch = pytest.MonkeyPatch()
    with simulated_cuda(monkeypatch):
        plan = plan_batch(Workload("tiny-t5", "full", **SMALL), batch="max", fixed_batch=1,
                          budget_bytes=20 * 10**6, cache_path=cache)
    monkeypatch.undo()
    return plan


def test_two_workers_plan_a_measured_batch_without_deadlock(tmp_path):
    # each worker probed; one held the cache lock inside deepspeed.initialize's broadcast while the
    # other waited on the lock (issue 19, bug 4)
    plans = run_gloo_workers(functools.partial(_plan_on_a_worker, cache=str(tmp_path / "budget-cache.json")),
                             world=2, timeout=150)
    assert plans[0] == plans[1] and plans[0].chosen_by == "measured" and plans[0].micro_batch > 1
