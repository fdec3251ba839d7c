"""configs/vl-adapter-video.yaml (VL-BART, the scripts' default) and configs/vl-adapter-video-t5.yaml (VL-T5) are
VL-Adapter's video-text setting in spec keys: TVQA, How2QA, TVC and YC2C as ONE mixture on the backbone + CLIP ViT
frame features, the four methods of VL-T5/scripts/video/ with their options, every trial valid."""

from pathlib import Path

import pytest

from peftbench.cli.main import main
from peftbench.harness.config import check_known
from peftbench.harness.spec import load_spec
from peftbench.methods import get_method

CONFIGS = Path(__file__).parents[2] / "configs"
# config -> (model, batch size: the video scripts' 50 for VL-BART, 30 for VL-T5's full and adapter scripts)
SETTINGS = {"vl-adapter-video.yaml": ("bart-base+clip-vit", 50), "vl-adapter-video-t5.yaml": ("t5-base+clip-vit", 30)}
VIDEO4 = ("tvqa", "how2qa", "tvc", "yc2c")


@pytest.mark.parametrize("config", list(SETTINGS))
def test_the_video_mixture_is_vl_adapters_video_setting(config):
    spec = load_spec(CONFIGS / config)
    model, batch_size = SETTINGS[config]
    assert spec.tasks == ("video4",) and spec.mixtures == {"video4": VIDEO4}
    # full_finetuning.sh's lr 3e-5, the other three scripts' 3e-4
    assert spec.learning_rates == (3e-5, 3e-4)
    for trial in spec.trials():
        check_known(trial)  # method, its options and the mixture: every name exists
        assert trial.mixture == VIDEO4 and trial.model == model and trial.data == "hub"
        assert (trial.sampling, trial.batch, trial.epochs) == ("roundrobin", batch_size, 7)  # per optimizer step
        assert (trial.max_grad_norm, trial.warmup_ratio) == (5.0, 0.1)  # --clip_grad_norm 5 --warmup_ratio 0.1
        assert (trial.weight_decay, trial.adam_eps) == (0.01, 1e-6)  # param.py:121, 127
        assert trial.task_prefix == "always"  # --use_tasks_prompts in all four scripts
        assert trial.select == "last"
    # the four scripts, each one module for all tasks
    assert [m.name for m in spec.methods] == ["full", "adapter", "lora", "prompt-tuning-r"]
    assert all(m.options.get("sharing", "shared") == "shared" for m in spec.methods)
    adapter = get_method("adapter").make_config(spec.methods[1].options)
    assert (adapter.reduction_factor, adapter.cross_attention) == (8, True)  # single_adapter.sh; param.py:169
    lora = spec.methods[2].options
    # --lora_dim 128, alpha 32 (param.py:199), dropout 0.1 (lora/config.py:8), biases trained (trainer_base.py:318)
    assert (lora["r"], lora["lora_alpha"], lora["lora_dropout"], lora["bias"]) == (128, 32, 0.1, "all")
    assert spec.methods[3].options["prompt_length"] == 40  # --encoder_prompt_len 40
    assert spec.methods[3].options["mid_dim"] == 800  # --mid_dim 800


@pytest.mark.parametrize("config", list(SETTINGS))
def test_the_video_configs_plan_as_a_whole(config, capsys):
    assert main(["sweep", str(CONFIGS / config), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "24 trials = 4 methods × 1 tasks × 2 learning rates × 3 seeds" in out
    assert "mixture video4: tvqa + how2qa + tvc + yc2c" in out
