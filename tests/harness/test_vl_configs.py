"""configs/vl-adapter.yaml (VL-BART, the scripts' default) and configs/vl-adapter-t5.yaml (VL-T5) are VL-Adapter's
image-text setting in spec keys: the four VL tasks as ONE mixture on the backbone + CLIP RN101, each of the paper's
methods with the options that exist (adapters after cross-attention too, their Hyperformer), every trial valid."""

from pathlib import Path

import pytest

from peftbench.cli.main import main
from peftbench.harness.config import check_known
from peftbench.harness.spec import load_spec
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
        assert (trial.sampling, trial.batch, trial.epochs) == ("proportional", batch_size, 20)  # per optimizer step
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
    assert {m.options["r"] for m in spec.methods if m.name == "lora"} == {128}
    assert {m.options["prompt_length"] for m in spec.methods if m.name == "prompt-tuning-r"} == {40}


@pytest.mark.parametrize("config", list(SETTINGS))
def test_the_vl_configs_validate_as_a_whole(config, capsys):
    assert main(["sweep", str(CONFIGS / config), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "99 trials = 11 methods × 1 tasks × 3 learning rates × 3 seeds" in out
    assert "mixture vl4: vqa + gqa + nlvr2 + coco-caption" in out
