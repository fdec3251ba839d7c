"""sweep --dry-run's cost lines: batch and steps from the spec and the fixtures' sizes; seconds only
where OUT/step-times.json holds a step time (injected here: no measurement in a test)."""

from __future__ import annotations

import yaml

from peftbench.cli.main import main
from peftbench.harness import cost
from peftbench.harness.provenance import device_name
from peftbench.tasks import get_task

SPEC = {"name": "s", "model": "tiny-t5", "data": "fixtures", "methods": ["adapter", "bitfit"], "tasks": ["rte"],
        "learning_rates": [1e-3], "seeds": [0, 1], "epochs": 2, "batch_size": 4}


def test_dry_run_prints_steps_and_the_seconds_of_calibrated_methods_only(tmp_path, capsys):
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(SPEC))
    task = get_task("rte")
    train = task.split_sizes(task.load_fixtures())["train"]
    steps = 2 * -(-train // 4)
    key = {"device": device_name(), "model": "tiny-t5", "method": "adapter", "micro_batch": 4, "task": "rte"}
    cost.StepTimes(tmp_path / cost.FILENAME).put(key, 0.5)
    assert main(["sweep", str(spec), "--dry-run", "--out", str(tmp_path)]) == 0
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if " rte " in line}
    assert rows["adapter"].split()[2:6] == ["2", "4", str(steps), f"{steps * 0.5:.1f}"]
    assert "measured" in rows["adapter"] and rows["bitfit"].split()[5:] == ["—", "not", "calibrated"]


def test_a_new_sweep_keeps_its_prediction_and_a_resumed_one_never_replaces_it(tmp_path):
    from peftbench.cli.dry_run import write_prediction
    from peftbench.files import read_json
    from peftbench.harness.folder import SPEC_FILE
    from peftbench.harness.spec import parse_spec

    spec = parse_spec(SPEC)
    assert write_prediction(spec, str(tmp_path)) is None  # nothing calibrated: nothing predicted, no file
    key = {"device": device_name(), "model": "tiny-t5", "method": "adapter", "micro_batch": 4, "task": "rte"}
    cost.StepTimes(tmp_path / cost.FILENAME).put(key, 0.5)
    path = write_prediction(spec, str(tmp_path))
    rows = {r["method"]: r for r in read_json(path, kind="cache")["rows"]}
    assert rows["adapter"]["seconds"] > 0 and rows["bitfit"]["seconds"] is None
    assert read_json(path, kind="cache")["unpredicted_trials"] == 2
    path.unlink()
    (tmp_path / SPEC_FILE).write_text("{}")  # a sweep already ran here: its first prediction stands
    assert write_prediction(spec, str(tmp_path)) is None and not path.exists()


def test_calibration_measures_each_missing_step_time_once(tmp_path):
    from peftbench.cli.dry_run import calibrate
    from peftbench.harness.spec import parse_spec

    spec = parse_spec({**SPEC, "methods": ["bitfit"]})
    said = []
    assert calibrate(spec, str(tmp_path), repeats=1, log=said.append) == 1
    (entry,) = cost.StepTimes(tmp_path / cost.FILENAME).entries().values()
    assert entry["key"]["method"] == "bitfit" and entry["key"]["micro_batch"] == 4 and entry["seconds"] > 0
    assert calibrate(spec, str(tmp_path), repeats=1, log=said.append) == 0  # cached: a second run measures nothing
    assert len(said) == 1 and "bitfit on rte" in said[0]
