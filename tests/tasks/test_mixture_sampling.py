"""A mixture's sampler: members drawn with p ∝ n^(1/T) (measured over many draws, within the binomial
standard error), each member's rows once per pass, the same batches for the same seed, and a sampler
restored from a saved state continuing with exactly the batches an unbroken one draws."""

from __future__ import annotations

import io
import math
from collections import Counter

import pytest
import torch

from peftbench.tasks import task_names
from peftbench.tasks.mixture import MixtureSampler, check_mixture, mixture_source, sampling_probabilities

SIZES = [40, 400, 4000]  # a hundredfold spread, as RTE's 2.5k against QQP's 364k
DRAWS = 40_000


def measured_shares(probabilities: list[float], *, seed: int = 0) -> list[float]:
    sampler = MixtureSampler(SIZES, probabilities, seed=seed)
    counts = Counter(sampler.draw() for _ in range(DRAWS))
    return [counts[i] / DRAWS for i in range(len(SIZES))]


@pytest.mark.parametrize(("sampling", "temperature", "power"),
                         [("temperature", 10.0, 0.1), ("temperature", 2.0, 0.5), ("proportional", 10.0, 1.0)])
def test_members_are_drawn_in_proportion_to_n_to_the_one_over_t(sampling, temperature, power):
    expected = [n**power / sum(m**power for m in SIZES) for n in SIZES]
    probabilities = sampling_probabilities(SIZES, sampling=sampling, temperature=temperature)
    assert probabilities == pytest.approx(expected, rel=1e-12)
    for share, p in zip(measured_shares(probabilities), expected, strict=True):
        # 4.5 binomial standard errors: a correct sampler fails this about once in 150,000 runs
        tolerance = 4.5 * math.sqrt(p * (1 - p) / DRAWS)
        assert abs(share - p) < tolerance, f"share {share:.4f}, expected {p:.4f} ± {tolerance:.4f}"


def test_temperature_ten_evens_the_members_out_and_proportional_does_not():
    t10 = sampling_probabilities(SIZES, sampling="temperature", temperature=10.0)
    prop = sampling_probabilities(SIZES, sampling="proportional", temperature=10.0)
    assert prop[0] == pytest.approx(40 / 4440)
    assert t10[0] / t10[2] == pytest.approx(100 ** -0.1)  # 0.63: the smallest set is drawn far more often
    assert sampling_probabilities([10**300, 1], sampling="temperature", temperature=0.01)[0] == 1.0  # no overflow


def test_each_member_gives_its_rows_once_per_pass_in_its_own_order():
    sampler = MixtureSampler([5, 7], [0.5, 0.5], seed=3)
    taken = {0: [], 1: []}
    for member, rows in sampler.epoch(batch=1):
        taken[member] += rows
    for member, size in ((0, 5), (1, 7)):
        passes = [taken[member][i : i + size] for i in range(0, len(taken[member]) - size + 1, size)]
        assert all(sorted(p) == list(range(size)) for p in passes)
    assert sum(map(len, taken.values())) == 12  # an epoch: a pass over all rows' worth of batches


def test_an_epoch_is_the_batches_of_one_pass_over_all_members():
    sampler = MixtureSampler([160, 240], [0.5, 0.5], seed=0)
    batches = list(sampler.epoch(batch=32))
    assert len(batches) == math.ceil(400 / 32) == sampler.batches_per_epoch(32)
    assert all(len(rows) == 32 for _, rows in batches)


def test_the_same_seed_draws_the_same_batches_and_another_seed_others():
    def first_epoch(seed):
        return list(MixtureSampler(SIZES, [0.2, 0.3, 0.5], seed=seed).epoch(batch=8))

    assert first_epoch(1) == first_epoch(1)
    assert first_epoch(1) != first_epoch(2)


def test_a_restored_sampler_continues_with_the_batches_an_unbroken_one_draws():
    unbroken = MixtureSampler([13, 29, 7], [0.5, 0.3, 0.2], seed=5)
    first = list(unbroken.epoch(batch=4))
    rest = [list(unbroken.epoch(batch=4)) for _ in range(3)]

    broken = MixtureSampler([13, 29, 7], [0.5, 0.3, 0.2], seed=5)
    assert list(broken.epoch(batch=4)) == first
    buffer = io.BytesIO()
    torch.save(broken.getstate(), buffer)  # as the trial's checkpoint holds it
    buffer.seek(0)
    restored = MixtureSampler([13, 29, 7], [0.5, 0.3, 0.2], seed=999)  # its own seed is overwritten
    restored.setstate(torch.load(buffer, weights_only=True))
    assert [list(restored.epoch(batch=4)) for _ in range(3)] == rest


@pytest.mark.parametrize(("name", "members", "message"), [
    ("pair", ["rte"], "two or more tasks"),
    ("pair", [], "two or more tasks"),
    ("pair", "rte", "a list"),
    ("pair", ["rte", "nope"], "unknown task 'nope'"),
    ("pair", ["rte", "rte"], "twice"),
    ("sst2", ["rte", "cola"], "is the name of a task"),
])
def test_a_mixture_that_cannot_run_is_refused_in_one_line(name, members, message):
    with pytest.raises(ValueError, match=message) as caught:
        check_mixture(name, members, task_names())
    assert "\n" not in str(caught.value)


def test_a_mixture_names_its_data_per_member_unless_all_are_fixtures():
    assert mixture_source({"rte": "fixtures", "sst2": "fixtures"}) == "fixtures"
    assert mixture_source({"rte": "hub:glue/rte@a", "sst2": "fixtures"}) == "rte=hub:glue/rte@a; sst2=fixtures"
