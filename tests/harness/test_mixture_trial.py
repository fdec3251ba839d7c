"""A mixture trial: one model trained on batches of its member tasks (each batch one task, the model
told which), every member validated and tested, the best epoch the one with the best MEAN validation
score, one record holding each member's metrics, and a resume that ends where an unbroken run does.

The random tiny T5 scores 0 everywhere, so nothing here compares real scores: evaluation is replaced
by scores scripted per member or computed from the weights, and the tests check which weights, which
task and which rows each step and each evaluation saw."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import ByT5Tokenizer

from peftbench.budgets.plan import BatchPlan
from peftbench.engine.state import LOOP_STATE
from peftbench.harness import setup as trial_setup
from peftbench.harness import train as loop
from peftbench.harness.config import TrialConfig
from peftbench.harness.records import read_records
from peftbench.harness.spec import SpecError, parse_spec
from peftbench.harness.trial import run_trial
from peftbench.methods.multitask import task_switch
from peftbench.tasks import get_task

from testkit.identical import assert_identical

PLAN = BatchPlan(micro_batch=8, accumulation=1, chosen_by="fixed")


def mixture(**kw) -> TrialConfig:
    return TrialConfig(**{"method": "adapter", "task": "pair", "mixture": ("rte", "sst2"), "learning_rate": 3e-3,
                          "seed": 1, "data": "fixtures", "epochs": 1, "warmup_steps": 2, "max_source_length": 24,
                          "batch_size": 8, **kw})


def fingerprint(model) -> float:
    return float(sum(p.detach().double().sum() for p in model.parameters() if p.requires_grad))


def test_a_mixture_trial_trains_one_task_per_batch_evaluates_every_member_and_writes_one_record(
        tmp_path, monkeypatch):
    seen_steps, seen_evals = [], []
    real_step = trial_setup.Engine.micro_step

    def micro_step(engine, batch):  # which task the model was switched to, and what the batch holds
        seen_steps.append((task_switch(engine.module).current, batch["input_ids"]))
        return real_step(engine, batch)

    def evaluate(model, tokenizer, task, fmt, rows, batch_size, device):  # generation is slow: count instead
        seen_evals.append((task_switch(model).current, task.name, len(rows)))
        score = 30.0 if task.name == "rte" else 70.0
        return {"accuracy": score, "invalid": 0, "examples": len(rows)}

    monkeypatch.setattr(trial_setup.Engine, "micro_step", micro_step)
    monkeypatch.setattr(trial_setup, "generate_and_score", evaluate)
    cfg = mixture(epochs=1, batch_size=32)
    record = run_trial(cfg, tmp_path)
    assert record["status"] == "ok", record["error"]
    assert read_records(tmp_path) == [json.loads(json.dumps(record))]  # one record, the trial's

    splits = {t: get_task(t).load("fixtures") for t in ("rte", "sst2")}
    tokenizer = ByT5Tokenizer()
    # each training batch is one task's rows (inputs prefixed by its name: on for a mixture) and the
    # model was switched to that task; both tasks were drawn; an epoch is a pass over all rows' worth
    for current, input_ids in seen_steps:
        texts = tokenizer.batch_decode(input_ids, skip_special_tokens=True)
        assert all(text.startswith(f"{current} ") for text in texts), (current, texts[0])
    assert {current for current, _ in seen_steps} == {"rte", "sst2"}
    assert len(seen_steps) == -(-(160 + 240) // 32)
    # every validation and the test evaluated each member on its own split, switched to it
    expected = [(t, t, len(splits[t][split])) for split in ("validation", "test") for t in ("rte", "sst2")]
    assert seen_evals == expected

    assert record["task"] == "pair" and record["mixture"] == ["rte", "sst2"]
    assert [set(m) for m in record["val_metrics"]] == [{"rte", "sst2"}]
    assert record["test_metrics"]["rte"]["examples"] == len(splits["rte"]["test"])
    assert record["val_score"] == record["test_score"] == 50.0  # the mean of 30 and 70
    assert record["members"]["rte"] == {"data_source": "fixtures", "train_examples": 160, "batch_size": 32,
                                        "sampling_probability": pytest.approx(160**0.1 / (160**0.1 + 240**0.1)),
                                        "val_score": 30.0, "test_score": 30.0}
    assert record["members"]["sst2"]["train_examples"] == 240 and record["data_source"] == "fixtures"
    assert record["text_format"]["prefix"] is True and record["trainable_params"] > 0


def test_the_best_epoch_is_the_best_mean_over_members_not_any_members_best(monkeypatch):
    """rte peaks at epoch 1, sst2 at epoch 2, their mean at epoch 3: the test split sees epoch 3's weights."""
    scripted = {"rte": iter([90.0, 10.0, 50.0]), "sst2": iter([0.0, 95.0, 60.0])}
    seen = {"validation": [], "test": []}

    def evaluate(model, tokenizer, task, fmt, rows, batch_size, device):
        split = "test" if rows[0]["example"] in test_rows[task.name] else "validation"
        seen[split].append(fingerprint(model))
        score = next(scripted[task.name]) if split == "validation" else 0.0
        return {"accuracy": score, "invalid": 0, "examples": len(rows)}

    test_rows = {t: get_task(t).load("fixtures")["test"] for t in ("rte", "sst2")}
    monkeypatch.setattr(trial_setup, "generate_and_score", evaluate)
    result = loop.train(mixture(epochs=3, train_size=16), PLAN, log=lambda _: None)
    assert result.best_epoch == 3 and result.val_score == 55.0
    assert {t: m["val_score"] for t, m in result.members.items()} == {"rte": 50.0, "sst2": 60.0}
    assert len(set(seen["validation"])) == 3  # two members per validation, three epochs of weights
    assert seen["test"] == [seen["validation"][-1]] * 2, "test scored with other weights than the best mean's"


