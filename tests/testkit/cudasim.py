"""A CUDA device simulated on the CPU: the GPU paths run, and fail as they would on a card, without one.

``simulated_cuda(monkeypatch)`` makes ``torch.cuda`` report one device at a fake index (3, so code
that assumes ``cuda:0`` or leaves the index out is caught), checks every device it is handed the way
torch does, and keeps tensors on the CPU (``engine.devices.placement``). Memory is an allocator of
its own: every CPU storage created while the simulation is active counts until it dies, a
``set_per_process_memory_fraction`` cap applies, and going over it raises ``torch.OutOfMemoryError``
from inside the operation that allocated, as the caching allocator does.
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import os
import queue
import traceback
import weakref
from types import SimpleNamespace

import torch
from torch.cuda._utils import _get_device_index
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from peftbench.engine import devices

INDEX = 3
NAME = "Simulated H100"


class SimulatedAllocator(TorchDispatchMode):
    """Bytes of live CPU storages created under it; a cap (``fraction`` of ``total``); the peak."""

    def __init__(self, total: int):
        super().__init__()
        self.total, self.cap = total, total
        self.sizes: dict[int, int] = {}  # storage data pointer -> bytes
        self.live = self.high = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_leaves(out):
            if isinstance(t, torch.Tensor) and t.device.type == "cpu":  # fake and meta tensors hold nothing
                self.track(t.untyped_storage())
        return out

    def track(self, storage) -> None:
        key, n = storage.data_ptr(), storage.nbytes()
        if n == 0 or key in self.sizes:
            return
        if self.live + n > self.cap:
            raise torch.OutOfMemoryError(f"simulated CUDA out of memory: {n} bytes asked, "
                                         f"{self.cap - self.live} of {self.cap} free")
        self.sizes[key] = n
        self.live += n
        self.high = max(self.high, self.live)
        weakref.finalize(storage, self.free, key)

    def free(self, key: int) -> None:
        self.live -= self.sizes.pop(key, 0)


def _check(device, *, optional: bool = True) -> int:
    """The index torch would take from ``device``; raises as torch does, and for another device."""
    index = INDEX if device is None else _get_device_index(device, optional=optional)
    if index != INDEX:
        raise ValueError(f"simulated CUDA has device {INDEX} only, got {device!r}")
    return index


@contextlib.contextmanager
def simulated_cuda(monkeypatch, *, total: int = 80 * 10**9):
    """Simulate one CUDA device of ``total`` bytes; yields its allocator."""
    memory = SimulatedAllocator(total)

    def set_fraction(fraction, device=None):
        _check(device, optional=False) if device is not None else None
        if not isinstance(fraction, float) or not 0 <= fraction <= 1:
            raise ValueError(f"Invalid fraction value: {fraction}. Allowed range: 0~1")
        memory.cap = int(fraction * memory.total)

    def reset_peak(device=None):
        _check(device)
        memory.high = memory.live

    cuda = {
        "is_available": lambda: True, "device_count": lambda: 1, "current_device": lambda: INDEX,
        "get_device_name": lambda device=None: _check(device) and NAME,
        "get_device_properties": lambda device=None: SimpleNamespace(total_memory=memory.total, name=NAME,
                                                                     index=_check(device)),
        "set_per_process_memory_fraction": set_fraction, "reset_peak_memory_stats": reset_peak,
        "max_memory_allocated": lambda device=None: _check(device) and memory.high,
        "memory_allocated": lambda device=None: _check(device) and memory.live,
        "mem_get_info": lambda device=None: _check(device) and (memory.total - memory.live, memory.total),
        "empty_cache": lambda: None, "synchronize": lambda device=None: _check(device) and None,
        "is_bf16_supported": lambda including_emulation=True: True,
    }
    for name, fake in cuda.items():
        monkeypatch.setattr(torch.cuda, name, fake)
    monkeypatch.setattr(devices, "placement", lambda: torch.device("cpu"))
    monkeypatch.setenv("DS_ACCELERATOR", "cpu")  # DeepSpeed would otherwise pick CUDA, seeing it available
    with memory:
        yield memory


def collected(refs: list[weakref.ref]) -> bool:
    """Whether every object behind ``refs`` is gone once cycles are collected (a leak check)."""
    gc.collect()
    return all(ref() is None for ref in refs)


def _gloo_worker(rank: int, world: int, port: int, fn, results) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.distributed.init_process_group("gloo", rank=rank, world_size=world)
    try:
        results.put((rank, fn(rank), None))
    except BaseException:  # noqa: BLE001  reported to the parent, which fails the test
        results.put((rank, None, traceback.format_exc()))
    finally:
        torch.distributed.destroy_process_group()


def run_gloo_workers(fn, *, world: int = 2, timeout: float = 120) -> dict[int, object]:
    """``fn(rank)`` in ``world`` processes joined by a gloo process group; rank -> its result.

    Raises ``TimeoutError`` when a worker has not finished in ``timeout`` seconds (a deadlock).
    ``fn`` must be importable (a module-level function): workers are spawned, not forked.
    """
    from peftbench.engine.step import free_port

    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    port = free_port()
    procs = [ctx.Process(target=_gloo_worker, args=(r, world, port, fn, results)) for r in range(world)]
    for p in procs:
        p.start()
    out = {}
    try:
        for _ in procs:
            rank, value, error = results.get(timeout=timeout)
            if error:
                raise AssertionError(f"worker {rank} failed:\n{error}")
            out[rank] = value
    except queue.Empty:
        raise TimeoutError(f"{world - len(out)} of {world} workers still running after {timeout}s") from None
    finally:
        for p in procs:
            p.join(timeout=5)
            if p.is_alive():
                p.kill()
    return out
