"""The largest batch that fits: probe training steps, grow, then narrow to the exact edge.

A probe runs one step at a batch size and returns its peak memory, or ``None`` when it ran out of
memory. Peak memory is close to linear in the batch size (activations grow with it, weights,
gradients and optimizer state do not), so after two fitting probes the line through them predicts
the edge, and one more probe on each side of it confirms. Where the curve is not a line (allocator
rounding, a peak that moves from one phase of the step to another) the search falls back to
doubling, then bisection between the last fit and the first failure, so it always ends, exactly.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

from peftbench.budgets.parse import BudgetError, format_bytes

MAX_BATCH = 2**16  # the search never probes beyond this; a batch this large is the answer then

Probe = Callable[[int], "int | None"]


@dataclass(frozen=True)
class SearchResult:
    """The largest fitting batch and every probe made, in order: batch -> peak bytes (None: OOM)."""

    batch_size: int
    peaks: dict[int, int | None]
    capacity: int

    @property
    def probes(self) -> int:
        return len(self.peaks)


def largest_batch(probe: Probe, *, capacity: int, limit: int = MAX_BATCH) -> SearchResult:
    """The largest batch in 1..limit whose probe peaks at most ``capacity`` bytes.

    Raises ``BudgetError`` when not even one example fits.
    """
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    peaks: dict[int, int | None] = {}
    kinds: list[str] = []  # how each probe was chosen: "line" or "safe" (double / bisect)
    lo, hi = 0, limit + 1  # lo fits (0: nothing yet), hi does not (limit + 1: nothing known)
    batch, kind = 1, "safe"
    while hi - lo > 1:
        peak = peaks[batch] = probe(batch)
        kinds.append(kind)
        if peak is not None and peak <= capacity:
            lo = batch
        else:
            hi = batch
        batch, kind = next_batch(peaks, kinds, lo=lo, hi=hi, limit=limit, capacity=capacity)
    if lo == 0:
        peak = peaks[1]
        what = "runs out of memory" if peak is None else f"peaks at {format_bytes(peak)}"
        raise BudgetError(f"not even a batch of 1 fits: it {what}, over the {format_bytes(capacity)} usable")
    return SearchResult(lo, peaks, capacity)


def next_batch(peaks: dict, kinds: list[str], *, lo: int, hi: int, limit: int, capacity: int) -> tuple[int, str]:
    """The next batch to probe, strictly between ``lo`` and ``hi``, and how it was chosen."""
    guess = predicted_edge(peaks, capacity)
    outcomes = [p is not None and p <= capacity for p in peaks.values()]
    # Three line guesses in a row on the same side: the line keeps missing (a curved stretch),
    # take a safe step. Two is too few: a guess from a line through a far point lands short once
    # before that line is redrawn through it.
    stuck = kinds[-3:] == ["line"] * 3 and len(set(outcomes[-3:])) == 1
    # A line through the fits that reaches past a known failure cannot see why it failed (out of
    # memory short of the capacity: fragmentation, a kernel's workspace).
    blind = guess is not None and hi <= limit and guess >= hi
    if guess is None or stuck or blind:
        guess, kind = (2 * lo if hi > limit else midpoint(lo, hi)), "safe"
    else:
        kind = "line"
    return min(max(guess, lo + 1), hi - 1), kind


def midpoint(lo: int, hi: int) -> int:
    """Bisection's next batch: the geometric mean while ``hi`` is far above ``lo`` (an early
    failure far up the line, say at the search's limit), then the arithmetic one."""
    return math.isqrt(lo * hi) if hi > 4 * lo else (lo + hi) // 2


def predicted_edge(peaks: dict, capacity: int) -> int | None:
    """The largest batch the line through the probes nearest the edge keeps under ``capacity``."""
    fixed, per_example = line(*edge_points(peaks, capacity))
    if per_example <= 0:
        return None
    return int((capacity - fixed) // per_example)  # floor of an exact fraction


def edge_points(peaks: dict, capacity: int) -> list[tuple[int, int]]:
    """The two probes nearest the edge: the largest fit and the smallest probe over ``capacity``
    whose peak is known (it did not run out of memory), else the two largest fits."""
    known = sorted((b, p) for b, p in peaks.items() if p is not None)
    below = [(b, p) for b, p in known if p <= capacity]
    above = [(b, p) for b, p in known if p > capacity]
    return below[-1:] + above[:1] if below and above else (below or above)[-2:]


def line(*points: tuple[int, int]) -> tuple[Fraction, Fraction]:
    """(intercept, slope) of peak bytes against batch through two (batch, peak) points.

    Exact fractions, so a line that meets the capacity at a whole batch predicts that batch.
    With one point (or the same batch twice) the slope is 0; with none, both are.
    """
    points = tuple(dict(points).items())
    if not points:
        return Fraction(0), Fraction(0)
    if len(points) == 1:
        return Fraction(points[0][1]), Fraction(0)
    (b1, p1), (b2, p2) = points
    slope = Fraction(p2 - p1, b2 - b1)
    return p2 - slope * b2, slope
