"""A batch size per mixture member (VL-Adapter's 300/500/100/250 for VQA/GQA/NLVR2/COCO, multitask.py:1052-1067)
and VL-Adapter's round-robin epochs (multitask_data.py:37-54): every member's rows once an epoch, in batches
of its own size, all members' batches in one shuffled order; a drawn member gives its own batch; and
Hyperformer's rows drawn with replacement (multitask_sampler.py:104) beside each row once per pass."""

from __future__ import annotations

import math
from collections import Counter

import pytest

from peftbench.tasks.mixture import (
    MixtureSampler,
    RoundRobin,
    epoch_batches,
    sampling_probabilities,
)

SIZES = [30, 50, 7]
BATCHES = [4, 10, 3]


def test_a_round_robin_epoch_gives_every_members_rows_once_in_batches_of_its_own_size():
    batches = list(RoundRobin(SIZES, seed=0).epoch(BATCHES))
    for member, (size, batch) in enumerate(zip(SIZES, BATCHES, strict=True)):
        own = [rows for m, rows in batches if m == member]
        assert sorted(i for rows in own for i in rows) == list(range(size))  # each row once
        short = [size % batch] if size % batch else []  # the last batch, short (their drop_last off)
        assert sorted(map(len, own), reverse=True) == [batch] * (size // batch) + short
    assert len(batches) == sum(math.ceil(n / b) for n, b in zip(SIZES, BATCHES, strict=True)) == 8 + 5 + 3
    assert len(batches) == epoch_batches(SIZES, BATCHES, sampling="roundrobin", probabilities=[])
    members = [m for m, _ in batches]
    assert members != sorted(members), "the members' batches are not shuffled together"


def test_round_robin_epochs_differ_are_seeded_and_continue_from_a_saved_state():
    unbroken = RoundRobin(SIZES, seed=3)
    first, second = list(unbroken.epoch(BATCHES)), list(unbroken.epoch(BATCHES))
    assert first != second
    again = RoundRobin(SIZES, seed=3)
    assert list(again.epoch(BATCHES)) == first
    restored = RoundRobin(SIZES, seed=99)
    restored.setstate(again.getstate())
    assert list(restored.epoch(BATCHES)) == second


def test_round_robin_leaves_out_a_last_batch_with_fewer_rows_than_workers():
    # 7 rows in batches of 3 over 2 workers: the last batch of 1 row would leave a worker empty
    two = list(RoundRobin([7, 6], seed=0, min_rows=2).epoch([3, 3]))
    assert sorted(len(rows) for m, rows in two if m == 0) == [3, 3]
    assert epoch_batches([7, 6], [3, 3], sampling="roundrobin", probabilities=[], min_rows=2) == len(two) == 4


def test_a_drawn_member_gives_its_own_batch_and_an_epoch_is_one_pass_of_rows_on_average():
    probabilities = sampling_probabilities(SIZES, sampling="proportional", temperature=1.0)
    sampler = MixtureSampler(SIZES, probabilities, seed=1)
    batches = list(sampler.epoch(BATCHES))
    assert all(len(rows) == BATCHES[member] for member, rows in batches)
    mean_batch = sum(p * b for p, b in zip(probabilities, BATCHES, strict=True))
    assert len(batches) == math.ceil(sum(SIZES) / mean_batch) == sampler.batches_per_epoch(BATCHES)
    assert sampler.batches_per_epoch(8) == math.ceil(sum(SIZES) / 8)  # one batch for all: as before


def test_round_robins_shares_are_each_members_share_of_an_epochs_batches():
    shares = sampling_probabilities(SIZES, sampling="roundrobin", temperature=1.0, batches=BATCHES)
    assert shares == pytest.approx([8 / 16, 5 / 16, 3 / 16])
    counts = Counter(m for m, _ in RoundRobin(SIZES, seed=0).epoch(BATCHES))
    assert [counts[i] / 16 for i in range(3)] == pytest.approx(shares)
    # one batch for all members: in proportion to their sizes, as proportional sampling
    assert sampling_probabilities(SIZES, sampling="roundrobin", temperature=1.0) == pytest.approx(
        sampling_probabilities(SIZES, sampling="proportional", temperature=1.0))


def rows_of(sampler: MixtureSampler, epochs: int, batch: int) -> list[int]:
    return [i for _ in range(epochs) for _, rows in sampler.epoch(batch) for i in rows]


def test_rows_drawn_with_replacement_repeat_within_a_pass_and_are_uniform():
    passes = rows_of(MixtureSampler([50], [1.0], seed=0), 1, 10)
    assert sorted(passes) == list(range(50))  # each row once per pass
    drawn = rows_of(MixtureSampler([50], [1.0], seed=0, replacement=True), 400, 10)
    assert len(drawn) == 400 * 50 and len(set(drawn[:50])) < 50  # a pass's worth of rows repeats some
    counts = Counter(drawn)
    expected = len(drawn) / 50  # 400 draws a row; 5 binomial standard errors
    assert max(abs(c - expected) for c in counts.values()) < 5 * math.sqrt(expected * (1 - 1 / 50))


def test_sampling_with_replacement_continues_from_a_saved_state():
    unbroken = MixtureSampler([13, 29], [0.4, 0.6], seed=5, replacement=True)
    first = list(unbroken.epoch(4))
    rest = [list(unbroken.epoch(4)) for _ in range(2)]
    broken = MixtureSampler([13, 29], [0.4, 0.6], seed=5, replacement=True)
    assert list(broken.epoch(4)) == first
    restored = MixtureSampler([13, 29], [0.4, 0.6], seed=999, replacement=True)
    restored.setstate(broken.getstate())
    assert [list(restored.epoch(4)) for _ in range(2)] == rest
