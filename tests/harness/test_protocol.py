"""The authors' training protocol reaches the trial, and the record says what ran on what data."""

import pytest
import torch

from peftbench.budgets.plan import BatchPlan
from peftbench.engine import step as engine_step
from peftbench.harness.config import ConfigError, TrialConfig
from peftbench.harness.setup import setup
from peftbench.harness.trial import run_trial

PLAN = BatchPlan(micro_batch=8, accumulation=1, chosen_by="fixed")


def config(method: str, **kw) -> TrialConfig:
    return TrialConfig(**{"method": method, "task": "sst2", "learning_rate": 1e-3, "data": "fixtures", "epochs": 1,
                          "warmup_steps": 2, **kw})


def test_the_authors_defaults_are_no_weight_decay_and_clipping_at_one():
    cfg = config("adapter")
    assert (cfg.weight_decay, cfg.max_grad_norm, cfg.labels, cfg.task_prefix) == (0.0, 1.0, "digits", "auto")


def test_weight_decay_and_clipping_reach_the_plain_torch_step(monkeypatch):
    clipped = []
    real_clip = torch.nn.utils.clip_grad_norm_
    monkeypatch.setattr(engine_step.torch.nn.utils, "clip_grad_norm_",
                        lambda params, max_norm, **kw: clipped.append(max_norm) or real_clip(params, max_norm, **kw))
    run = setup(config("adapter", weight_decay=0.1, max_grad_norm=0.5), PLAN)
    assert {g["weight_decay"] for g in run.engine.optimizer.param_groups} == {0.1}
    row = run.data["train"][0]
    ids = torch.tensor([row["input_ids"]])
    run.engine.micro_step({"input_ids": ids, "attention_mask": torch.ones_like(ids),
                           "labels": torch.tensor([row["labels"]])})
    assert clipped == [0.5]


def test_weight_decay_and_clipping_reach_the_deepspeed_engine():
    run = setup(config("full", weight_decay=0.1, max_grad_norm=0.5), PLAN)
    try:
        assert run.engine.deepspeed.gradient_clipping() == 0.5
        assert {g["weight_decay"] for g in run.engine.optimizer.param_groups} == {0.1}
    finally:
        run.engine.close()


@pytest.mark.parametrize(("method", "prefixed"), [("adapter", False), ("compacter", False), ("bitfit", True),
                                                  ("prompt-tuning-r", True)])
def test_inputs_carry_the_task_name_as_the_authors_by_method(method, prefixed):
    run = setup(config(method), PLAN)
    first = run.tokenizer.decode(run.data["train"][0]["input_ids"], skip_special_tokens=True)
    assert first.startswith("sst2 sentence: ") == prefixed
    assert first.startswith("sentence: ") != prefixed
    assert setup(config(method, task_prefix="always"), PLAN).fmt.prefix is True
    assert setup(config(method, task_prefix="never"), PLAN).fmt.prefix is False


def test_targets_are_label_digits_unless_names_are_asked_for():
    digits = setup(config("adapter"), PLAN)
    names = setup(config("adapter", labels="names"), PLAN)
    decode = lambda run: {run.tokenizer.decode(r["labels"], skip_special_tokens=True) for r in run.data["train"]}
    assert decode(digits) == {"0", "1"}
    assert decode(names) == {"negative", "positive"}


def test_the_record_names_the_data_the_model_and_the_format(tmp_path):
    record = run_trial(config("bitfit"), tmp_path)
    assert record["status"] == "ok", record["error"]
    assert record["data_source"] == "fixtures"
    assert record["model_source"] == "config:tiny-t5"
    assert record["text_format"] == {"prefix": True, "labels": "digits"}
    assert record["config"]["weight_decay"] == 0.0 and record["config"]["max_grad_norm"] == 1.0
    assert record["modules_file"] is None and not (tmp_path / "modules").exists()  # saved only when asked


def test_validation_every_n_steps_selects_among_those_evaluations(tmp_path):
    reported = []
    cfg = config("bitfit", epochs=2, batch_size=32, eval_every_steps=3)  # 240 rows: 8 steps an epoch
    record = run_trial(cfg, tmp_path, report=reported.append)
    assert record["status"] == "ok", record["error"]
    assert [e["step"] for e in record["evaluated_at"]] == [3, 6, 9, 12, 15]
    assert [e["epoch"] for e in record["evaluated_at"]] == [1, 1, 2, 2, 2]
    assert len(record["val_metrics"]) == 5 and [r["step"] for r in reported] == [3, 6, 9, 12, 15]
    best = max(range(5), key=lambda i: (record["val_metrics"][i]["accuracy"], -i))
    assert record["best_step"] == record["evaluated_at"][best]["step"]


def test_out_of_range_settings_are_refused_before_anything_loads():
    with pytest.raises(ConfigError, match="weight_decay"):
        config("adapter", weight_decay=float("nan"))
    with pytest.raises(ConfigError, match="max_grad_norm"):
        config("adapter", max_grad_norm=0)
    with pytest.raises(ConfigError, match="labels"):
        config("adapter", labels="words")


def test_saved_modules_reload_into_the_same_model_and_method_and_score_the_same(tmp_path):
    from safetensors.torch import load_file

    from peftbench.engine.state import load_trainable_state
    from peftbench.harness.generation import generate_and_score
    from peftbench.harness.setup import encode_split
    from peftbench.methods import apply_method, resolve_prefix
    from peftbench.models.load import load_model
    from peftbench.tasks import TextFormat, get_task

    cfg = config("bitfit", epochs=2, learning_rate=3e-2, save_modules=True)
    record = run_trial(cfg, tmp_path)
    assert record["status"] == "ok", record["error"]
    assert record["modules_file"] == str(tmp_path / "modules" / f"{cfg.trial_id}.safetensors")
    saved = load_file(record["modules_file"])
    model, tokenizer, _ = load_model(cfg.model, seed=cfg.seed)
    apply_method(model, cfg.method)
    assert set(saved) == {n for n, p in model.named_parameters() if p.requires_grad}  # exactly the trained ones
    load_trainable_state(model, saved)
    task, fmt = get_task("sst2"), TextFormat(prefix=resolve_prefix("auto", "bitfit"), labels="digits")
    rows = encode_split(task, fmt, tokenizer, task.load("fixtures")["test"], task.max_source_length)
    assert generate_and_score(model, tokenizer, task, fmt, rows, 32, "cpu") == record["test_metrics"]
    assert config("bitfit").save_modules is False  # off by default: no file unless asked
