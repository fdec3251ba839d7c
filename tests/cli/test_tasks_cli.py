"""``peftbench tasks``: the listing, and fixture examples as trials train on them."""

import json

import pytest

from peftbench.budgets.plan import BatchPlan
from peftbench.cli.main import main
from peftbench.harness.config import TrialConfig
from peftbench.harness.setup import setup
from peftbench.methods import method_names
from peftbench.tasks import T5_STYLE, get_task, task_names

PLAN = BatchPlan(micro_batch=8, accumulation=1, chosen_by="fixed")


def test_tasks_json_lists_every_task_with_splits_metrics_and_lengths(capsys):
    assert main(["tasks", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert list(rows) == task_names() and len(rows) == 22
    assert rows["tvqa"]["metrics"] == ["accuracy"]
    assert rows["tvc"]["metrics"] == ["cider", "bleu4", "rouge_l", "meteor", "spice"]
    assert rows["mrpc"]["metrics"] == ["f1", "accuracy"]
    assert rows["vqa"]["metrics"] == ["vqa_accuracy"]
    assert rows["coco-caption"]["metrics"] == ["cider", "bleu4", "meteor", "spice"]
    # valid and test-P, as the hub has them
    assert rows["nlvr2"]["fixture_sizes"] == {"train": 120, "validation": 60, "test": 40}
    assert rows["record"]["max_source_length"] == 512 and rows["cb"]["max_source_length"] == 256
    assert rows["cb"]["fixture_sizes"] == {"train": 120, "validation": 30, "test": 30}
    assert rows["mnli"]["split_rule"] == "train = hub train, validation = hub validation_mismatched, " \
                                         "test = hub validation_matched"
    assert rows["multirc"]["split_rule"].startswith("under 10,000 training units")


def test_tasks_table(capsys):
    assert main(["tasks"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 + 22
    assert lines[2].split()[:3] == ["cola", "nyu-mll/glue:cola", "matthews_corr"]


ADAPTERS = "adapter, pfeiffer-adapter, adapterdrop, adapter-lowrank, phm-adapter, compacter, compacter++, " \
           "hyperformer, hyperformer++, vl-hyperformer"
PREFIXED = "full, prompt-tuning-r, prompt-tuning-t, intrinsic-said, bitfit, peft, lora, ia3"


def test_tasks_show_prints_what_default_trials_train_on_grouped_by_method(capsys):
    """The default ``task_prefix: auto`` differs by method, so both formats show, each with its methods."""
    assert main(["tasks", "show", "sst2", "--split", "train", "-n", "2"]) == 0
    pairs = ("source: {p}the film feels brilliant .\ntarget: 1\n\nsource: {p}its score feels brilliant .\ntarget: 1")
    assert capsys.readouterr().out == (
        f"# with the task prefix, labels as digits: {PREFIXED}\n\n" + pairs.format(p="sst2 sentence: ") + "\n\n"
        f"# without the task prefix, labels as digits: {ADAPTERS}\n\n" + pairs.format(p="sentence: ") + "\n")


def test_tasks_show_options_pick_one_format(capsys):
    assert main(["tasks", "show", "sst2", "--split", "train", "-n", "1", "--method", "compacter",
                 "--labels", "names"]) == 0
    assert capsys.readouterr().out == ("# without the task prefix, labels as names: compacter\n\n"
                                       "source: sentence: the film feels brilliant .\ntarget: positive\n")
    assert main(["tasks", "show", "sst2", "-n", "1", "--prefix", "always", "--json"]) == 0
    [group] = json.loads(capsys.readouterr().out)  # one format for every method
    assert group["text_format"] == {"prefix": True, "labels": "digits"} and group["methods"] == method_names()
    assert group["examples"][0]["source"].startswith("sst2 sentence: ")
    assert main(["tasks", "show", "sst2", "--method", "nope"]) == 2
    assert "unknown method 'nope'" in capsys.readouterr().err


@pytest.mark.parametrize("method", ["adapter", "bitfit"])
def test_the_shown_example_is_what_a_default_trial_feeds_its_encoder(method, monkeypatch, capsys):
    """The trial's own texts, spied on where the encoder asks for them, equal what ``tasks show`` prints
    for that method: both build the format with ``TrialConfig.text_format``'s rule."""
    fed = {}
    kind = type(get_task("sst2"))
    source, target = kind.source, kind.target

    def spy(make, part):
        def call(self, example, fmt=T5_STYLE):
            text = make(self, example, fmt)
            fed.setdefault(json.dumps(example, sort_keys=True), {})[part] = text
            return text
        return call

    monkeypatch.setattr(kind, "source", spy(source, "source"))
    monkeypatch.setattr(kind, "target", spy(target, "target"))
    setup(TrialConfig(method=method, task="sst2", learning_rate=1e-3, data="fixtures"), PLAN)
    monkeypatch.undo()
    assert main(["tasks", "show", "sst2", "--split", "train", "-n", "2", "--method", method, "--json"]) == 0
    [group] = json.loads(capsys.readouterr().out)
    first_two = get_task("sst2").load("fixtures")["train"][:2]
    assert [fed[json.dumps(ex, sort_keys=True)] for ex in first_two] == group["examples"]


def test_tasks_show_json_and_errors(capsys):
    assert main(["tasks", "show", "record", "--json", "-n", "1", "--method", "adapter"]) == 0
    [group] = json.loads(capsys.readouterr().out)
    [row] = group["examples"]
    assert row["source"].startswith("record query: ") and " entities: " in row["source"] and row["target"]
    assert main(["tasks", "show", "nope"]) == 2
    assert "unknown task 'nope'" in capsys.readouterr().err
