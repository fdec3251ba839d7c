"""``peftbench trial --task FILE.yaml[:NAME]``: one trial of a task file's task, in this process, no Ray;
its record names the data and the task file's hash as a sweep's records do."""

import json
import subprocess
import sys

import pytest

from peftbench.cli.main import main
from peftbench.harness.records import read_records
from peftbench.tasks.declared import load_task_file

ROWS = [{"question": f"capital of land {i}?", "answer": f"city {i}", "kind": ["big", "small"][i % 2]}
        for i in range(8)]
TASKS = """defaults:
  data: {train: train.jsonl, validation: dev.jsonl}
  input: "question: {question}"
tasks:
  - name: capitals
    target: {text: answer, max_length: measure}
  - name: sizes
    target: {label: kind, texts: [big, small]}
"""


@pytest.fixture
def folder(tmp_path):
    for name, rows in (("train.jsonl", ROWS), ("dev.jsonl", ROWS[:4])):
        (tmp_path / name).write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "tasks.yaml").write_text(TASKS)
    return tmp_path


def test_a_trial_of_a_task_files_free_text_task_records_its_data_and_file(folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    done = subprocess.run([sys.executable, "-m", "peftbench", "trial", "--task", "tasks.yaml:capitals",
                           "--method", "bitfit", "--lr", "1e-2", "--model", "tiny-t5", "--epochs", "1",
                           "--batch-size", "4", "--out", str(out)],
                          capture_output=True, text=True, cwd=folder, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    [record] = read_records(out)
    [capitals, _] = load_task_file(folder / "tasks.yaml")
    assert record["status"] == "ok" and record["task"] == "capitals"
    assert record["data_source"] == capitals.data_source  # file:train.jsonl@sha256:…+…+task:tasks.yaml@sha256:…
    assert record["data_source"].endswith(f"+task:tasks.yaml@sha256:{capitals.file_sha256}")
    assert set(record["test_metrics"]) == {"squad_em", "squad_f1", "invalid", "examples"}
    assert record["test_metrics"]["examples"] == 2  # the test half of dev's 4 rows


@pytest.mark.parametrize(("task", "says"), [
    ("tasks.yaml", "name: the file declares capitals, sizes; name one (FILE:NAME)"),
    ("tasks.yaml:colours", "name: no task 'colours' in the file (it declares capitals, sizes)"),
])
def test_a_task_file_that_does_not_say_which_task_is_one_line(folder, monkeypatch, capsys, task, says):
    monkeypatch.chdir(folder)
    assert main(["trial", "--task", task, "--method", "bitfit", "--lr", "1e-2", "--out", str(folder / "out")]) == 2
    assert capsys.readouterr().err == f"peftbench: {folder / 'tasks.yaml'}: {says}\n"
