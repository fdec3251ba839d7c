"""The measured path on a simulated device (out-of-memory recovery), and on a real GPU when there is one."""

import gc
import logging

import pytest
import torch

from peftbench.budgets.measure import measure_fit, probe_peak
from peftbench.budgets.workload import Workload


class SimulatedDevice:
    """A device of ``size`` bytes: live blocks count until freed; going over raises OutOfMemoryError."""

    def __init__(self, size: int):
        self.size, self.live, self.high = size, 0, 0
        self.after_release: list[int] = []

    def alloc(self, n: int) -> "Block":
        if self.live + n > self.size:
            raise torch.OutOfMemoryError(f"tried to allocate {n} bytes with {self.size - self.live} free")
        self.live += n
        self.high = max(self.high, self.live)
        return Block(self, n)

    def reset_peak(self) -> None:
        self.high = self.live

    def peak(self) -> int:
        return self.high

    def allocated(self) -> int:
        return self.live

    def release(self) -> None:
        gc.collect()
        self.after_release.append(self.live)


class Block:
    def __init__(self, device: SimulatedDevice, n: int):
        self.device, self.n = device, n

    def __del__(self):
        self.device.live -= self.n


class SimulatedTrainer:
    """Weights and optimizer state of ``fixed`` bytes; a step holds ``per_example`` bytes per row,
    then the optimizer's ``update`` bytes of temporaries (the peak of small batches)."""

    built = 0

    def __init__(self, device, *, fixed=1_000, per_example=37, update=400, leak_to=None):
        self.device, self.per_example, self.update, self.leak_to = device, per_example, update, leak_to
        self.state = device.alloc(fixed)
        SimulatedTrainer.built += 1

    def step(self, batch: int) -> None:
        activations = []
        try:
            for _ in range(batch):
                activations.append(self.device.alloc(self.per_example))
        except torch.OutOfMemoryError:
            if self.leak_to is not None:
                self.leak_to.extend(activations)  # a bug: a reference outlives the failed step
            raise
        del activations
        self.device.alloc(self.update)

    def categories(self, batch: int) -> dict[str, int]:
        return {"parameters": self.state.n, "activations": self.per_example * batch}

    def close(self) -> None:
        self.closed = True


def test_out_of_memory_mid_search_is_recovered_and_the_search_ends_right():
    device = SimulatedDevice(10_000)  # the budget; the process cannot allocate more
    capacity = 9_500  # the budget less its margin
    SimulatedTrainer.built = 0
    fit = measure_fit(capacity=capacity, memory=device, new_trainer=lambda: SimulatedTrainer(device))
    best = (capacity - 1_000) // 37
    assert fit.batch_size == best == 229 and not fit.estimated
    assert fit.peak_bytes == 1_000 + 37 * best  # measured, not the categories' sum
    assert SimulatedTrainer.built >= 2  # a probe ran out of memory (flat start: a guess overshoots)
    # after every out-of-memory probe nothing was left: trainer, activations and traceback all gone
    assert device.after_release.count(0) >= 1
    assert device.live == 0  # and nothing outlives the search


def test_a_leaked_tensor_after_out_of_memory_is_reported(caplog):
    device = SimulatedDevice(10_000)
    kept = []
    with caplog.at_level(logging.WARNING, logger="peftbench.budgets.measure"):
        fit = measure_fit(capacity=9_500, memory=device,
                          new_trainer=lambda: SimulatedTrainer(device, leak_to=kept))
    assert kept and "still allocated after an out-of-memory probe" in caplog.text
    assert fit.batch_size < 229  # leaked blocks really take memory from later probes


def test_probe_peak_resets_the_peak_between_probes():
    device = SimulatedDevice(10_000)
    trainer = SimulatedTrainer(device)
    assert probe_peak(trainer.step, 200, device) == 1_000 + 200 * 37
    assert probe_peak(trainer.step, 300, device) is None
    assert probe_peak(trainer.step, 2, device) == 1_000 + 400  # not the 200-row peak


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_measured_on_the_gpu_is_close_to_the_estimate():
    from peftbench.budgets.estimate import estimate_fit
    from peftbench.budgets.plan import capacity, find_fit

    workload = Workload("tiny-t5", "adapter", source_len=128, target_len=8)
    budget = 2 * 10**9
    try:
        measured, _ = find_fit(workload, budget_bytes=budget, measure=True)
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0)
    estimated = estimate_fit(workload, capacity=capacity(budget))
    assert not measured.estimated and measured.peak_bytes <= capacity(budget)
    assert measured.batch_size == pytest.approx(estimated.batch_size, rel=0.1)


@pytest.mark.parametrize("method", ["adapter", "full"])  # plain torch, and a DeepSpeed engine
def test_probe_trainer_steps_and_attributes_memory(method):
    from peftbench.budgets.measure import ProbeTrainer

    workload = Workload("tiny-t5", method, source_len=16, target_len=4)
    n_params = sum(p.numel() for p in workload.build().parameters())
    trainer = ProbeTrainer(workload, accumulate=True, device="cpu")
    before = [p.detach().clone() for p in trainer.model.parameters() if p.requires_grad]
    trainer.step(3)
    after = [p.detach() for p in trainer.model.parameters() if p.requires_grad]
    assert any(not torch.equal(a, b) for a, b in zip(after, before, strict=True))  # it trains
    categories = trainer.categories(3)
    assert categories["parameters"] >= 4 * n_params and categories["activations"] > 0
