"""A mixture whose members have their own batches (VL-Adapter's ``member_batch_sizes``) is costed member by
member: each member's optimizer steps, as many as the trial takes, of ``accumulation`` micro-batches at its
own micro-batch's step time; its generated rows at its own seconds per row."""

from __future__ import annotations

import math

import pytest
import yaml

from peftbench.harness import cost
from peftbench.harness.spec import parse_spec

SPEC = {"name": "m", "model": "tiny-t5", "data": "fixtures", "methods": ["adapter"],
        "mixtures": {"both": ["rte", "cb"]}, "sampling": "roundrobin", "member_batch_sizes": {"rte": 8, "cb": 4},
        "learning_rates": [1e-3], "seeds": [0, 1], "epochs": 2}
SIZES = {"rte": (100, 10, 20), "cb": (30, 6, 12)}  # (train, validation, test) examples


def test_a_mixture_of_unequal_member_batches_costs_the_sum_of_its_members():
    spec = parse_spec(SPEC)
    (g,) = cost.groups_of(spec, lambda task, _size: SIZES[task], lambda cfg: 2)
    rte, cb = g.members
    assert (g.task, g.trials, g.batch) == ("both", 2, 8)
    # each member batch is one optimizer step of 2 micro-batches of that member's rows: ⌈100 / 8⌉ and ⌈30 / 4⌉ an epoch
    assert (rte.batch, rte.micro_batch, rte.steps) == (8, 4, 2 * math.ceil(100 / 8))
    assert (cb.batch, cb.micro_batch, cb.steps) == (4, 2, 2 * math.ceil(30 / 4))
    assert g.steps == rte.steps + cb.steps and g.validations == 2
    assert (rte.generated_rows, cb.generated_rows) == (2 * 10 + 20, 2 * 6 + 12)
    figures = ((cost.Figure(0.1, "measured"), cost.Figure(0.01, "measured")),
               (cost.Figure(0.05, "measured"), cost.Figure(0.02, "measured")))
    row = cost.Row(g, cost.Parts(step=None, row=None, startup=cost.Figure(1.0, "measured"), members=figures))
    assert row.train_s == pytest.approx(26 * 2 * 0.1 + 16 * 2 * 0.05)  # each member at its own step time
    assert row.eval_s == pytest.approx(40 * 0.01 + 24 * 0.02)
    assert row.seconds == pytest.approx(1.0 + row.train_s + row.eval_s)
    # a member not measured: no seconds for the trial (a sum with a part left out would be too low)
    missing = cost.Row(g, cost.Parts(step=None, row=None, startup=cost.Figure(1.0, "measured"),
                                     members=(figures[0], (None, figures[1][1]))))
    assert missing.train_s is None and missing.seconds is None


def test_a_mixture_without_member_batches_steps_every_member_at_the_batch_size():
    spec = parse_spec({**{k: v for k, v in SPEC.items() if k != "member_batch_sizes"}, "batch_size": 16,
                       "sampling": "proportional"})
    (g,) = cost.groups_of(spec, lambda task, _size: SIZES[task], lambda _cfg: pytest.fail("no member batch to plan"))
    assert [(m.batch, m.accumulation) for m in g.members] == [(16, 1), (16, 1)]
    # drawn in proportion to their rows: ⌈130 / 16⌉ = 9 batches an epoch, 100 : 30 between them
    assert g.steps == 2 * 9 and g.members[0].steps == pytest.approx(2 * 9 * 100 / 130)


def test_a_mixtures_member_steps_are_the_micro_batches_the_trial_runs():
    from peftbench.budgets.plan import BatchPlan
    from peftbench.harness.setup import batches_per_epoch
    from peftbench.tasks import get_task
    from peftbench.tasks.mixture import Mixture

    spec = parse_spec(SPEC)
    cfg = spec.trial_at(spec.points()[0])
    (g,) = cost.groups_of(spec, lambda task, _size: SIZES[task], lambda _cfg: 2)
    mixture = Mixture(cfg.task, tuple(get_task(t) for t in cfg.mixture))
    per_epoch = batches_per_epoch(cfg, BatchPlan(4, 2, "fixed"), mixture, [100, 30], world=1)
    assert sum(m.steps * m.accumulation for m in g.members) == g.epochs * per_epoch


