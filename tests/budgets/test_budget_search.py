"""The batch search on simulated memory curves: exact answers, few probes, clear failures."""

import math

import pytest

from peftbench.budgets.parse import BudgetError
from peftbench.budgets.search import MAX_BATCH, largest_batch, line

CUDA_BLOCK = 512


def linear(fixed: int, per_example: int):
    """A step's peak as CUDA's allocator reports it: a line, rounded up to 512-byte blocks."""
    return lambda b: math.ceil((fixed + per_example * b) / CUDA_BLOCK) * CUDA_BLOCK


def brute_force(curve, capacity: int, limit: int = MAX_BATCH) -> int:
    best = 0
    for b in range(1, limit + 1):
        peak = curve(b)
        if peak is None or peak > capacity:
            break
        best = b
    return best


def counted(curve):
    calls = []

    def probe(b):
        calls.append(b)
        return curve(b)

    return probe, calls


@pytest.mark.parametrize("fixed,per_example,best", [
    (2_675_000_000, 148_454_400, 135),  # about t5-base full fine-tuning under 24GB
    (913_998_927, 128_220_081, 170),  # about t5-base with adapters
    (1_000, 1_000, 1),
    (0, 7_000, 2),
    (5, 3_000, 3),
    (10**6, 300_000, 50_000),  # a huge batch
    (10**6, 300_000, MAX_BATCH),  # everything fits: the search's limit decides
])
def test_linear_curve_exact_in_log2_plus_2_probes(fixed, per_example, best):
    curve = linear(fixed, per_example)
    capacity = curve(best) + per_example // 2  # between the edge and the next batch
    probe, calls = counted(curve)
    result = largest_batch(probe, capacity=capacity)
    assert result.batch_size == best == brute_force(curve, capacity)
    assert result.probes == len(calls) <= math.ceil(math.log2(best)) + 2, calls
    assert len(set(calls)) == len(calls)  # never the same batch twice


def test_every_maximum_up_to_300_is_found_exactly():
    for best in range(1, 301):
        per_example = 4096
        curve = linear(50_000, per_example)
        capacity = curve(best)  # best fits, best + 1 does not
        probe, calls = counted(curve)
        assert largest_batch(probe, capacity=capacity).batch_size == best
        assert len(calls) <= math.ceil(math.log2(best)) + 2, (best, calls)


@pytest.mark.parametrize("name,curve,capacity", [
    # Full fine-tuning: the optimizer step's peak is flat and dominates small batches.
    ("flat then linear", lambda b: max(4_251_500_000, 2_700_000_000 + 141_000_000 * b), 22_800_000_000),
    ("convex", lambda b: 10**8 + 10**6 * b + 3_000 * b * b, 22_800_000_000),
    ("staircase", lambda b: 10**9 * (1 + (b + 7) // 8), 30 * 10**9),
    ("out of memory before the capacity", lambda b: None if b > 77 else 100 * b, 10**9),
])
def test_curved_curves_still_exact(name, curve, capacity):
    probe, calls = counted(curve)
    result = largest_batch(probe, capacity=capacity)
    best = brute_force(curve, capacity)
    assert result.batch_size == best, name
    assert len(calls) <= 2 * math.ceil(math.log2(best)) + 4, (name, calls)


def test_everything_fits_up_to_the_limit():
    probe, calls = counted(lambda b: 10 * b)
    result = largest_batch(probe, capacity=10**12, limit=100)
    assert result.batch_size == 100 and max(calls) == 100


def test_nothing_fits_is_one_clear_line():
    with pytest.raises(BudgetError, match="not even a batch of 1 fits") as err:
        largest_batch(lambda b: 10**10, capacity=10**9)
    assert "\n" not in str(err.value)
    with pytest.raises(BudgetError, match="runs out of memory"):
        largest_batch(lambda b: None, capacity=10**9)


def test_line_through_two_points_is_exact():
    assert line((2, 300), (10, 1100)) == (100, 100)
    assert line((4, 40), (4, 40)) == (40, 0)  # the same point twice: no slope
