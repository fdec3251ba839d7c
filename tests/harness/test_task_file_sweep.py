"""The README's own-data example, offline: a JSONL of one's own with a new label set and a task file
beside it (configs/own-task/), swept with two methods on a saved model named relative to the spec,
ends with ok records that name the data, and a report; ``--log-samples`` keeps what the model said."""

import shutil
from pathlib import Path

from peftbench.cli.main import main
from peftbench.models.tinyt5 import pretrained_path

from testkit.sweeps import records_in, sweep, table_rows

EXAMPLE = Path(__file__).parents[2] / "configs" / "own-task"


def test_the_readme_example_as_shipped_validates(capsys):
    assert main(["tasks", "validate", str(EXAMPLE / "task.yaml")]) == 0
    assert "# moods: ok; file:messages.jsonl@sha256:" in capsys.readouterr().out
    assert main(["sweep", str(EXAMPLE / "spec.yaml"), "--dry-run"]) == 0  # model: tiny-t5-pretrained
    assert "2 trials = 2 methods × 1 tasks" in capsys.readouterr().out


def test_a_sweep_on_own_data_and_a_relative_local_model_ends_ok_with_a_report(tmp_path):
    folder = shutil.copytree(EXAMPLE, tmp_path / "own-task")
    shutil.copytree(pretrained_path(), folder / "my" / "mymodel")
    spec = folder / "spec.yaml"
    spec.write_text(spec.read_text().replace("model: tiny-t5-pretrained", "model: my/mymodel"))
    out = tmp_path / "out"
    proc = sweep(spec, out, "--log-samples", cwd=tmp_path)  # not the spec's folder: paths resolve against the spec
    output, _ = proc.communicate(timeout=900)
    assert proc.returncode == 0, output[-3000:]
    records = records_in(out)
    assert sorted(r["method"] for r in records.values()) == ["bitfit", "lora"]
    assert all(r["status"] == "ok" for r in records.values()), [r["error"] for r in records.values()]
    assert {r["data_source"].split("+")[0].split("@")[0] for r in records.values()} == {"file:messages.jsonl"}
    assert all(r["data_source"].split("+")[1].startswith("task:task.yaml@sha256:") for r in records.values())
    assert {r["model"] for r in records.values()} == {str(folder / "my" / "mymodel")}
    _, failed = table_rows(output, "Failed trials (0)")
    assert failed == {}
    samples = sorted(p.name for p in (out / "samples").iterdir())  # the flag, as the spec's log_samples: true
    assert samples == sorted(f"{trial_id}.jsonl" for trial_id in records)
