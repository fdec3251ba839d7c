"""Budget strings as the sweep spec writes them: ``24GB`` (10⁹ bytes) or ``24GiB`` (2³⁰ bytes), and
the numbers every budget shares. Imports nothing heavy: the command line reads its defaults here."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

UNITS = {"GB": 10**9, "GiB": 2**30}
_PATTERN = re.compile(r"(\d+(?:\.\d+)?)(GB|GiB)")
DEFAULT_BUDGET = "24GB"  # the paper's GPU (§5.5)
# Share of the budget no batch may use: allocator fragmentation and cached blocks, which
# max_memory_allocated does not count but the capped allocator does.
MARGIN = 0.05
# Every process on a card holds a CUDA context (kernels, cuBLAS workspaces) outside its allocator and
# so outside its capped budget: about 0.5 GB with CUDA's lazy module loading, an assumption until
# scripts/gpu-check prints the machine's own.
CUDA_CONTEXT_BYTES = 5 * 10**8
# A worker of a multi-worker trial also holds NCCL's communication buffers, allocated by NCCL itself
# (outside the allocator and the cap): with the default NCCL_BUFFSIZE of 4 MiB per protocol, channel
# and peer, and up to 32 channels on NVLink cards, a few hundred MB, more with NVLink SHARP. 1 GB is
# assumed until scripts/gpu-check's two-worker trial prints the machine's own.
NCCL_BYTES = 10**9


def card_bytes_needed(budget_bytes: int, workers: int = 1) -> int:
    """What one process of a trial holds on its card: its budget, its CUDA context and, when it is one
    of several workers, NCCL's buffers — the last two outside every budget's cap."""
    return budget_bytes + CUDA_CONTEXT_BYTES + (NCCL_BYTES if workers > 1 else 0)
DTYPE_NAMES = ("float32", "bfloat16", "float16")  # models/load.py DTYPES, named without torch


class BudgetError(ValueError):
    """A budget that cannot be used; the message is one line."""


def parse_budget(text: str) -> int:
    """``"24GB"`` -> 24_000_000_000, ``"24GiB"`` -> 25_769_803_776; anything else is a ``BudgetError``.

    Only the two units of the spec, case and all: ``24gb``, ``24 GB`` or ``24G`` are refused rather
    than guessed, since a GB/GiB mix-up is a 7% error in a fairness comparison.
    """
    match = _PATTERN.fullmatch(text) if isinstance(text, str) else None
    if not match:
        raise BudgetError(f"budget {text!r}: expected a number and GB (10^9 bytes) or GiB (2^30 bytes), like 24GB")
    try:
        n_bytes = int(Decimal(match[1]) * UNITS[match[2]])  # Decimal: 0.1GB is exactly 10^8 bytes
    except InvalidOperation:  # pragma: no cover - the pattern admits only plain decimals
        raise BudgetError(f"budget {text!r}: not a number") from None
    if n_bytes < 1:
        raise BudgetError(f"budget {text!r}: less than one byte")
    return n_bytes


def format_bytes(n: float) -> str:
    """Bytes for people: ``22.70 GB`` (decimal units, as budgets are usually written)."""
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.2f} {unit}"
    return f"{n:.0f} B"


def capacity(budget_bytes: int, margin: float = MARGIN) -> int:
    """The bytes a batch may use under the budget."""
    return int(budget_bytes * (1 - margin))


def held_bytes(total_params: int, trainable_params: int) -> int:
    """What a trial holds before its first batch, in fp32: every weight (4 bytes), and for each trainable
    one its gradient and AdamW's two moments (12 bytes more) -- a lower bound of its peak, whatever
    the batch (activations come on top). Mixed precision keeps fp32 master weights, so it holds too."""
    return 4 * total_params + 12 * trainable_params
