"""configs/vl-adapter.yaml (VL-BART, the scripts' default) and configs/vl-adapter-t5.yaml (VL-T5) are VL-Adapter's
image-text setting in spec keys: the four VL tasks as ONE mixture on the backbone + CLIP RN101, each of the paper's
methods with the options that exist (adapters after cross-attention too, their Hyperformer), every trial valid."""

import dataclasses
from pathlib import Path

import pytest

from peftbench.cli.main import main
from peftbench.harness.config import check_known
from peftbench.harness.spec import load_spec
from peftbench.harness.trial import run_trial
from peftbench.methods import get_method

CONFIGS = Path(__file__).parents[2] / "configs"
# config -> (model, batch size: multiple_adapters.sh's 500 for VL-BART, 300 for VL-T5)
SETTINGS = {"vl-adapter.yaml": ("bart-base+clip-rn101", 500), "vl-adapter-t5.yaml": ("t5-base+clip-rn101", 300)}
VL4 = ("vqa", "gqa", "nlvr2", "coco-caption")


@pytest.mark.parametrize("config", list(SETTINGS))
def test_the_vl_mixture_is_vl_adapters_setting(config):
    spec = load_spec(CONFIGS / config)
    model, batch_size = SETTINGS[config]
    assert spec.tasks == ("vl4",) and spec.mixtures == {"vl4": VL4}
    for trial in spec.trials():
        check_known(trial)  # method, its options and the mixture: every name exists
        assert trial.mixture == VL4 and trial.model == model and trial.data == "hub"
        assert (trial.sampling, trial.epochs) == ("roundrobin", 20)  # their MultitaskLoader's default
        # each task's batch from the scripts' --batch_size as multitask.py:1052-1067 scales it, rounded down
        scaled = {"vqa": 60, "gqa": 100, "nlvr2": 20, "coco-caption": 50}  # in 60ths of --batch_size
        assert trial.member_batch_sizes == {task: int(batch_size * k / 60) for task, k in scaled.items()}
        assert trial.step_batch == int(batch_size * 100 / 60)  # the budget plans for GQA's, the largest
        assert trial.max_grad_norm == 5.0
        assert trial.select == "last"  # tested after the last epoch (multitask.py:574)
        # AdamW's weight decay and epsilon (param.py:121, 127), warm-up over 10 % of the steps
        assert (trial.weight_decay, trial.adam_eps, trial.warmup_ratio) == (0.01, 1e-6, 0.1)
    modes = {(m.name, m.options.get("sharing")) for m in spec.methods}
    for name in ("adapter", "phm-adapter", "lora", "prompt-tuning-r"):  # VL-Adapter's single and multiple
        assert {(name, "shared"), (name, "per-task")} <= modes
    assert ("adapter", "shared-up") in modes  # half-shared
    # add_adapter_cross_attn (param.py:169, default True): every adapter and Compacter after cross-attention too
    assert all(m.options["cross_attention"] for m in spec.methods if m.name in ("adapter", "phm-adapter"))
    hyper = [m for m in spec.methods if m.name.startswith("hyperformer") or m.name == "vl-hyperformer"]
    assert [m.name for m in hyper] == ["vl-hyperformer"]  # their --unique_hyper_net, not hyperformer++
    hyperformer = get_method("vl-hyperformer").make_config(hyper[0].options)
    assert (hyperformer.projected_task_embedding_dim, hyperformer.reduction_factor) == (8, 8)
    assert hyperformer.task_embedding_dim == 512 and hyperformer.cross_attention
    # LoRA on q, v at rank 128, α 32, dropout 0.1 (param.py:198-199, lora/config.py:6-8), every bias trained too
    # (trainer_base.py: "lora" and "bias" names); prompts of 40 made by an 800-wide MLP (--mid_dim 800)
    assert {(m.options["r"], m.options["lora_alpha"], m.options["lora_dropout"], m.options["bias"])
            for m in spec.methods if m.name == "lora"} == {(128, 32, 0.1, "all")}
    assert {(m.options["prompt_length"], m.options["mid_dim"])
            for m in spec.methods if m.name == "prompt-tuning-r"} == {(40, 800)}


@pytest.mark.parametrize("config", list(SETTINGS))
def test_the_vl_configs_validate_as_a_whole(config, capsys):
    assert main(["sweep", str(CONFIGS / config), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "99 trials = 11 methods × 1 tasks × 3 learning rates × 3 seeds" in out
    assert "mixture vl4: vqa + gqa + nlvr2 + coco-caption" in out


# config -> the tiny backbone of the same architecture, offline
TINY = {"vl-adapter.yaml": "tiny-bart", "vl-adapter-t5.yaml": "tiny-t5"}


@pytest.mark.parametrize("config", list(SETTINGS))
def test_a_vl_config_trial_runs_offline_on_its_tiny_backbone(config, tmp_path, monkeypatch):
    """The config's Single Adapter trial as it stands (round-robin epochs, a batch per task, captions by beam
    search, NLVR2 by its two logits, the test after the last epoch) on the tiny backbone of its architecture and
    the fixtures, one epoch on 16 training rows a task, each task's batch a 25th of the config's (the fixtures
    hold tens of rows a task). Captions by 2 beams to 8 tokens: beam 5 to 40 tokens on an untrained model was
    most of this test's time (beam 5 itself: tests/harness/test_generation.py)."""
    monkeypatch.setenv("PEFTBENCH_FEATURES", str(tmp_path / "features"))
    spec = load_spec(CONFIGS / config)
    trial = next(t for t in spec.trials() if t.method == "adapter" and t.method_options["sharing"] == "shared")
    batches = {task: max(1, n // 25) for task, n in trial.member_batch_sizes.items()}
    cfg = dataclasses.replace(trial, model=TINY[config], data="fixtures", epochs=1, member_batch_sizes=batches,
                              train_size=16, num_beams=2, generation_max_length=8)
    record = run_trial(cfg, tmp_path / "out", write=False)
    assert record["status"] == "ok", record["error"]
    assert record["model_source"] == f"config:{TINY[config]}+tiny-clip"
    assert {task: m["batch_size"] for task, m in record["members"].items()} == batches
    assert set(record["test_metrics"]) == set(VL4) and record["test_metrics"]["nlvr2"]["invalid"] == 0
    assert record["test_metrics"]["coco-caption"]["examples"] > 0
    assert record["best_epoch"] == 1 and record["config"]["select"] == "last"
