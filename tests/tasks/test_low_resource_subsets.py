"""Low-resource subsets as the authors draw them (``subsample: seed-42``): the first N training rows of the
seed-42 ``torch.randperm`` of the hub's training rows, the same for every trial seed (Compacter's
seq2seq/data/tasks.py:60-79 on small sets; on large ones the N rows after the 1,000 that permutation made
validation, :84-89 and :107-111), beside the per-seed draws."""

import pytest
import torch

from peftbench.harness.config import ConfigError, TrialConfig
from peftbench.tasks import get_task, paper_splits
from peftbench.tasks.base import first_of_permutation


def randperm_42(n: int) -> list[int]:
    return torch.randperm(n, generator=torch.Generator().manual_seed(42)).tolist()


def test_a_small_sets_subset_is_the_first_n_of_the_seed_42_permutation():
    rows = [{"idx": i} for i in range(500)]
    split = paper_splits(rows, [{"idx": -i} for i in range(1, 41)])  # under 10k: train kept whole
    assert first_of_permutation(rows, split["train"], 30) == [rows[i] for i in randperm_42(500)[:30]]


def test_a_large_sets_subset_is_the_n_rows_after_the_validation_thousand():
    rows = [{"idx": i} for i in range(12_000)]
    split = paper_splits(rows, [{"idx": -1}])
    subset = first_of_permutation(rows, split["train"], 100)
    assert subset == [rows[i] for i in randperm_42(12_000)[1_000:1_100]]
    assert not {r["idx"] for r in subset} & {r["idx"] for r in split["validation"]}


def test_the_authors_subsets_are_the_same_for_every_seed_and_nested():
    task = get_task("sst2")
    small = task.load("fixtures", train_size=50, seed=3, rule="seed-42")
    assert small == task.load("fixtures", train_size=50, seed=4, rule="seed-42")  # the seed does not move it
    assert small["train"] == task.load("fixtures", train_size=120, seed=0, rule="seed-42")["train"][:50]
    per_seed = task.load("fixtures", train_size=50, seed=3)
    assert per_seed["train"] != small["train"] and per_seed["validation"] == small["validation"]
    with pytest.raises(ValueError, match="subsample must be one of per-seed, seed-42"):
        task.load("fixtures", train_size=50, rule="first")


def test_the_rule_is_a_trial_setting_that_names_a_new_trial_only_when_set():
    base = {"method": "full", "task": "rte", "learning_rate": 3e-4, "train_size": 100}
    assert TrialConfig(**base, subsample="per-seed").trial_id == TrialConfig(**base).trial_id
    assert TrialConfig(**base, subsample="seed-42").trial_id != TrialConfig(**base).trial_id
    with pytest.raises(ConfigError, match="subsample: expected one of per-seed, seed-42"):
        TrialConfig(**base, subsample="seed42")


def test_a_trial_trains_on_the_subset_its_rule_draws():
    from peftbench.budgets.plan import BatchPlan
    from peftbench.harness.setup import setup

    cfg = TrialConfig(method="bitfit", task="sst2", learning_rate=1e-3, seed=5, data="fixtures", epochs=1,
                      train_size=20, subsample="seed-42")
    trial = setup(cfg, BatchPlan(micro_batch=8, accumulation=1, chosen_by="fixed"))
    try:
        trained = [row["example"] for row in trial.splits["sst2"]["train"]]
        assert trained == get_task("sst2").load("fixtures", train_size=20, seed=0, rule="seed-42")["train"]
    finally:
        trial.engine.close()
