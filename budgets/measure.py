"""Peak training memory measured on a GPU: real steps at growing batches until one runs out.

The process is capped at the budget (``torch.cuda.set_per_process_memory_fraction``), so a probe
runs out of memory exactly where a trial would, and a trial sharing the card never takes more
than its share. Peaks are ``torch.cuda.max_memory_allocated``. A probe that runs out of memory
takes its model and optimizer with it: they are dropped, the allocator's cache is emptied, and a
fresh pair is built for the next probe, so no half-finished step's tensors or optimizer state
carry over. The memory and the trainer are passed in, so the same code runs in tests on a
simulated device; only ``CudaMemory`` and ``cap_process_memory`` touch the GPU.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable
from typing import Protocol

import torch

from peftbench.budgets.estimate import CUDA_BLOCK, tracked_peak
from peftbench.budgets.fit import Fit
from peftbench.budgets.parse import BudgetError, format_bytes
from peftbench.budgets.search import largest_batch
from peftbench.budgets.workload import Workload
from peftbench.engine import devices

log = logging.getLogger(__name__)
METHOD = "measured: torch.cuda.max_memory_allocated"


class Memory(Protocol):
    def reset_peak(self) -> None: ...
    def peak(self) -> int: ...
    def allocated(self) -> int: ...
    def release(self) -> None: ...


class Trainer(Protocol):
    def step(self, batch: int) -> None: ...
    def categories(self, batch: int) -> dict[str, int]: ...
    def close(self) -> None: ...


def probe_peak(step: Callable[[int], None], batch: int, memory: Memory) -> int | None:
    """Peak bytes of ``step(batch)``, or None when it ran out of memory."""
    memory.release()
    memory.reset_peak()
    try:
        step(batch)
    except torch.OutOfMemoryError:
        pass  # handled below, once the traceback (and the tensors its frames hold) is gone
    else:
        return memory.peak()
    return None


def measure_fit(*, capacity: int, memory: Memory, new_trainer: Callable[[], Trainer],
                batch_size: int | None = None) -> Fit:
    """The largest batch whose measured peak stays under ``capacity`` (or the peak at ``batch_size``)."""
    baseline = memory.allocated()
    live: list[Trainer] = []  # the current trainer; emptied when a probe runs out of memory

    def probe(batch: int) -> int | None:
        if not live:
            live.append(build(new_trainer))
        peak = probe_peak(live[0].step, batch, memory)
        if peak is None:
            live.pop().close()
            memory.release()
            if memory.allocated() > baseline:
                log.warning("%s still allocated after an out-of-memory probe at batch %d",
                            format_bytes(memory.allocated() - baseline), batch)
        return peak

    if batch_size is None:
        search = largest_batch(probe, capacity=capacity)
        batch_size, peak, peaks = search.batch_size, search.peaks[search.batch_size], search.peaks
    else:
        peak = probe(batch_size)
        peaks = {batch_size: peak}
        if peak is None:
            raise BudgetError(f"a batch of {batch_size} runs out of memory under the budget")
    if not live:
        live.append(build(new_trainer))
    categories = attribute(live.pop(), batch_size)
    return Fit.at_peak(batch_size, categories, peak_bytes=peak, peaks=peaks, estimated=False, how=METHOD,
                       probes=len(peaks))


def attribute(trainer: Trainer, batch_size: int) -> dict[str, int]:
    """The peak's categories (MemTracker on the real tensors, one more step); empty when that step
    runs out of memory: they only attribute the peak, which was measured either way."""
    try:
        return trainer.categories(batch_size)
    except torch.OutOfMemoryError:
        log.warning("no categories: attributing the peak at batch %d ran out of memory", batch_size)
    finally:
        trainer.close()
    return {}


def build(new_trainer: Callable[[], Trainer]) -> Trainer:
    try:
        return new_trainer()
    except torch.OutOfMemoryError:
        raise BudgetError("the model and its optimizer state alone do not fit the budget") from None


def cap_process_memory(budget_bytes: int, device: torch.device | None = None) -> None:  # GPU only
    """Let this process allocate at most ``budget_bytes`` of the device (default: its own), whoever else
    uses it. The cap covers the caching allocator only: the CUDA context and NCCL's buffers come on top."""
    device = device or devices.accelerator()
    total = torch.cuda.get_device_properties(device).total_memory
    if budget_bytes > total:
        log.warning("budget %s exceeds the device's %s", format_bytes(budget_bytes), format_bytes(total))
    torch.cuda.set_per_process_memory_fraction(min(1.0, budget_bytes / total), device)


