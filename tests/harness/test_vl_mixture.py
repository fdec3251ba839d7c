"""VL-Adapter's setting: the VL tasks trained as ONE mixture on one VL-T5. NLVR2 shows two pictures, the
other tasks one, so a batch's visual tokens depend on its task: each batch is one task's, training
and generation run with that task's features and modules, and the budget probes the longest member
with its visual tokens counted."""

from __future__ import annotations

import pytest

from peftbench.budgets import plan as budget_plan
from peftbench.budgets.estimate import estimate_fit
from peftbench.budgets.workload import Workload
from peftbench.harness import setup as loop
from peftbench.harness import trial as trial_module
from peftbench.harness.config import TrialConfig
from peftbench.harness.trial import run_trial
from peftbench.methods.multitask import task_switch
from peftbench.models.encoders import spec as encoder_spec
from peftbench.tasks import get_task

CELLS, FEAT = encoder_spec("tiny-clip").cells, encoder_spec("tiny-clip").feat_dim


def test_a_vl_mixture_trial_gives_each_task_its_own_images_and_modules_and_writes_one_record(
        tmp_path, monkeypatch):
    monkeypatch.setenv("PEFTBENCH_FEATURES", str(tmp_path / "features"))
    steps, generated, probed = [], [], []
    real_step, real_generate, real_plan = loop.Engine.micro_step, loop.generate_and_score, budget_plan.plan_batch

    def micro_step(engine, batch):
        steps.append((task_switch(engine.module).current, tuple(batch["visual_features"].shape[1:3])))
        return real_step(engine, batch)

    def evaluate(model, tokenizer, task, fmt, rows, batch_size, device):  # real generation; which task saw what
        generated.append((task_switch(model).current, task.name, {tuple(r["visual_features"].shape) for r in rows}))
        return real_generate(model, tokenizer, task, fmt, rows, batch_size, device)

    def plan_batch(workload, **kw):
        probed.append(workload)
        return real_plan(workload, **kw)

    monkeypatch.setattr(loop.Engine, "micro_step", micro_step)
    monkeypatch.setattr(loop, "generate_and_score", evaluate)
    monkeypatch.setattr(budget_plan, "plan_batch", plan_batch)
    cfg = TrialConfig(model="tiny-t5", method="adapter", method_options={"sharing": "per-task"}, task="vl2",
                      mixture=("vqa", "nlvr2"), learning_rate=1e-3, data="fixtures", epochs=1, batch_size=8,
                      warmup_steps=1, train_size=16, eval_every_steps=100_000)
    record = run_trial(cfg, tmp_path / "out")
    assert record["status"] == "ok", record["error"]

    # every batch one task's, with that task's number of pictures, the model switched to it
    assert set(steps) == {("vqa", (1, CELLS)), ("nlvr2", (2, CELLS))}
    assert len(steps) == -(-(16 + 16) // 8)
    # validation and test generate each member with its own pictures and its own adapters
    expected = [(t, t, {(n, CELLS, FEAT)}) for _ in ("validation", "test") for t, n in (("vqa", 1), ("nlvr2", 2))]
    assert generated == expected
    # the budget probed the VL-T5, at the longest member's text and the most pictures
    (workload,) = probed
    assert (workload.model, workload.images, workload.tasks) == ("tiny-t5+tiny-clip", 2, ("vqa", "nlvr2"))
    assert workload.source_len == max(get_task(t).max_source_length for t in ("vqa", "nlvr2"))

    # one record: both members' own metrics (their paper names), their scores and the mean
    assert record["mixture"] == ["vqa", "nlvr2"] and record["model_source"] == "config:tiny-t5+tiny-clip"
    splits = {t: get_task(t).load("fixtures", train_size=16, seed=0) for t in ("vqa", "nlvr2")}
    assert set(record["test_metrics"]["vqa"]) == {"vqa_accuracy", "invalid", "examples"}
    assert set(record["test_metrics"]["nlvr2"]) == {"accuracy", "invalid", "examples"}
    for t in ("vqa", "nlvr2"):
        assert record["test_metrics"][t]["examples"] == len(splits[t]["test"])
        assert record["members"][t]["train_examples"] == 16
    members = record["members"]
    assert record["test_score"] == pytest.approx((members["vqa"]["test_score"] + members["nlvr2"]["test_score"]) / 2)
    assert members["vqa"]["test_score"] == record["test_metrics"]["vqa"]["vqa_accuracy"]


def test_the_budget_counts_visual_tokens():
    """Each picture's cells are tokens in front of the text: a probe with NLVR2's two pictures needs more
    activation memory than with one, and one more than the text alone."""
    def activations(images):
        workload = Workload("tiny-t5+tiny-clip", "adapter", source_len=16, target_len=4, images=images)
        return estimate_fit(workload, capacity=2**62, batch_size=4).categories["activations"]

    assert activations(0) < activations(1) < activations(2)
    workload = Workload("tiny-t5+tiny-clip", "adapter", images=2)
    assert tuple(workload.batch(workload.build(), 3)["visual_features"].shape) == (3, 2, CELLS, FEAT)
    with pytest.raises(ValueError, match="reads no images"):
        Workload("tiny-t5", "adapter", images=1)


def test_the_trial_probes_the_model_its_data_loads():
    members = [get_task("vqa"), get_task("nlvr2")]
    cfg = TrialConfig(model="tiny-t5", method="adapter", task="vl2", mixture=("vqa", "nlvr2"), learning_rate=1e-3)
    assert trial_module.probed_model(cfg, members) == "tiny-t5+clip-rn101"  # auto: the hub's encoder
    fixtures = TrialConfig(**{**cfg.to_dict(), "data": "fixtures", "mixture": ("vqa", "nlvr2")})
    assert trial_module.probed_model(fixtures, members) == "tiny-t5+tiny-clip"
    text = TrialConfig(model="tiny-t5", method="adapter", task="rte", learning_rate=1e-3)
    assert trial_module.probed_model(text, [get_task("rte")]) == "tiny-t5"
