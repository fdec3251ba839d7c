"""Sweep specs: valid ones give the grid; invalid ones give one line naming the key, exit 2."""

from pathlib import Path

import pytest
import yaml

from peftbench.cli.main import main
from peftbench.harness.spec import SpecError, load_spec, parse_spec

ROOT = Path(__file__).resolve().parents[2]


def base_spec(**changes):
    spec = {
        "model": "tiny-t5", "methods": ["full", {"name": "adapter", "options": {"reduction_factor": 16}}],
        "tasks": ["sst2", "rte"], "learning_rates": [1e-3, 3e-4], "seeds": [0, 1], "epochs": 2,
    }
    spec.update(changes)
    return spec


def test_smoke_spec_is_a_16_point_grid():
    spec = load_spec(ROOT / "configs" / "smoke.yaml")
    trials = spec.trials()
    assert len(trials) == len(spec.methods) * len(spec.tasks) * len(spec.learning_rates) * len(spec.seeds)
    assert len({t.trial_id for t in trials}) == len(trials)


def test_overrides_land_in_the_trial_config():
    spec = parse_spec(base_spec())
    trial = spec.trial("adapter[reduction_factor=16]", "rte", 3e-4, 1)
    assert (trial.method, trial.method_options, trial.task, trial.learning_rate, trial.seed, trial.epochs) == (
        "adapter", {"reduction_factor": 16}, "rte", 3e-4, 1, 2)


@pytest.mark.parametrize("changes, key", [
    ({"methods": ["full", "no-such-method"]}, "methods[1].name"),
    ({"tasks": ["sst2", "no-such-task"]}, "tasks[1]"),
    ({"epochs": "three"}, "epochs"),
    ({"learning_rates": [1e-3, "fast"]}, "learning_rates[1]"),
    ({"seeds": [0, 1.5]}, "seeds[1]"),
    ({"methods": [{"name": "adapter", "options": {"reduction_factor": 0}}]}, "methods[0].options"),
    ({"methods": [{"name": "adapter", "options": {"bottleneck": 3}}]}, "methods[0].options"),
    ({"batch_size": True}, "batch_size"),
    ({"learning_rate": [1e-3]}, "learning_rate"),
])
def test_bad_specs_name_the_key(changes, key):
    with pytest.raises(SpecError) as err:
        parse_spec(base_spec(**changes), source="x.yaml")
    message = str(err.value)
    assert message.startswith(f"x.yaml: {key}: ")
    assert "\n" not in message


def test_missing_key_is_named():
    spec = base_spec()
    del spec["seeds"]
    with pytest.raises(SpecError, match=r"^<spec>: seeds: missing$"):
        parse_spec(spec)


def test_cli_rejects_a_bad_spec_before_anything_starts(tmp_path, capsys):
    spec_file = tmp_path / "bad.yaml"
    spec_file.write_text(yaml.safe_dump(base_spec(methods=["full", "lora-xl"])))
    out = tmp_path / "out"
    code = main(["sweep", str(spec_file), "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and "methods[1].name" in err[0] and "lora-xl" in err[0]
    assert not out.exists()


def test_dry_run_counts_the_grid(tmp_path, capsys):
    spec_file = tmp_path / "ok.yaml"
    spec_file.write_text(yaml.safe_dump(base_spec()))
    assert main(["sweep", str(spec_file), "--dry-run"]) == 0
    assert "16 trials = 2 methods × 2 tasks × 2 learning rates × 2 seeds" in capsys.readouterr().out
