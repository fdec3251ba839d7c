"""What each trial asks Ray for: CPUs, a budget's share of a GPU, nothing for Ray Train drivers."""

import re

import pytest

from peftbench.harness.spec import SpecError, parse_spec
from peftbench.harness.sweep import SweepError, gpu_share, trial_resources


def spec(**changes):
    raw = {"model": "tiny-t5", "methods": ["adapter", {"name": "full", "options": {"workers": 4}}],
           "tasks": ["sst2"], "learning_rates": [1e-3], "seeds": [0], "cpus_per_trial": 2}
    raw.update(changes)
    return parse_spec(raw)


@pytest.mark.parametrize("budget, card, share", [
    (24e9, 80e9, 0.3333),  # three 24 GB trials on an 80 GB card
    (24 * 2**30, 80e9, 0.3333),  # 24 GiB is 25.8 GB: three still fit
    (30 * 2**30, 80e9, 0.5),  # 30 GiB is 32.2 GB: two fit
    (39.5e9, 80e9, 0.5),
    (40e9, 80e9, 1.0),  # two halves of the card leave no room for their CUDA contexts
    (79.5e9, 80e9, 1.0),  # a whole card, less one CUDA context
    (26.5e9, 80e9, 0.5),  # three budgets fit, but not with a CUDA context each
    (9.5e9, 80e9, 0.125),
])
def test_gpu_share_packs_as_many_budgets_as_fit(budget, card, share):
    assert gpu_share(int(budget), int(card)) == share
    assert int(1 / share) * share <= 1.0


def test_a_budget_larger_than_the_card_is_refused():
    with pytest.raises(SweepError, match="does not fit"):
        gpu_share(int(96e9), int(80e9))


def test_trials_take_cpus_and_a_gpu_share_on_a_gpu_cluster():
    s = spec(gpu_memory="80GB")
    resources = trial_resources(s, {"CPU": 32, "GPU": 4})
    point = {"method": "adapter", "task": "sst2", "learning_rate": 1e-3, "seed": 0, "train_size": None}
    assert resources({"point": point}).bundles == [{"CPU": 2, "GPU": 0.3333}]
    distributed = {**point, "method": "full[workers=4]"}
    assert resources({"point": distributed}).bundles == [{"memory": 1}]  # its four Ray Train workers ask for GPUs


def test_an_exclusive_trial_takes_a_whole_gpu():
    resources = trial_resources(spec(gpu_memory="80GB", exclusive_gpu=True), {"CPU": 32, "GPU": 4})
    point = {"method": "adapter", "task": "sst2", "learning_rate": 1e-3, "seed": 0, "train_size": None}
    assert resources({"point": point}).bundles == [{"CPU": 2, "GPU": 1}]


def test_cpu_only_clusters_give_trials_cpus_only():
    resources = trial_resources(spec(), {"CPU": 2})
    point = {"method": "adapter", "task": "sst2", "learning_rate": 1e-3, "seed": 0, "train_size": None}
    assert resources({"point": point}).bundles == [{"CPU": 2}]


def test_gpu_memory_must_be_a_size():
    with pytest.raises(SpecError, match="gpu_memory"):
        spec(gpu_memory="lots")


@pytest.mark.parametrize("budget, fits", [("78GB", True), ("79GB", False)])
def test_workers_of_a_multi_worker_trial_keep_room_for_cuda_and_nccl(budget, fits):
    # 80 GB cards: a single worker may take 79 GB (a CUDA context beside it), a worker of a
    # four-worker trial also needs NCCL's buffers, so 78 GB at most
    from peftbench.harness.sweep import check_resources

    gpu_node = {"CPU": 32, "GPU": 4}
    check_resources(spec(budget="79GB", gpu_memory="80GB", methods=["adapter"]), [gpu_node])
    s = spec(budget=budget, gpu_memory="80GB")
    if fits:
        check_resources(s, [gpu_node])
    else:
        with pytest.raises(SweepError, match=re.escape("full[workers=4]'s workers each need 80.50 GB")):
            check_resources(s, [gpu_node])
