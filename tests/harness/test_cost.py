"""The cost model with injected figures (a quiet machine is needed to check it against a sweep): the formula
by hand, the cache's measured and extrapolated figures, the schedule on slots, the lengths a step pads to."""

from __future__ import annotations

import pytest

from peftbench.harness import cost

KEY = {"kind": "step", "device": "cpu (x86_64)", "clock": "cpu", "threads": 1, "model": "tiny-t5",
       "method": "adapter", "micro_batch": 8, "task": "rte"}


def group(**kw) -> cost.Group:
    base = {"method": "adapter", "task": "rte", "trials": 6, "batch": 8, "epochs": 3, "train_examples": 100,
            "validations": 3, "val_examples": 20, "test_examples": 40}
    return cost.Group(**{**base, **kw})


def parts(step=0.2, row=0.01, startup=5.0) -> cost.Parts:
    return cost.Parts(step=cost.Figure(step, "measured"), row=row and cost.Figure(row, "measured"),
                      startup=startup and cost.Figure(startup, "measured"))


def test_trial_seconds_is_the_formula_by_hand():
    g = group()
    assert g.steps == 3 * 13 and g.generated_rows == 3 * 20 + 40  # ⌈100 / 8⌉ = 13 steps an epoch
    row = cost.Row(g, parts())
    # 5 s start-up + 39 steps × 0.2 s + (3 × 20 + 40) rows × 0.01 s
    assert (row.train_s, row.eval_s) == (pytest.approx(7.8), pytest.approx(1.0))
    assert row.seconds == pytest.approx(5 + 7.8 + 1.0)


def test_a_trial_with_a_part_not_measured_is_not_predicted():
    # a sum without generation or start-up would read as a prediction and be too low: no figure instead
    assert cost.Row(group(), parts(row=None)).seconds is None
    assert cost.Row(group(), parts(startup=None)).seconds is None
    assert cost.Row(group(), parts(startup=None)).train_s == pytest.approx(7.8)


def test_figures_are_measured_or_extrapolated_and_say_which(tmp_path):
    times = cost.StepTimes(tmp_path / cost.FILENAME)
    assert times.lookup(KEY) is None
    times.put(KEY, 0.1, "measured at 40+9 tokens")
    times.put({**KEY, "micro_batch": 64}, 0.5)
    assert times.lookup(KEY) == cost.Figure(0.1, "measured at 40+9 tokens")
    # micro-batch 16 is nearer 8 than 64 (by ratio): twice 8's time
    scaled = cost.Figure(pytest.approx(0.2), "extrapolated from micro-batch 8")
    assert times.lookup({**KEY, "micro_batch": 16}) == scaled
    assert times.lookup({**KEY, "micro_batch": 32}).how == "extrapolated from micro-batch 64"
    assert times.lookup({**KEY, "method": "lora"}) is None  # another method's time is never borrowed
    assert times.lookup({**KEY, "clock": "wall"}) is None  # nor another clock's
    assert times.get({**KEY, "micro_batch": 16}) is None  # exact figures (generation, start-up) are never scaled
    assert cost.StepTimes(tmp_path / cost.FILENAME).lookup(KEY).seconds == 0.1  # kept: a second run measures nothing


def test_wall_time_on_slots_is_the_longest_first_schedule():
    # 5, 4, 3, 3, 3 on two slots: 5 | 4 → 5 | 7 → 8 | 7 → 8 | 10 (the best split, 5+4 | 3+3+3, is 9)
    assert cost.wall_seconds([3, 5, 3, 4, 3], 2) == 10
    assert cost.wall_seconds([3, 5, 3, 4, 3], 1) == 18
    assert cost.wall_seconds([3, 5, 3, 4, 3], 8) == 5  # never shorter than the longest trial


def test_totals_over_a_ten_thousand_trial_grid_and_the_unpredicted_named():
    groups = [group(method="adapter", trials=5000), group(method="lora", trials=4000),
              group(method="bitfit", trials=1000)]
    found = {("adapter", "rte"): parts(step=0.2), ("lora", "rte"): parts(step=0.4)}
    rows = cost.predict(groups, found)
    each = {r.group.method: r.seconds for r in rows}
    assert each["bitfit"] is None
    process = cost.Figure(6.0, "measured: a fresh Python")
    t = cost.totals(rows, slots=4, process=process)
    expected = 5000 * each["adapter"] + 4000 * each["lora"]
    # each of the 4 slots' workers starts once: in the device-hours, and once before the schedule's wall time
    assert t["device_hours"] == pytest.approx((expected + 4 * 6.0) / 3600) and t["unpredicted_trials"] == 1000
    assert t["wall_hours"] == pytest.approx((6.0 + expected / 4) / 3600, rel=1e-3)  # many equal trials pack evenly
    text = "\n".join(cost.lines(rows, 4, process, clock="cpu"))
    assert "not calibrated" in text and "1000 trials not predicted" in text and "cpu_time_s" in text
    assert "lower bound" not in text


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


def test_a_step_pads_to_the_mean_longest_row_of_its_batches():
    from peftbench.harness.calibrate import padded_mean

    # one long row among short ones: only the batch that holds it pads to 100
    lengths = [10] * 15 + [100]
    assert padded_mean(lengths, 4, seed=0) == -(-(100 + 3 * 10) // 4)  # 32.5, rounded up
    assert padded_mean(lengths, 16) == 100 and padded_mean([7, 9], 1) == 8


def test_a_spec_that_counts_steps_costs_its_steps_not_its_epochs():
    """Hyperformer's GLUE mixture trains 65,536 steps whatever the epochs say (configs/multitask-glue.yaml)."""
    from peftbench.harness.spec import parse_spec

    spec = parse_spec({"name": "s", "model": "tiny-t5", "data": "fixtures", "methods": ["adapter"], "tasks": ["rte"],
                       "learning_rates": [1e-3], "seeds": [0], "epochs": 2, "batch_size": 16, "steps": 300})
    (g,) = cost.groups_of(spec, lambda task, _size: (100, 10, 30))
    assert g.steps == 300 and g.validations == 43  # once an epoch of ⌈100 / 16⌉ = 7 steps, as the trial runs


def test_durations_under_a_day_show_their_seconds_too():
    """A smoke's total is a few minutes: "0.06 h" alone hides ±18 s, so the seconds stand beside it."""
    assert cost.hours(0.06) == "0.06 h (216 s)"
    assert cost.hours(30.0) == "30.00 h"
    rows = cost.predict([group(trials=2)], {("adapter", "rte"): parts(step=0.2)})
    text = "\n".join(cost.lines(rows, 1, None, clock="cpu"))
    seconds = 2 * rows[0].seconds
    assert "of wall on 1 slot(s)" in text and f"({seconds:,.0f} s) of wall" in text
