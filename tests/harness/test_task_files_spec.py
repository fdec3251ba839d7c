"""A spec's task files: the driver reads them and resolves relative paths; each trial carries its
tasks' declarations, so a worker process without the task file runs it from what it is sent."""

import json
import pickle
import subprocess
import sys

import pytest

from peftbench.harness.spec import SpecError, load_spec
from peftbench.tasks.declared import load_task_file

TASK = """name: stars-spec
data: {train: ../data/train.jsonl, validation: ../data/dev.jsonl}
input: "review: {text}"
target: {label: stars, texts: [low, high]}
"""
ROWS = [{"text": f"it was {'great' if i % 2 else 'awful'} {i}", "stars": ["low", "high"][i % 2]} for i in range(40)]


def write_rows(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "data").mkdir()
    write_rows(tmp_path / "data" / "train.jsonl", ROWS)
    write_rows(tmp_path / "data" / "dev.jsonl", ROWS[:10])
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "stars.yaml").write_text(TASK)
    (tmp_path / "spec.yaml").write_text(
        "model: tiny-t5\ndata: fixtures\ntask_files: [tasks]\ntasks: [stars-spec]\nmethods: [bitfit]\n"
        "learning_rates: [0.01]\nseeds: [0]\nepochs: 1\nbatch_size: 8\nwarmup_steps: 1\n")
    return tmp_path


def test_a_trial_carries_its_declaration_and_a_changed_file_is_another_trial(folder):
    spec = load_spec(folder / "spec.yaml")
    [cfg] = spec.trials()
    [sent] = cfg.declarations
    assert sent["entry"]["name"] == "stars-spec" and sent["declared_in"] == str(folder / "tasks" / "stars.yaml")
    write_rows(folder / "data" / "dev.jsonl", ROWS[1:11])  # same name, other rows
    [changed] = load_spec(folder / "spec.yaml").trials()
    assert changed.trial_id != cfg.trial_id  # an ok record of the old data is not taken for this one


def test_a_model_named_relative_to_the_spec_is_made_absolute(folder):
    from testkit.models import tiny_model

    tiny_model().save_pretrained(folder / "my" / "mymodel")
    text = (folder / "spec.yaml").read_text().replace("model: tiny-t5", "model: my/mymodel")
    (folder / "spec.yaml").write_text(text)
    [cfg] = load_spec(folder / "spec.yaml").trials()
    assert cfg.model == str(folder / "my" / "mymodel")


def test_a_bad_task_file_in_a_spec_is_one_line(folder):
    (folder / "tasks" / "stars.yaml").write_text(TASK.replace("review: {text}", "review: {body}"))
    with pytest.raises(SpecError) as caught:
        load_spec(folder / "spec.yaml")
    text = str(caught.value)
    assert text.startswith(f"{folder / 'spec.yaml'}: task_files[0]: {folder / 'tasks' / 'stars.yaml'}: input: "
                           "field 'body' is not in train.jsonl row 1") and "\n" not in text
    (folder / "tasks" / "stars.yaml").write_text(TASK.replace("stars-spec", "rte"))
    with pytest.raises(SpecError, match=r"task_files: .*'rte' is a built-in task's name"):
        load_spec(folder / "spec.yaml")


WORKER = """
import json, pickle, sys
from peftbench.harness.trial import run_trial
from peftbench.tasks import task_names
cfg = pickle.loads(open(sys.argv[1], "rb").read())
known_before = cfg.task in task_names()
record = run_trial(cfg, sys.argv[2])
print(json.dumps({"known_before": known_before, "status": record["status"], "error": record["error"],
                  "data_source": record["data_source"]}))
"""


def test_a_worker_without_the_task_file_runs_the_trial_it_is_sent(folder, tmp_path_factory):
    [cfg] = load_spec(folder / "spec.yaml").trials()
    [task] = load_task_file(folder / "tasks" / "stars.yaml")
    sent = tmp_path_factory.mktemp("sent") / "cfg.pkl"
    sent.write_bytes(pickle.dumps(cfg))
    (folder / "tasks" / "stars.yaml").unlink()  # the worker's node has the data (shared storage), not the file
    out = tmp_path_factory.mktemp("out")
    done = subprocess.run([sys.executable, "-c", WORKER, str(sent), str(out)], capture_output=True, text=True,
                          check=True, cwd=tmp_path_factory.mktemp("elsewhere"))
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"known_before": False, "status": "ok", "error": None, "data_source": task.data_source}


def test_include_path_adds_a_folders_task_files_as_the_specs_own(folder, monkeypatch, capsys):
    from peftbench.cli.main import main

    (folder / "more").mkdir()  # a name of its own: the registry of this process outlives each test
    (folder / "more" / "stars.yaml").write_text(TASK.replace("stars-spec", "stars-included"))
    (folder / "bare.yaml").write_text((folder / "spec.yaml").read_text().replace("task_files: [tasks]\n", "")
                                      .replace("stars-spec", "stars-included"))
    with pytest.raises(SpecError, match="unknown task 'stars-included'"):
        load_spec(folder / "bare.yaml")
    monkeypatch.chdir(folder / "data")  # the flag's folder is relative to where the command runs, not to the spec
    [cfg] = load_spec(folder / "bare.yaml", include_paths=("../more",)).trials()
    assert [s["declared_in"] for s in cfg.declarations] == [str(folder / "more" / "stars.yaml")]
    assert main(["sweep", str(folder / "bare.yaml"), "--include-path", "../more", "--dry-run"]) == 0
    assert "1 trials = 1 methods × 1 tasks" in capsys.readouterr().out


@pytest.mark.parametrize(("made", "what"), [(False, "no such folder"), (True, "no task file (*.yaml) in it")])
def test_an_include_path_without_task_files_is_one_line(folder, capsys, made, what):
    from peftbench.cli.main import main

    if made:
        (folder / "empty").mkdir()
    assert main(["sweep", str(folder / "spec.yaml"), "--include-path", str(folder / "empty"), "--dry-run"]) == 2
    assert capsys.readouterr().err == f"peftbench: --include-path {folder / 'empty'}: {what}\n"