def test_the_dry_run_prints_a_mixtures_seconds_from_its_members_figures(tmp_path, capsys, monkeypatch):
    from peftbench.cli import dry_run
    from peftbench.cli.main import main
    from peftbench.harness.calibrate import clock_name
    from peftbench.harness.provenance import device_name

    monkeypatch.setattr(dry_run, "planned_accumulation", lambda _out: lambda _cfg: 2)  # as a budget that binds
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(yaml.safe_dump(SPEC))
    spec = parse_spec(SPEC)
    (g,) = cost.groups_of(spec, dry_run.fixture_sizes(spec), lambda _cfg: 2)
    times = cost.StepTimes(tmp_path / cost.FILENAME)
    device, clock = device_name(), clock_name()
    for member, (step, row) in zip(g.members, ((0.1, 0.01), (0.05, 0.02)), strict=True):
        keys = dry_run.member_keys(spec, g, member, device, clock)
        assert keys["step"]["task"] == member.task and keys["step"]["micro_batch"] == member.batch // 2
        times.put(keys["step"], step)
        times.put(keys["generation"], row)
    times.put(dry_run.keys(spec, g, device, clock)["startup"], 1.0)
    assert main(["sweep", str(spec_file), "--dry-run", "--out", str(tmp_path)]) == 0
    (line,) = [line.split() for line in capsys.readouterr().out.splitlines() if line.startswith("adapter ")]
    train = sum(m.steps * 2 * s for m, s in zip(g.members, (0.1, 0.05), strict=True))
    generated = sum(m.generated_rows * s for m, s in zip(g.members, (0.01, 0.02), strict=True))
    assert line[1:9] == ["both", "2", "8", str(g.steps), f"{train:.1f}", f"{generated:.1f}", "1.0",
                         f"{1.0 + train + generated:.1f}"]
    assert "rte: 100.0 ms/micro-batch of 4 × 2" in " ".join(line)


def test_the_dry_run_plans_a_member_batch_as_the_trial_does_and_keeps_the_fit(tmp_path, monkeypatch):
    from peftbench.budgets import plan
    from peftbench.budgets.cache import FILENAME, BudgetCache
    from peftbench.cli import dry_run
    from peftbench.harness.trial import trial_workload

    spec = parse_spec(SPEC)
    cfg = spec.trial_at(spec.points()[0])
    assert dry_run.planned_accumulation(str(tmp_path))(cfg) == 1  # tiny T5: the 8 rows of rte's batch fit at once
    (entry,) = BudgetCache(tmp_path / FILENAME)._read().values()  # the trials' cache: they reuse the fit
    assert entry["key"]["method"] == "adapter" and entry["key"]["model"] == trial_workload(cfg).model
    monkeypatch.setattr(plan, "estimate_fit", lambda *a, **k: pytest.fail("planned again"))
    assert dry_run.planned_accumulation(str(tmp_path))(cfg) == 1


def test_calibration_measures_a_mixtures_start_up_and_leaves_its_members_steps_to_their_tasks(tmp_path, monkeypatch):
    from peftbench.cli import dry_run
    from peftbench.harness import calibrate

    started = []
    monkeypatch.setattr(calibrate, "process_seconds", lambda *, clock: 2.0)
    monkeypatch.setattr(calibrate, "startup_seconds",
                        lambda cfg, micro, *, clock: started.append((cfg.mixture, micro)) or 3.0)
    assert dry_run.calibrate(parse_spec(SPEC), str(tmp_path), repeats=1, log=print)[0] == 2  # process, start-up
    assert started == [(("rte", "cb"), 8)]  # the whole mixture set up, at its largest member batch
    (startup,) = [e for e in cost.StepTimes(tmp_path / cost.FILENAME).entries().values()
                  if e["key"]["kind"] == "startup"]
    assert startup["key"]["task"] == "both" and startup["seconds"] == 3.0
