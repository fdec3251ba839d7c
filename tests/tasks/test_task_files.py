"""Task files: a user's own data and task as a YAML declaration, read, checked and turned into a task."""

import json
import pickle

import pytest

from peftbench.cli.main import main
from peftbench.tasks.declared import TaskFileError, load_task_file, task_from_declaration

ROWS = [{"text": f"review {i}", "stars": ["low", "mid", "high"][i % 3], "score": i % 6 / 1.25} for i in range(12)]
TASK = """name: stars
data: {train: train.jsonl, validation: dev.jsonl}
input: "review: {text}"
target: {label: stars, texts: [low, mid, high]}
metrics: [accuracy, macro_f1]
"""


def write_rows(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


@pytest.fixture
def folder(tmp_path):
    write_rows(tmp_path / "train.jsonl", ROWS)
    write_rows(tmp_path / "dev.jsonl", ROWS[:6])
    (tmp_path / "task.yaml").write_text(TASK)
    return tmp_path


def test_a_task_file_becomes_a_task_on_its_own_data(folder):
    [task] = load_task_file(folder / "task.yaml")
    loaded = task.load_with_source()
    assert {k: len(v) for k, v in loaded.splits.items()} == {"train": 12, "validation": 3, "test": 3}
    ex = ROWS[1]
    assert task.source(ex) == "review: review 1" and task.target(ex) == "mid"
    assert loaded.source.startswith("file:train.jsonl@sha256:") and "+file:dev.jsonl@sha256:" in loaded.source
    assert loaded.source.endswith(f"+task:task.yaml@sha256:{task.file_sha256}")
    assert task.metric_names == ("accuracy", "macro_f1")
    assert task.compute_metrics(["low", "nonsense"], ROWS[:2])["invalid"] == 1


def test_csv_tsv_and_parquet_read_as_jsonl(folder):
    import pyarrow as pa
    import pyarrow.parquet as pq

    lines = ["text,stars"] + [f"{r['text']},{r['stars']}" for r in ROWS]
    (folder / "all.csv").write_text("\n".join(lines) + "\n")
    (folder / "all.tsv").write_text("\n".join(line.replace(",", "\t") for line in lines) + "\n")
    pq.write_table(pa.Table.from_pylist(ROWS), folder / "all.parquet")
    for name in ("all.csv", "all.tsv", "all.parquet"):
        (folder / "t.yaml").write_text(TASK.replace("{train: train.jsonl, validation: dev.jsonl}", f"{{file: {name}}}")
                                       + "split: {validation: 0.25, test: 0.25}\n")
        [task] = load_task_file(folder / "t.yaml")
        splits = task.load()
        assert {k: len(v) for k, v in splits.items()} == {"train": 6, "validation": 3, "test": 3}, name
        assert sorted(task.target(r) for s in splits.values() for r in s) == sorted(r["stars"] for r in ROWS)


def test_regression_bins_like_stsb_and_given_splits(folder):
    write_rows(folder / "test.jsonl", ROWS[:2])
    (folder / "t.yaml").write_text(
        "name: score\ndata: {train: train.jsonl, validation: dev.jsonl, test: test.jsonl}\nsplit: given\n"
        "input: '{text}'\ntarget: {regression: score, steps_per_unit: 5, range: [0, 5]}\n"
        "metrics: [pearson, spearman]\n")
    [task] = load_task_file(folder / "t.yaml")
    assert task.label_texts[:3] == ("0.0", "0.2", "0.4") and len(task.label_texts) == 26
    assert task.target({"score": 2.53}) == "2.6" and task.target({"score": 0.8}) == "0.8"
    assert {k: len(v) for k, v in task.load().items()} == {"train": 12, "validation": 6, "test": 2}


def test_measured_source_length_is_the_longest_input_in_bytes(folder):
    (folder / "task.yaml").write_text(TASK + "max_source_length: measure\n")
    [task] = load_task_file(folder / "task.yaml")
    assert task.max_source_length == len("review: review 11") + 1


def test_the_declaration_rebuilds_the_task_where_the_task_file_is_not(folder):
    [task] = load_task_file(folder / "task.yaml")
    sent = pickle.loads(pickle.dumps(task.sent))
    (folder / "task.yaml").unlink()
    rebuilt = task_from_declaration(sent)
    assert rebuilt.data_source == task.data_source and rebuilt.file_sha256 == task.file_sha256
    assert [rebuilt.source(r) + rebuilt.target(r) for r in ROWS] == [task.source(r) + task.target(r) for r in ROWS]
    write_rows(folder / "dev.jsonl", ROWS[:5])  # changed under the same name: refused, not trained on
    with pytest.raises(TaskFileError, match=r"dev\.jsonl: changed since the sweep read it"):
        task_from_declaration(sent)


def test_a_changed_data_file_gives_another_data_source(folder):
    [before] = load_task_file(folder / "task.yaml")
    write_rows(folder / "dev.jsonl", ROWS[1:7])
    [after] = load_task_file(folder / "task.yaml")
    assert before.data_source != after.data_source and before.file_sha256 == after.file_sha256


BAD = {
    "unknown metric": ("metrics: [accuracy, macro_f1]", "metrics: [acuracy]", "metrics: unknown metric 'acuracy'"),
    "missing field": ('"review: {text}"', '"review: {body}"',
                      "input: field 'body' is not in train.jsonl row 1 (it has: text, stars, score)"),
    "label outside": ("texts: [low, mid, high]", "texts: [low, high]",
                      "target: train.jsonl row 2: label 'mid' is not one of low, high"),
    "missing file": ("validation: dev.jsonl", "validation: ../elsewhere/dev.jsonl",
                     "data.validation: ../elsewhere/dev.jsonl: no such file"),
    "unknown key": ("metrics:", "metric:", "metric: unknown key"),
    "no target": ("target:", "targets:", "targets: unknown key"),
    "bad hub": ("{train: train.jsonl, validation: dev.jsonl}", "{hub: nyu-mll/glue}",
                "data.hub: expected OWNER/NAME[/CONFIG]@REVISION"),
    "bad split": ("metrics:", "split: halves\nmetrics:", "split: expected paper or given"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_each_mistake_is_one_line_naming_the_file_and_the_key(folder, case):
    old, new, message = BAD[case]
    assert old in TASK
    (folder / "task.yaml").write_text(TASK.replace(old, new))
    with pytest.raises(TaskFileError) as caught:
        load_task_file(folder / "task.yaml")
    text = str(caught.value)
    assert text.startswith(f"{folder / 'task.yaml'}: ") and message in text and "\n" not in text


def test_empty_split_and_bytes_that_are_not_utf8_are_named(folder):
    (folder / "dev.jsonl").write_text("")
    with pytest.raises(TaskFileError, match=r"task.yaml: data.validation: dev.jsonl: no rows$"):
        load_task_file(folder / "task.yaml")
    (folder / "dev.jsonl").write_bytes(b'{"text": "caf\xe9", "stars": "low"}\n')
    with pytest.raises(TaskFileError, match=r"task.yaml: data: .*dev.jsonl: not UTF-8 \(byte 13\)$"):
        load_task_file(folder / "task.yaml")


def test_a_data_path_with_dotdot_is_fine(folder):
    (folder / "sub").mkdir()
    (folder / "sub" / "task.yaml").write_text(TASK.replace("train.jsonl", "../train.jsonl"))
    with pytest.raises(TaskFileError, match=r"data\.validation: dev\.jsonl: no such file"):
        load_task_file(folder / "sub" / "task.yaml")
    (folder / "sub" / "task.yaml").write_text(TASK.replace(": train.jsonl", ": ../train.jsonl")
                                              .replace(": dev.jsonl", ": ../dev.jsonl"))
    assert load_task_file(folder / "sub" / "task.yaml")[0].name == "stars"


def test_several_tasks_in_one_file(folder):
    entry = "  - " + TASK.strip().replace("\n", "\n    ")
    (folder / "two.yaml").write_text("tasks:\n" + entry + "\n" + entry.replace("name: stars", "name: stars2") + "\n")
    assert [t.name for t in load_task_file(folder / "two.yaml")] == ["stars", "stars2"]
    (folder / "two.yaml").write_text("tasks:\n" + entry + "\n" + entry + "\n")
    with pytest.raises(TaskFileError, match=r"two\.yaml: name: stars declared twice"):
        load_task_file(folder / "two.yaml")


def test_tasks_validate_and_show_read_a_task_file(folder, capsys):
    assert main(["tasks", "validate", str(folder / "task.yaml")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("# stars: ok; file:train.jsonl@sha256:") and "train/validation/test 12/3/3" in out
    assert out.count("source: stars review: review ") == 3  # full fine-tuning takes the task prefix
    assert main(["tasks", "show", str(folder / "task.yaml"), "--method", "compacter", "--labels", "names",
                 "-n", "1", "--split", "train"]) == 0
    assert capsys.readouterr().out == ("# without the task prefix, labels as names: compacter\n\n"
                                       "source: review: review 0\ntarget: low\n")
    (folder / "task.yaml").write_text(TASK.replace("accuracy", "acc"))
    assert main(["tasks", "validate", str(folder / "task.yaml")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"peftbench: {folder / 'task.yaml'}: metrics: unknown metric 'acc'") and err.count("\n") == 1
