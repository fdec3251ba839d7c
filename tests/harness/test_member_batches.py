"""A mixture trial with a batch per member (``member_batch_sizes``, VL-Adapter's per-task batches): each
member's batch holds its own number of rows and is one optimizer step (in micro-batches of that member only
when the budget needs accumulation), the schedule counts the epoch's real batches, the budget searches a
micro-batch for the largest member batch, and the record says each member's batch."""

from __future__ import annotations

import math

import pytest

from peftbench.budgets import plan as budget_plan
from peftbench.budgets.plan import BatchPlan
from peftbench.harness.config import ConfigError, TrialConfig
from peftbench.harness.setup import setup
from peftbench.harness.trial import run_trial

OWN = {"rte": 5, "sst2": 11}


def mixture(**kw) -> TrialConfig:
    return TrialConfig(**{"method": "bitfit", "task": "pair", "mixture": ("rte", "sst2"), "learning_rate": 1e-3,
                          "data": "fixtures", "epochs": 2, "max_source_length": 24, "member_batch_sizes": OWN,
                          "sampling": "roundrobin", **kw})


def test_each_members_batches_hold_its_own_rows_and_the_schedule_counts_them():
    trial = setup(mixture(), BatchPlan(micro_batch=11, accumulation=1, chosen_by="fixed"))
    try:
        batches = [(task, len(batch["input_ids"])) for task, batch in trial.train_batches(trial.new_order())]
        per_epoch = math.ceil(160 / 5) + math.ceil(240 / 11)  # the fixtures' 160 rte and 240 sst2 rows
        assert len(batches) == trial.batches_per_epoch == per_epoch
        assert {task: max(n for t, n in batches if t == task) for task in OWN} == OWN
        assert sum(n for t, n in batches if t == "sst2") == 240  # round-robin: each row once an epoch
        assert trial.engine.opt.total_steps == 2 * per_epoch
        assert [m["batch_size"] for m in trial.member_results(*[{t: {"accuracy": 0.0} for t in OWN}] * 2).values()] \
            == [5, 11]
    finally:
        trial.engine.close()


def test_the_trials_order_draws_rows_with_replacement_when_asked():
    trial = setup(mixture(member_batch_sizes=None, sampling="temperature", row_sampling="with-replacement"),
                  BatchPlan(micro_batch=8, accumulation=1, chosen_by="fixed"))
    try:
        order = trial.new_order()
        assert order.replacement and len(list(trial.train_batches(order))) == math.ceil(400 / 8)
    finally:
        trial.engine.close()


def test_a_member_batch_over_the_budgets_micro_batch_is_one_step_of_that_member_only():
    """The planner's micro-batch 4 for the largest member batch 11: accumulation 3; rte's 5 rows and sst2's 11
    each split into 3 micro-batches in a row, so an optimizer step (3 micro-batches) never mixes tasks."""
    trial = setup(mixture(), BatchPlan(micro_batch=4, accumulation=3, chosen_by="measured"))
    try:
        batches = [(task, len(batch["input_ids"])) for task, batch in trial.train_batches(trial.new_order())]
        assert len(batches) == trial.batches_per_epoch == 3 * (math.ceil(160 / 5) + math.ceil(240 / 11))
        steps = [batches[i : i + 3] for i in range(0, len(batches), 3)]
        assert all(len({task for task, _ in step}) == 1 for step in steps)
        assert {tuple(n for _, n in step) for step in steps if step[0][0] == "sst2"} >= {(4, 4, 3)}
        assert sum(n for t, n in batches if t == "rte") == 160 and sum(n for t, n in batches if t == "sst2") == 240
        assert trial.engine.opt.total_steps == 2 * len(steps)
    finally:
        trial.engine.close()


def test_the_budget_searches_a_micro_batch_for_the_largest_member_batch(tmp_path, monkeypatch):
    asked = {}

    def plan_batch(workload, **kw):  # what the planner is asked, then stop: no training needed
        asked.update(kw)
        raise RuntimeError("planned")

    monkeypatch.setattr(budget_plan, "plan_batch", plan_batch)
    record = run_trial(mixture(batch_size=3), tmp_path, write=False)
    assert record["status"] == "failed" and "planned" in record["error"]
    assert asked["batch"] == 11  # examples per step: the planner finds the micro-batch and the accumulation
    assert record["config"]["member_batch_sizes"] == OWN


@pytest.mark.parametrize(("change", "said"), [
    ({"member_batch_sizes": {"rte": 5}}, "no batch for sst2"),
    ({"member_batch_sizes": {**OWN, "cola": 4}}, "cola not in the mixture"),
    ({"member_batch_sizes": {"rte": 5, "sst2": 0}}, "a positive integer"),
    ({"batch": 64}, "give no batch"),
])
def test_member_batches_name_every_member_and_take_the_place_of_batch(change, said):
    with pytest.raises(ConfigError, match=said) as err:
        mixture(**change)
    assert err.value.key == "member_batch_sizes"


def test_member_batches_name_a_new_trial_only_where_they_apply():
    plain = mixture(member_batch_sizes=None)
    assert mixture().trial_id != plain.trial_id
    single = {"method": "bitfit", "task": "rte", "learning_rate": 1e-3}
    assert TrialConfig(**single, member_batch_sizes=OWN).trial_id == TrialConfig(**single).trial_id
    alone = TrialConfig(**single, member_batch_sizes=OWN, batch_size=7)
    assert alone.fixed_batch == 7 and alone.step_batch is None  # a single task: its own fixed batch


def test_peftbench_trial_takes_member_batches_as_task_equals_n():
    from peftbench.cli.main import build_parser

    args = build_parser().parse_args(["trial", "--method", "bitfit", "--task", "pair", "--lr", "1e-3",
                                      "--mixture", "rte,sst2", "--member-batch-sizes", "rte=5, sst2=11"])
    assert args.member_batch_sizes == OWN
    with pytest.raises(SystemExit):
        build_parser().parse_args(["trial", "--method", "bitfit", "--task", "rte", "--lr", "1e-3",
                                   "--member-batch-sizes", "rte:5"])