class Killed(RuntimeError):
    pass


def test_a_resumed_mixture_trial_ends_bit_for_bit_where_an_unbroken_one_does(dropout_t5, tmp_path, monkeypatch):
    def weight_score(model, tokenizer, task, fmt, rows, batch_size, device):
        return {"accuracy": abs(fingerprint(model)) * 1e4 % 100 + len(task.name), "invalid": 0, "examples": 1}

    def kill_after_first(metrics):
        raise Killed("killed after epoch 1")

    monkeypatch.setattr(trial_setup, "generate_and_score", weight_score)
    cfg = mixture(model=dropout_t5, epochs=3, train_size=24)
    plan = BatchPlan(micro_batch=8, accumulation=2, chosen_by="fixed")
    unbroken = loop.train(cfg, plan, checkpoint_dir=tmp_path / "unbroken", log=lambda _: None)
    with pytest.raises(Killed):
        loop.train(cfg, plan, checkpoint_dir=tmp_path / "resumed", report=kill_after_first, log=lambda _: None)
    resumed = loop.train(cfg, plan, checkpoint_dir=tmp_path / "resumed", log=lambda _: None)

    a, b = (torch.load(tmp_path / run / LOOP_STATE, weights_only=True) for run in ("unbroken", "resumed"))
    assert a["epoch"] == b["epoch"] == 3 and a["micro_steps"] == 3 * 6  # 48 rows in batches of 8
    for key in ("order", "torch_rng", "engine", "trainable", "best_state", "val_metrics", "evaluated_at"):
        assert_identical(a[key], b[key], key)
    assert resumed.test_metrics == unbroken.test_metrics
    assert resumed.members == unbroken.members


