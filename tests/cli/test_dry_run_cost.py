"""sweep --dry-run's cost lines: batch and steps from the spec and the fixtures' sizes; seconds only where
OUT/step-times.json holds every part (injected here, but for the calibration's own test)."""

from __future__ import annotations

import yaml

from peftbench.cli import dry_run
from peftbench.cli.main import main
from peftbench.harness import cost
from peftbench.harness.calibrate import clock_name
from peftbench.harness.provenance import device_name
from peftbench.harness.spec import parse_spec
from peftbench.tasks import get_task

SPEC = {"name": "s", "model": "tiny-t5", "data": "fixtures", "methods": ["adapter", "bitfit"], "tasks": ["rte"],
        "learning_rates": [1e-3], "seeds": [0, 1], "epochs": 2, "batch_size": 4}


def inject(folder, method: str, *, step: float, row: float | None = None, startup: float | None = None) -> dict:
    """Figures for ``method`` on rte in ``folder``'s cache, under the keys the dry run looks up."""
    spec = parse_spec(SPEC)
    (group,) = [g for g in cost.groups_of(spec, dry_run.fixture_sizes(spec)) if g.method == method]
    keys = dry_run.keys(spec, group, device_name(), clock_name())
    times = cost.StepTimes(folder / cost.FILENAME)
    for kind, seconds in (("step", step), ("generation", row), ("startup", startup)):
        if seconds is not None:
            times.put(keys[kind], seconds)
    return keys


def test_dry_run_prints_each_part_and_the_seconds_of_fully_calibrated_methods_only(tmp_path, capsys):
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(SPEC))
    task = get_task("rte")
    sizes = task.split_sizes(task.load_fixtures())
    steps = 2 * -(-sizes["train"] // 4)
    rows = 2 * sizes["validation"] + sizes["test"]  # two validations (one an epoch) and the test split
    inject(tmp_path, "adapter", step=0.5, row=0.01, startup=3.0)
    inject(tmp_path, "bitfit", step=0.25)  # no generation or start-up measured: no seconds per trial
    assert main(["sweep", str(spec), "--dry-run", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    found = {line.split()[0]: line.split() for line in out.splitlines() if " rte " in line}
    assert found["adapter"][2:9] == ["2", "4", str(steps), f"{steps * 0.5:.1f}", f"{rows * 0.01:.1f}", "3.0",
                                     f"{3 + steps * 0.5 + rows * 0.01:.1f}"]
    assert found["bitfit"][5:9] == [f"{steps * 0.25:.1f}", "—", "—", "—"]
    assert "2 trials not predicted" in out and "lower bound" not in out


def test_a_new_sweep_keeps_its_prediction_and_a_resumed_one_never_replaces_it(tmp_path):
    from peftbench.files import read_json
    from peftbench.harness.folder import SPEC_FILE

    spec = parse_spec(SPEC)
    assert dry_run.write_prediction(spec, str(tmp_path)) is None  # nothing calibrated: nothing predicted, no file
    inject(tmp_path, "adapter", step=0.5, row=0.01, startup=3.0)
    path = dry_run.write_prediction(spec, str(tmp_path))
    saved = read_json(path, kind="cache")
    rows = {r["method"]: r for r in saved["rows"]}
    assert rows["adapter"]["seconds"] > rows["adapter"]["train_s"] > 0 and rows["bitfit"]["seconds"] is None
    assert saved["unpredicted_trials"] == 2 and saved["clock"] == clock_name()
    path.unlink()
    (tmp_path / SPEC_FILE).write_text("{}")  # a sweep already ran here: its first prediction stands
    assert dry_run.write_prediction(spec, str(tmp_path)) is None and not path.exists()


def test_calibration_measures_each_missing_part_once_at_the_datas_lengths(tmp_path, monkeypatch):
    from peftbench.harness import calibrate

    starts = []
    monkeypatch.setattr(calibrate, "process_seconds", lambda *, clock: starts.append(clock) or 2.0)
    spec = parse_spec({**SPEC, "methods": ["bitfit"]})
    said = []
    # the process start, then the step, generation and start-up of bitfit on rte
    assert dry_run.calibrate(spec, str(tmp_path), repeats=1, log=said.append) == (4, device_name())
    entries = {e["key"]["kind"]: e for e in cost.StepTimes(tmp_path / cost.FILENAME).entries().values()}
    assert set(entries) == {"process", "step", "generation", "startup"} and starts == [clock_name()]
    assert entries["step"]["key"]["micro_batch"] == 4 and all(e["seconds"] > 0 for e in entries.values())
    # the step ran at the lengths the fixtures give, shorter than the task's maximum source length
    source = int(entries["step"]["how"].split(" at ")[1].split("+")[0])
    assert source < get_task("rte").max_source_length and "mean padded batch" in entries["step"]["how"]
    # cached: a second run measures nothing
    assert dry_run.calibrate(spec, str(tmp_path), repeats=1, log=said.append)[0] == 0
    assert len(said) == 1 and "bitfit on rte" in said[0]
    (row,) = dry_run.rows(spec, str(tmp_path), dry_run.local_slots(spec))[0]
    assert row.seconds is not None and row.eval_s > 0  # every part measured: a prediction


def test_an_image_text_task_is_left_uncalibrated_and_says_so(tmp_path, monkeypatch):
    from peftbench.harness import calibrate

    monkeypatch.setattr(calibrate, "process_seconds", lambda *, clock: 2.0)
    spec = parse_spec({**SPEC, "model": "tiny-t5+tiny-clip", "methods": ["bitfit"], "tasks": ["vqa"]})
    said = []
    assert dry_run.calibrate(spec, str(tmp_path), repeats=1, log=said.append)[0] == 1  # the process start only
    assert said == ["bitfit on vqa: an image-text task, not calibrated (its images are not fed)"]
