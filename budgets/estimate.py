"""Peak training memory without a GPU: the step runs on fake tensors under MemTracker.

``FakeTensorMode`` runs every operator for its shapes only, so no memory is used, and
``torch.distributed._tools.mem_tracker.MemTracker`` adds up the storages alive after each operator,
by category (parameters, buffers, gradients, optimizer state, activations, temporaries). Two phases
of a step are tracked apart: forward + backward, whose peak grows linearly with the batch, and the
optimizer step, whose peak does not. The budget is for a CUDA device, so the estimate accounts as
CUDA would (``accounting="cuda"``): every allocation rounded up to the caching allocator's block,
AdamW's multi-tensor (``foreach``) update CUDA defaults to, and attention through the fused kernel
CUDA's ``scaled_dot_product_attention`` runs. ``accounting="cpu"`` counts as this machine would,
to check the estimate against a real run on CPU.

Not modelled: the CUDA context and cuBLAS workspaces (outside the budget's accounting in
``torch.cuda.max_memory_allocated`` too), allocator fragmentation (the safety margin's job), and a
DeepSpeed engine's own buffers (ZeRO's flat fp32 partitions and reduction buckets): the estimate
runs the plain AdamW step for every method.
"""

from __future__ import annotations

import contextlib
import warnings

import torch
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.distributed._tools.mem_tracker import MemTracker
from torch.overrides import TorchFunctionMode

from peftbench.budgets.fit import Fit
from peftbench.budgets.parse import BudgetError, format_bytes
from peftbench.budgets.search import largest_batch
from peftbench.budgets.workload import Workload

# c10/cuda/CUDACachingAllocator.cpp, kMinBlockSize: every CUDA allocation is rounded up to 512 bytes.
CUDA_BLOCK = 512
ACCOUNTING = ("cuda", "cpu")
# MemTracker's categories (its _MemRefType values) -> ours
CATEGORIES = {
    "Parameter": "parameters", "Buffer": "buffers", "Gradient": "gradients", "Optstate": "optimizer_state",
    "Activation": "activations", "Temp": "temporaries", "Other": "other",
}
METHOD = "estimated: FakeTensorMode + MemTracker"


class _NoHook:
    def remove(self) -> None:
        pass


_NO_HOOK = _NoHook()


