"""configs/vl-adapter.yaml is VL-Adapter's image-text setting in spec keys: the four VL tasks as ONE
mixture on T5-base + CLIP RN101, each of the paper's methods with the options that exist, every trial valid."""

from pathlib import Path

from peftbench.cli.main import main
from peftbench.harness.config import check_known
from peftbench.harness.spec import load_spec
from peftbench.methods import get_method

CONFIG = Path(__file__).parents[2] / "configs" / "vl-adapter.yaml"
VL4 = ("vqa", "gqa", "nlvr2", "coco-caption")


def test_the_vl_mixture_is_vl_adapters_setting():
    spec = load_spec(CONFIG)
    assert spec.tasks == ("vl4",) and spec.mixtures == {"vl4": VL4}
    for trial in spec.trials():
        check_known(trial)  # method, its options and the mixture: every name exists
        assert trial.mixture == VL4 and trial.model == "t5-base+clip-rn101" and trial.data == "hub"
        assert (trial.sampling, trial.batch_size, trial.epochs, trial.max_grad_norm) == ("proportional", 300, 20, 5.0)
    modes = {(m.name, m.options.get("sharing")) for m in spec.methods}
    for name in ("adapter", "phm-adapter", "lora", "prompt-tuning-r"):  # VL-Adapter's single and multiple
        assert {(name, "shared"), (name, "per-task")} <= modes
    assert ("adapter", "shared-up") in modes  # half-shared
    hyperformer = get_method("hyperformer++").make_config(spec.method("hyperformer++[projected_task_embedding_dim=8,"
                                                                      "reduction_factor=8]").options)
    assert hyperformer.projected_task_embedding_dim == 8 and hyperformer.reduction_factor == 8
    assert {m.options["r"] for m in spec.methods if m.name == "lora"} == {128}
    assert {m.options["prompt_length"] for m in spec.methods if m.name == "prompt-tuning-r"} == {40}


def test_the_vl_configs_validate_as_a_whole(capsys):
    assert main(["sweep", str(CONFIG), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "99 trials = 11 methods × 1 tasks × 3 learning rates × 3 seeds" in out
    assert "mixture vl4: vqa + gqa + nlvr2 + coco-caption" in out