def test_the_budget_probes_a_mixture_with_its_longest_member_sequences(tmp_path, monkeypatch):
    from peftbench.budgets import plan as budget_plan

    probed = []

    def plan_batch(workload, **kw):
        probed.append(workload)
        raise Killed("planned")

    monkeypatch.setattr(budget_plan, "plan_batch", plan_batch)
    record = run_trial(mixture(mixture=("rte", "cola"), max_source_length=None, batch="max"), tmp_path, write=False)
    assert record["status"] == "failed" and "planned" in record["error"]  # a failure becomes its record
    rte, cola = get_task("rte"), get_task("cola")
    assert probed[0].source_len == max(rte.max_source_length, cola.max_source_length)
    assert probed[0].target_len == max(rte.max_target_length, cola.max_target_length)
    assert probed[0].tasks == ("rte", "cola")


def test_the_prefix_is_on_for_a_mixture_unless_asked_otherwise():
    assert mixture().text_format().prefix is True
    assert mixture(task_prefix="never").text_format().prefix is False
    assert TrialConfig(method="adapter", task="rte", learning_rate=1e-3).text_format().prefix is False  # the authors'


def test_mixture_settings_leave_single_task_trial_ids_as_they_were():
    single = TrialConfig(method="adapter", task="rte", learning_rate=1e-3)
    assert single.trial_id == TrialConfig(method="adapter", task="rte", learning_rate=1e-3,
                                          sampling="proportional", temperature=2.0).trial_id
    assert mixture().trial_id != mixture(sampling="proportional").trial_id != mixture(temperature=2.0).trial_id
    assert mixture(mixture=["rte", "sst2"]).trial_id == mixture().trial_id  # a list from YAML is the same trial


def spec(**changes) -> dict:
    return {"model": "tiny-t5", "methods": ["adapter"], "tasks": ["rte", "sst2"], "learning_rates": [1e-3],
            "seeds": [0], "mixtures": {"pair": ["rte", "sst2"]}, **changes}


def test_a_spec_puts_its_mixtures_on_the_task_axis_beside_its_tasks():
    parsed = parse_spec(spec(epochs={"rte": 2, "sst2": 3, "pair": 4}, temperature=5))
    assert parsed.tasks == ("rte", "sst2", "pair")
    trials = {t.task: t for t in parsed.trials()}
    assert trials["pair"].mixture == ("rte", "sst2") and trials["rte"].mixture is None
    assert (trials["pair"].epochs, trials["pair"].temperature, trials["pair"].sampling) == (4, 5, "temperature")
    only = parse_spec({k: v for k, v in spec().items() if k != "tasks"})
    assert only.tasks == ("pair",) and only.trials()[0].epochs == 20  # its members' own: rte's 20 > sst2's 3
    assert "mixtures" not in parse_spec({k: v for k, v in spec().items() if k != "mixtures"}).identity()


@pytest.mark.parametrize(("changes", "key"), [
    ({"mixtures": {"pair": ["rte"]}}, "mixtures.pair"),
    ({"mixtures": {"pair": ["rte", "nope"]}}, "mixtures.pair"),
    ({"mixtures": {"pair": ["rte", "rte"]}}, "mixtures.pair"),
    ({"mixtures": {"sst2": ["rte", "cola"]}}, "mixtures.sst2"),
    ({"mixtures": {"pair": []}}, "mixtures.pair"),
    ({"mixtures": {}}, "mixtures"),
    ({"mixtures": ["rte", "sst2"]}, "mixtures"),
    ({"mixtures": {"a/b": ["rte", "sst2"]}}, "mixtures"),
    ({"sampling": "uniform"}, "sampling"),
    ({"temperature": 0}, "temperature"),
    ({"epochs": {"rte": 2, "sst2": 3}}, "epochs"),  # the mixture needs its own
])
def test_a_bad_mixture_spec_is_one_line_naming_the_key(changes, key):
    with pytest.raises(SpecError) as err:
        parse_spec(spec(**changes), source="x.yaml")
    assert str(err.value).startswith(f"x.yaml: {key}: ") and "\n" not in str(err.value)
