"""A task file's free-text target (``target: {text: FIELD}``): generated text scored by text metrics from
the registry against every reference of a row; its mistakes one line each, as every task file's."""

import json
import pickle

import pytest

from peftbench.cli.main import main
from peftbench.tasks.declared import DeclaredTextTask, TaskFileError, load_task_file, task_from_declaration
from peftbench.tasks.metrics import TEXTS, metrics_reading

# answers are a text, or a list of texts any of which is right
ROWS = [{"question": f"capital of land {i}?", "answer": f"city {i}" if i % 2 else [f"city {i}", f"town {i}"]}
        for i in range(8)]
TASK = """name: capitals
data: {train: train.jsonl, validation: dev.jsonl}
input: "question: {question}"
target: {text: answer, max_length: measure}
metrics: [squad_em, squad_f1]
"""


@pytest.fixture
def folder(tmp_path):
    for name, rows in (("train.jsonl", ROWS), ("dev.jsonl", ROWS[:4])):
        (tmp_path / name).write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "task.yaml").write_text(TASK)
    return tmp_path


def test_a_free_text_target_trains_on_each_reference_and_is_scored_against_all(folder):
    [task] = load_task_file(folder / "task.yaml")
    assert isinstance(task, DeclaredTextTask) and task.metric_names == ("squad_em", "squad_f1")
    assert task.source(ROWS[0]) == "question: capital of land 0?" and task.target(ROWS[0]) == "city 0"
    assert [r["answer"] for r in task.training_examples(ROWS[:2])] == ["city 0", "town 0", "city 1"]
    assert task.max_target_length == len("town 0") + 1  # measured: the longest reference in bytes, then </s>
    # row 0: "town 0" is its second reference (exact); row 1: "the city" shares "city" with "city 1" (F1 2/3);
    # row 2: "?!" has no words left, invalid
    metrics = task.compute_metrics(["Town 0.", "the city", "?!"], ROWS[:3])
    assert metrics == pytest.approx({"squad_em": 100 / 3, "squad_f1": 100 * (1 + 2 / 3) / 3, "invalid": 1,
                                     "examples": 3})
    rebuilt = task_from_declaration(pickle.loads(pickle.dumps(task.sent)))
    assert rebuilt == task and rebuilt.load()["train"] == task.load()["train"]


def test_a_free_text_task_defaults_to_exact_match_and_f1_and_64_tokens(folder):
    (folder / "task.yaml").write_text(TASK.replace("metrics: [squad_em, squad_f1]\n", "")
                                      .replace("{text: answer, max_length: measure}", "{text: answer}"))
    [task] = load_task_file(folder / "task.yaml")
    assert task.metric_names == ("squad_em", "squad_f1") and task.max_target_length == 64


BAD = {  # what is changed in TASK -> the one line's key and what it says
    "label metric": ("[squad_em, squad_f1]", "[accuracy]",
                     "metrics: accuracy reads predictions and references compared for equality"),
    "no field": ("{text: answer,", "{text: reply,", "target: train.jsonl row 1: no field 'reply'"),
    "bad length": ("max_length: measure", "max_length: long",
                   "target.max_length: expected a positive integer or 'measure', got 'long'"),
    "unknown key": ("max_length: measure", "max_len: 9", "target.max_len: unknown key (known: text, max_length)"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_each_free_text_mistake_is_one_line_naming_the_file_and_the_key(folder, case):
    old, new, message = BAD[case]
    (folder / "task.yaml").write_text(TASK.replace(old, new))
    with pytest.raises(TaskFileError) as caught:
        load_task_file(folder / "task.yaml")
    text = str(caught.value)
    assert text.startswith(f"{folder / 'task.yaml'}: ") and message in text and "\n" not in text
    if case == "label metric":
        # the registry's text metrics, whichever are registered (the video tasks added rouge_l)
        named = text.rsplit("(", 1)[1].rstrip(")").split(", ")
        assert named == metrics_reading(TEXTS) and {"bleu4", "cider", "squad_em", "squad_f1"} <= set(named)


def test_an_answer_that_is_no_text_is_named_with_its_row(folder):
    (folder / "dev.jsonl").write_text(json.dumps({"question": "q?", "answer": 7}) + "\n")
    with pytest.raises(TaskFileError, match=r"task.yaml: target: dev.jsonl row 1: answer 7 is neither a text nor "
                                            r"a list of texts$"):
        load_task_file(folder / "task.yaml")


def test_tasks_validate_shows_a_free_text_tasks_examples(folder, capsys):
    assert main(["tasks", "validate", str(folder / "task.yaml")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("# capitals: ok; file:train.jsonl@sha256:")
    assert out.count("source: capitals question: capital of land ") == 2 and "target: city " in out  # dev: 2 validation
