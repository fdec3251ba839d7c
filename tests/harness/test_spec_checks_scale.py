"""A large spec's pre-run checks do per distinct method, task and train size what does not change with the
learning rate or seed (a 10,000-point spec's dry run answers in seconds): counted calls, no timing."""

from __future__ import annotations

import dataclasses
import hashlib
import json

import pytest

from peftbench.harness import spec as spec_module
from peftbench.harness.config import LATER_SETTINGS, MIXTURE_SETTINGS, TrialConfig, default_of
from peftbench.harness.spec import SweepSpec, parse_spec

RAW = {"model": "tiny-t5", "data": "fixtures", "methods": ["adapter", "bitfit", {"name": "lora", "options": {"r": 4}}],
       "tasks": ["sst2", "rte"], "learning_rates": [1e-3, 3e-4, 1e-4], "seeds": list(range(10)), "epochs": 2}


def test_checks_build_each_method_once_and_each_trial_config_once_per_method_and_task(monkeypatch):
    import peftbench.engine.accounting as accounting

    builds, trials = [], []
    count_params, trial = accounting.count_params, SweepSpec.trial
    monkeypatch.setattr(accounting, "count_params", lambda *a, **k: builds.append(a[1]) or count_params(*a, **k))
    monkeypatch.setattr(SweepSpec, "trial", lambda self, *a, **k: trials.append(a[:2]) or trial(self, *a, **k))
    spec = parse_spec(RAW)
    assert len(spec.points()) == 3 * 2 * 3 * 10
    assert sorted(builds) == ["adapter", "bitfit", "lora"]  # once per method, not per point
    assert len(set(trials)) == 6  # each method × task built in full …
    many = len(trials)
    trials.clear()
    parse_spec({**RAW, "seeds": [0], "learning_rates": [1e-3]})
    assert len(trials) == many  # … as often for 180 points as for 6: the rest only take a rate and a seed


def test_the_checks_configs_are_the_points_configs_and_keep_their_ids():
    spec = parse_spec(RAW)
    pairs = list(spec_module._point_configs(spec))
    assert [p for p, _ in pairs] == spec.points()
    assert all(cfg == spec.trial_at(p) for p, cfg in pairs)
    # the id's digest is still that of every field (as dataclasses.asdict gives them), less the unused ones
    cfg = pairs[-1][1]
    settings = dataclasses.asdict(cfg)
    for key in (*MIXTURE_SETTINGS, "declarations", "log_samples"):
        del settings[key]
    for key in LATER_SETTINGS:
        if key in settings and settings[key] == default_of(key):
            del settings[key]
    digest = hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:8]
    assert cfg.trial_id == f"lora-rte-lr0.0001-s9-{digest}" and isinstance(cfg, TrialConfig)


def test_a_second_dry_run_into_a_folder_plans_no_peak_again(tmp_path, monkeypatch, capsys):
    import yaml

    from peftbench.budgets import plan
    from peftbench.budgets.cache import PEAKS_FILE
    from peftbench.cli.main import main

    planned, real = [], plan._planned_peak
    monkeypatch.setattr(plan, "_planned_peak", lambda w, b: planned.append(w.method) or real(w, b))
    spec, out = tmp_path / "spec.yaml", tmp_path / "out"
    spec.write_text(yaml.safe_dump({**RAW, "batch_size": 8}))

    def dry_run() -> str:
        monkeypatch.setattr(plan, "_PLANNED", {})  # as a new process: nothing planned in this one
        assert main(["sweep", str(spec), "--dry-run", "--out", str(out)]) == 0, capsys.readouterr().err
        return capsys.readouterr().out

    first = dry_run()
    assert sorted(planned) == ["adapter", "bitfit", "lora"] and not out.exists()  # one forward a method; no folder made
    out.mkdir()
    assert dry_run() == first and len(planned) == 6 and (out / PEAKS_FILE).is_file()  # planned again, kept
    assert dry_run() == first and len(planned) == 6  # read back: no forward


def test_a_kept_peak_is_what_the_check_judges_and_a_broken_one_is_planned_again(tmp_path, monkeypatch):
    from peftbench.budgets import plan
    from peftbench.budgets.cache import PEAKS_FILE, PlannedPeaks
    from peftbench.harness.spec import SpecError, check_fixed_batches
    from peftbench.harness.trial import trial_workload

    spec = parse_spec({**RAW, "methods": ["bitfit"], "tasks": ["rte"], "batch_size": 8})
    key = plan.peak_key(trial_workload(spec.trial_at(spec.points()[0])), 8)
    assert key["micro_batch"] == 8 and key["method_source"] and key["versions"]["torch"]
    kept = PlannedPeaks(tmp_path / PEAKS_FILE)
    kept.put(key, 10**15)  # as if an earlier check had planned a petabyte
    kept.save()
    monkeypatch.setattr(plan, "_PLANNED", {})
    with pytest.raises(SpecError, match=r"bitfit \{\} on tiny-t5 at a fixed batch of 8 .* planned peak 1000000\.00 GB"):
        check_fixed_batches(spec, "s.yaml", peaks=PlannedPeaks(tmp_path / PEAKS_FILE))
    text = (tmp_path / PEAKS_FILE).read_text().replace("1000000000000000", '"lots"')
    (tmp_path / PEAKS_FILE).write_text(text)
    monkeypatch.setattr(plan, "_PLANNED", {})
    check_fixed_batches(spec, "s.yaml", peaks=PlannedPeaks(tmp_path / PEAKS_FILE))  # planned again: it fits