def cap_address_space(budget_bytes: int) -> int | None:
    """On CPU: cap this process's address space (``RLIMIT_AS``, the soft limit) at what it maps now plus
    ``budget_bytes``, so a trial that runs away fails alone (``MemoryError``) instead of taking the
    machine; the libraries already mapped are not the trial's. Returns the cap (None: not capped, as
    where the hard limit is lower already). For processes that run trials only (``peftbench trial``,
    a sweep's trial worker): the cap stays for the process."""
    import resource

    try:
        mapped = int(next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmSize:"))) * 1024
    except (OSError, StopIteration, ValueError):
        return None
    cap = mapped + budget_bytes
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY and hard < cap:
        return None
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    return cap


class CudaMemory:  # GPU only
    """The CUDA caching allocator of one device, this process capped at ``budget_bytes`` of it."""

    def __init__(self, budget_bytes: int, device: torch.device | None = None):
        self.device = device or devices.accelerator()
        cap_process_memory(budget_bytes, self.device)

    def reset_peak(self) -> None:
        torch.cuda.reset_peak_memory_stats(self.device)

    def peak(self) -> int:
        return torch.cuda.max_memory_allocated(self.device)

    def allocated(self) -> int:
        return torch.cuda.memory_allocated(self.device)

    def release(self) -> None:
        gc.collect()  # reference cycles (autograd graphs, engines) hold tensors until collected
        torch.cuda.empty_cache()


class ProbeTrainer:
    """The workload's model and engine on a device, stepping worst-case batches as a trial would.

    ``accumulate``: each step runs two micro-batches before the optimizer, so gradients are alive
    through the second one's forward and backward, as under gradient accumulation.
    """

    def __init__(self, workload: Workload, *, accumulate: bool = False, device: torch.device | str | None = None,
                 plain: bool = False):
        self.workload, self.micro_batches = workload, 2 if accumulate else 1
        self.device = device or devices.placement()
        self.model = workload.build(self.device)
        self.engine = workload.engine(self.model, accumulation=self.micro_batches, plain=plain)
        self.step(1)  # optimizer state exists from here on, as in every step after a trial's first

    def step(self, batch: int) -> None:
        for _ in range(self.micro_batches):
            self.engine.micro_step(self.workload.batch(self.model, batch, device=self.device))

    def close(self) -> None:
        self.engine.close()

    def categories(self, batch: int) -> dict[str, int]:
        """A step's peak by category, as MemTracker attributes the tensors it can see.

        MemTracker follows one forward per tracker, so the last micro-batch's forward and backward
        and the optimizer step are tracked apart and the larger taken. A DeepSpeed engine is
        swapped for plain AdamW first: MemTracker cannot follow DeepSpeed's optimizer, and a
        DeepSpeed forward run under MemTracker is never freed, even once the engine is destroyed
        (a 2 GB ZeRO bucket and the model kept through the trial that follows).
        """
        if self.engine.deepspeed is not None:
            self.engine.close()
            gc.collect()  # the engine's cycles hold its gradients and optimizer state
            self.engine = self.workload.engine(self.model, accumulation=self.micro_batches, plain=True)
            self.step(1)  # optimizer state, as in the probes
        engine, batch_of = self.engine, self.workload.batch
        for _ in range(self.micro_batches - 1):
            engine.micro_step(batch_of(self.model, batch, device=self.device))
        tracked = (self.model, engine.optimizer)
        phases = [tracked_peak(lambda: engine.forward_backward(batch_of(self.model, batch, device=self.device)),
                               *tracked, block=CUDA_BLOCK),
                  tracked_peak(engine.boundary, *tracked, block=CUDA_BLOCK)]
        peak = max(phases, key=lambda p: p["total"])
        return {k: v for k, v in peak.items() if k != "total"}
