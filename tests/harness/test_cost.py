"""The cost model with injected step times (a quiet machine is needed to check it against a sweep):
the formula by hand, the cache's measured and extrapolated figures, the schedule on slots."""

from __future__ import annotations

import pytest

from peftbench.harness import cost

RATES = cost.Rates(eval_s_per_example=0.01, startup_s=5.0, how="injected")
KEY = {"device": "cpu (x86_64)", "model": "tiny-t5", "method": "adapter", "micro_batch": 8,
       "source_len": 64, "target_len": 8}


def group(**kw) -> cost.Group:
    base = {"method": "adapter", "task": "rte", "trials": 6, "batch": 8, "epochs": 3, "train_examples": 100,
            "validations": 3, "val_examples": 20, "test_examples": 40}
    return cost.Group(**{**base, **kw})


def test_trial_seconds_is_the_formula_by_hand():
    g = group()
    assert g.steps == 3 * 13  # ⌈100 / 8⌉ = 13 steps an epoch
    # 5 s start-up + 39 steps × 0.2 s + (3 × 20 + 40) examples × 0.01 s
    assert cost.trial_seconds(g, cost.StepTime(0.2, "measured"), RATES) == pytest.approx(5 + 7.8 + 1.0)


def test_step_times_are_measured_or_extrapolated_and_say_which(tmp_path):
    times = cost.StepTimes(tmp_path / cost.FILENAME)
    assert times.lookup(KEY) is None
    times.put(KEY, 0.1)
    times.put({**KEY, "micro_batch": 64}, 0.5)
    assert times.lookup(KEY) == cost.StepTime(0.1, "measured")
    # micro-batch 16 is nearer 8 than 64 (by ratio): twice 8's time
    assert times.lookup({**KEY, "micro_batch": 16}) == cost.StepTime(pytest.approx(0.2),
                                                                      "extrapolated from micro-batch 8")
    assert times.lookup({**KEY, "micro_batch": 32}).how == "extrapolated from micro-batch 64"
    assert times.lookup({**KEY, "method": "lora"}) is None  # another method's time is never borrowed
    assert cost.StepTimes(tmp_path / cost.FILENAME).lookup(KEY).seconds == 0.1  # kept: a second run measures nothing


def test_wall_time_on_slots_is_the_longest_first_schedule():
    # 5, 4, 3, 3, 3 on two slots: 5 | 4 → 5 | 7 → 8 | 7 → 8 | 10 (the best split, 5+4 | 3+3+3, is 9)
    assert cost.wall_seconds([3, 5, 3, 4, 3], 2) == 10
    assert cost.wall_seconds([3, 5, 3, 4, 3], 1) == 18
    assert cost.wall_seconds([3, 5, 3, 4, 3], 8) == 5  # never shorter than the longest trial


def test_totals_over_a_ten_thousand_trial_grid_and_the_unpredicted_named():
    groups = [group(method="adapter", trials=5000), group(method="lora", trials=4000),
              group(method="bitfit", trials=1000)]
    steps = {("adapter", "rte"): cost.StepTime(0.2, "measured"),
             ("lora", "rte"): cost.StepTime(0.4, "extrapolated from micro-batch 4")}
    rows = cost.predict(groups, steps, RATES)
    each = {r.group.method: r.seconds for r in rows}
    assert each["bitfit"] is None
    t = cost.totals(rows, slots=4)
    expected = 5000 * each["adapter"] + 4000 * each["lora"]
    assert t["device_hours"] == pytest.approx(expected / 3600) and t["unpredicted_trials"] == 1000
    assert t["wall_hours"] == pytest.approx(expected / 4 / 3600, rel=1e-3)  # many equal trials pack evenly
    text = "\n".join(cost.lines(rows, RATES, 4))
    assert "not calibrated" in text and "extrapolated from micro-batch 4" in text
    assert "1000 trials not predicted" in text


def test_a_spec_grid_becomes_one_group_per_method_task_and_size():
    from peftbench.harness.spec import parse_spec

    spec = parse_spec({"name": "s", "model": "tiny-t5", "data": "fixtures", "methods": ["adapter", "bitfit"],
                       "tasks": ["rte", "sst2"], "learning_rates": [1e-3, 3e-3], "seeds": [0, 1, 2],
                       "epochs": {"rte": 2, "sst2": 4}, "batch_size": 16})
    sizes = {"rte": (100, 10, 30), "sst2": None}  # sst2's sizes unknown: left out, never guessed
    groups = cost.groups_of(spec, lambda task, _size: sizes[task])
    assert [(g.method, g.task, g.trials) for g in groups] == [("adapter", "rte", 6), ("bitfit", "rte", 6)]
    g = groups[0]
    assert (g.batch, g.epochs, g.steps, g.validations) == (16, 2, 2 * 7, 2)  # ⌈100 / 16⌉ = 7 steps an epoch
    assert (g.train_examples, g.val_examples, g.test_examples) == (100, 10, 30)
