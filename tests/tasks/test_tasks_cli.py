"""``peftbench tasks``: the listing and formatted fixture examples."""

import json

from peftbench.cli.main import main
from peftbench.tasks import task_names


def test_tasks_json_lists_every_task_with_splits_metrics_and_lengths(capsys):
    assert main(["tasks", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert list(rows) == task_names() and len(rows) == 18
    assert rows["mrpc"]["metrics"] == ["f1", "accuracy"]
    assert rows["vqa"]["metrics"] == ["vqa_accuracy"] and rows["coco-caption"]["metrics"] == ["cider", "bleu4"]
    assert rows["nlvr2"]["fixture_sizes"] == {"train": 120, "validation": 60, "test": 40}  # valid and test-P, as the hub has them
    assert rows["record"]["max_source_length"] == 512 and rows["cb"]["max_source_length"] == 256
    assert rows["cb"]["fixture_sizes"] == {"train": 120, "validation": 30, "test": 30}
    assert rows["mnli"]["split_rule"] == "train = hub train, validation = hub validation_mismatched, " \
                                         "test = hub validation_matched"
    assert rows["multirc"]["split_rule"].startswith("under 10,000 training units")


def test_tasks_table(capsys):
    assert main(["tasks"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 + 18
    assert lines[2].split()[:3] == ["cola", "nyu-mll/glue:cola", "matthews_corr"]


def test_tasks_show_prints_source_target_pairs(capsys):
    assert main(["tasks", "show", "sst2", "--split", "train", "-n", "2"]) == 0
    assert capsys.readouterr().out == (
        "source: sentence: the film feels brilliant .\ntarget: positive\n\n"
        "source: sentence: its score feels brilliant .\ntarget: positive\n")


def test_tasks_show_json_and_errors(capsys):
    assert main(["tasks", "show", "record", "--json", "-n", "1"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert row["source"].startswith("record query: ") and " entities: " in row["source"] and row["target"]
    assert main(["tasks", "show", "nope"]) == 2
    assert "unknown task 'nope'" in capsys.readouterr().err