class PeakTracker(MemTracker):
    """MemTracker keeping the global peak only, with allocations rounded up to ``block`` bytes.

    MemTracker also keeps every module's own peak by walking all modules after every operator:
    on T5-base that is 90 of a step's 115 s, for figures not used here. It rounds to CUDA's block
    only tensors on a CUDA device; fake tensors on this CPU build cannot be (autograd needs a CUDA
    device guard), so the rounding is applied to every storage, on the one place sizes enter the
    totals.
    """

    def __init__(self, *, block: int = 1):
        super().__init__()
        self._block = block

    def _update_peak_stats(self, peak_state) -> None:
        for dev, snap in self._curr_mem_snap.items():
            if self._peak_mem.get(dev, 0) < snap["Total"]:
                self._peak_mem[dev] = snap["Total"]
                self._peak_mem_snap[dev] = dict(snap)

    def _track_module_params_and_buffers(self, module, install_grad_hooks=True):
        # MemTracker hooks every parameter's gradient, but a frozen parameter refuses hooks (and
        # never has a gradient): mark those as hooked already, with handles that remove nothing.
        for param in module.parameters():
            if not param.requires_grad and param not in self._param_to_grad_hook_handles:
                self._param_to_grad_hook_handles[param] = (_NO_HOOK, _NO_HOOK)
        return super()._track_module_params_and_buffers(module, install_grad_hooks)

    def _update_snap(self, u_type, winfo, old_mem_consumed=None, old_reftype=None) -> None:
        size = winfo.size * winfo.element_size
        winfo.mem_consumed = -(-size // self._block) * self._block
        super()._update_snap(u_type, winfo, old_mem_consumed=old_mem_consumed, old_reftype=old_reftype)


def tracked_peak(run, *track, block: int = 1) -> dict[str, int]:
    """Peak bytes by category (and ``total``) while ``run()`` executes, ``track`` alive before it."""
    tracker = PeakTracker(block=block)
    tracker.track_external(*track)
    with warnings.catch_warnings():
        # ModTracker's backward hooks outlive modules freed mid-step; harmless here.
        warnings.filterwarnings("ignore", message="Module is None")
        with tracker:
            run()
    snapshot = tracker.get_tracker_snapshot("peak")
    if not snapshot:
        return {"total": 0, **dict.fromkeys(CATEGORIES.values(), 0)}
    device_snap = max(snapshot.values(), key=lambda s: s["Total"])
    out = {CATEGORIES[getattr(k, "value", k)]: v for k, v in device_snap.items() if k != "Total"}
    return {"total": device_snap["Total"], **out}


class CudaAttention(TorchFunctionMode):
    """Runs ``scaled_dot_product_attention`` as CUDA does for T5: the memory-efficient kernel.

    CUDA's flash kernel takes no additive bias (T5's relative positions are one) and the cuDNN one
    no fp32, so the efficient kernel runs; it saves the output and the log-sum-exp, never the
    attention matrix the CPU's math path keeps (which adds 13-14% per example on T5-base at 128
    tokens).
    """

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is torch.nn.functional.scaled_dot_product_attention and not kwargs.get("enable_gqa"):
            return efficient_attention(*args, **kwargs)
        return func(*args, **kwargs)


def efficient_attention(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None, **_):
    if attn_mask is not None and attn_mask.dtype == torch.bool:
        attn_mask = torch.zeros_like(attn_mask, dtype=query.dtype).masked_fill(~attn_mask, float("-inf"))
    if attn_mask is not None:
        attn_mask = attn_mask.expand(query.shape[0], query.shape[1], query.shape[2], key.shape[2])
    needs_lse = torch.is_grad_enabled() and any(t.requires_grad for t in (query, key, value))
    return torch.ops.aten._scaled_dot_product_efficient_attention(
        query, key, value, attn_mask, needs_lse, dropout_p, is_causal, scale=scale
    )[0]


class StepMemory:
    """One workload's model and optimizer, and the tracked peaks of its training step's phases.

    Built at the first training step's end, optimizer state included, as every later step sees it.
    ``accumulate``: gradients of an earlier micro-batch are alive through forward and backward.
    """

    def __init__(self, workload: Workload, *, accounting: str = "cuda", accumulate: bool = False):
        if accounting not in ACCOUNTING:
            raise ValueError(f"accounting must be one of {', '.join(ACCOUNTING)}, got {accounting!r}")
        self.workload, self.accumulate = workload, accumulate
        self.block = CUDA_BLOCK if accounting == "cuda" else 1
        self.model = workload.build()
        # plain AdamW for every method: a DeepSpeed engine cannot run on fake tensors
        self.engine = workload.engine(self.model, plain=True, foreach=True if accounting == "cuda" else None)
        self.engine.forward_backward(workload.batch(self.model, 1))
        self.optimizer_phase = tracked_peak(self.engine.boundary, self.model, self.engine.optimizer, block=self.block)

    def forward_backward(self, batch: int) -> dict[str, int]:
        """Peak by category of one micro-batch's forward and backward at ``batch``."""
        if self.accumulate:
            self.engine.forward_backward(self.workload.batch(self.model, 1))
        peak = tracked_peak(lambda: self.engine.forward_backward(self.workload.batch(self.model, batch)),
                            self.model, self.engine.optimizer, block=self.block)
        self.engine.zero_grad()
        return peak


@contextlib.contextmanager
def estimating(*, fake: bool = True, accounting: str = "cuda"):
    """Fake tensors (unless ``fake=False``: real ones, to check the estimate) and CUDA's attention."""
    with contextlib.ExitStack() as stack:
        if fake:
            stack.enter_context(FakeTensorMode())
        if accounting == "cuda":
            stack.enter_context(CudaAttention())
        yield


def estimate_fit(workload: Workload, *, capacity: int, accumulate: bool = False, batch_size: int | None = None,
                 accounting: str = "cuda", fake: bool = True, slope: bool = True) -> Fit:
    """The largest batch whose estimated peak stays under ``capacity`` bytes (or the peak at ``batch_size``).

    The search probes forward + backward, linear in the batch, so two fake steps give the line,
    a third at the edge and a fourth past it confirm; the optimizer phase is one more, at any batch.
    At a given ``batch_size`` a second probe, at half of it, gives the line's slope; without ``slope`` (a
    caller wanting only the peak there, as a CPU trial's memory) the categories that grow with the batch do.
    """
    with estimating(fake=fake, accounting=accounting):
        memory = StepMemory(workload, accounting=accounting, accumulate=accumulate)
        if batch_size is None and memory.optimizer_phase["total"] > capacity:
            raise BudgetError(f"not even a batch of 1 fits: the optimizer step alone peaks at "
                              f"{format_bytes(memory.optimizer_phase['total'])}, over the "
                              f"{format_bytes(capacity)} usable")
        seen: dict[int, dict[str, int]] = {}

        def probe(batch: int) -> int:
            seen[batch] = memory.forward_backward(batch)
            return seen[batch]["total"]

        if batch_size is None:
            batch_size = largest_batch(probe, capacity=capacity).batch_size
        else:
            probe(batch_size)
            if slope:
                probe(batch_size // 2 if batch_size > 1 else 2)
    peak = max(seen[batch_size], memory.optimizer_phase, key=lambda p: p["total"])
    categories = {k: v for k, v in peak.items() if k != "total"}
    return Fit.at_peak(batch_size, categories, peaks={b: p["total"] for b, p in seen.items()}, estimated=True,
                       how=f"{METHOD} ({accounting} accounting)", probes=len(seen))


def saved_activation_bytes(workload: Workload, batch_size: int) -> int:
    """Bytes a forward of ``batch_size`` full-length rows keeps for its backward: each storage once,
    the parameters' own not (they are held anyway). On fake tensors with CUDA's attention, as the
    planner's estimate: the same figure as its ``activations`` category, from one forward instead of
    tracked steps (a few seconds on T5-base). With the weights, gradients and optimizer state it is a
    lower bound of the step's peak, reached as the backward starts."""
    saved: dict[int, int] = {}
    with estimating():
        model = workload.build()
        held = {p.untyped_storage()._cdata for p in model.parameters()}

        def keep(tensor):
            storage = tensor.untyped_storage()
            if storage._cdata not in held:
                saved[storage._cdata] = storage.nbytes()
            return tensor

        with torch.autograd.graph.saved_tensors_hooks(keep, lambda tensor: tensor):
            model(**workload.batch(model, batch_size))
    return sum(saved.values())
