"""A large spec's pre-run checks do per distinct method, task and train size what does not change with the
learning rate or seed (a 10,000-point spec's dry run answers in seconds): counted calls, no timing."""

from __future__ import annotations

import dataclasses
import hashlib
import json

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
