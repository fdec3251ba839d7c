"""VL-Adapter's video-text shares (trainable ÷ every parameter with the method in, their trainer_base.py:235-242)
on VL-BART + CLIP ViT frame features, the four methods their scripts/video/ ship, counted by the code."""

import torch

from peftbench.cli.main import main
from peftbench.engine.accounting import count_params
from peftbench.methods import apply_method
from peftbench.models.load import model_config, model_from_config

VIDEO4 = ["tvqa", "how2qa", "tvc", "yc2c"]
MODEL = "bart-base+clip-vit"
# single_adapter.sh: --use_single_adapter --reduction_factor 8 (cross-attention adapters: param.py:169's default)
SINGLE_ADAPTER = {"reduction_factor": 8, "sharing": "shared", "cross_attention": True}
# single_lora.sh: --use_single_lora --lora_dim 128; their trainer unfreezes every "lora" and "bias" parameter
SINGLE_LORA = {"r": 128, "sharing": "shared", "bias": "all"}


def test_the_single_adapter_trains_the_abstracts_3_39_percent_of_vl_bart():
    """The abstract: a single shared adapter updates 3.39% of the parameters on the video-text tasks."""
    count = count_params(model_config(MODEL), "adapter", SINGLE_ADAPTER, tasks=VIDEO4)
    assert round(count.pct_of_overall, 2) == 3.39
    assert count.trainable < count.overall and count.overall > count.total  # the adapters are in the denominator


def test_single_lora_trains_what_their_rule_unfreezes():
    """Their rule (trainer_base.py:288-323): the projection ("visual_embedding"), every "lora" and every "bias"
    parameter; applied by name to the model with peft's LoRA in, it picks exactly what lora[bias=all] trains."""
    config = model_config(MODEL)
    with torch.device("meta"):
        model = model_from_config(config)
        _, count = apply_method(model, "lora", SINGLE_LORA, tasks=VIDEO4)
    trained = {n for n, p in model.named_parameters() if p.requires_grad}
    theirs = {n for n, _ in model.named_parameters() if any(t in n for t in ("visual_embedding", "lora", "bias"))}
    assert trained == theirs
    assert count.trainable == sum(p.numel() for n, p in model.named_parameters() if n in theirs)


def test_single_prompt_is_their_mlp_through_mid_dim_800():
    """Theirs (prompt_modeling.py:4-18): Embedding(40, d) -> Linear(d, 800) -> tanh -> Linear(800, d), all trained
    (+ the projection): 1.178 % of VL-BART + clip-vit, counted from their modules in FIDELITY.md."""
    config = model_config(MODEL)
    options = {"prompt_length": 40, "mid_dim": 800, "sharing": "shared"}
    prompt = count_params(config, "prompt-tuning-r", options, tasks=VIDEO4)
    full = count_params(config, "full", tasks=VIDEO4)
    with torch.device("meta"):
        projection = sum(p.numel() for n, p in model_from_config(config).named_parameters() if "visual_embedding" in n)
    d = config.d_model
    assert prompt.trainable - projection == 40 * d + (d * 800 + 800) + (800 * d + d)
    assert round(prompt.pct_of_overall, 3) == 1.178
    assert full.pct_of_overall == 100.0


def test_params_prints_the_video_share_for_the_video_tasks(capsys):
    """The issue's command (their options spelled out) prints 3.394 in the "% of all" column."""
    args = ["params", "--model", MODEL, "--tasks", ",".join(VIDEO4), "--method", "adapter"]
    assert main(args + [f"--option={k}={v}" for k, v in SINGLE_ADAPTER.items()]) == 0
    row = capsys.readouterr().out.splitlines()[1].split()
    assert row[-1] == "3.394"
