"""The peft bridge: peft's methods on tiny T5, counted as peft counts them, trained like any method."""

import json

import peft
import pytest
import torch
from transformers import T5ForConditionalGeneration

from peftbench.budgets.plan import BatchPlan
from peftbench.cli.main import main
from peftbench.engine.batches import batches
from peftbench.harness.config import TrialConfig
from peftbench.harness.setup import setup
from peftbench.methods import apply_method, get_method
from peftbench.models.load import tiny_t5_config


def peft_counts(config) -> tuple[int, int]:
    """peft's own count: a PeftModel around a fresh tiny T5."""
    model = peft.get_peft_model(T5ForConditionalGeneration(tiny_t5_config()), config)
    return model.get_nb_trainable_parameters()


def test_params_of_lora_and_ia3_equal_pefts_own_count(capsys):
    assert main(["params", "--method", "lora", "--method", "ia3", "--json"]) == 0
    rows = {r["method"]: r for r in json.loads(capsys.readouterr().out)}
    for name, config in (("lora", peft.LoraConfig(task_type="SEQ_2_SEQ_LM")),
                         ("ia3", peft.IA3Config(task_type="SEQ_2_SEQ_LM"))):
        trainable, everything = peft_counts(config)
        assert rows[name]["trainable_params"] == trainable > 0
        assert rows[name]["total_params"] + trainable == everything  # ours counts the base model only


@pytest.mark.parametrize("method", ["lora", "ia3"])
def test_methods_lists_the_modules_peft_adapts_on_t5_when_target_modules_is_unset(method):
    """``methods lora`` shows the default in effect: the layers an unset target_modules adapts on T5 (q, v for
    LoRA), read here from the modules peft actually wrapped, not from the listing's own source."""
    listed = {o.name: o.default for o in get_method(method).options()}
    model = T5ForConditionalGeneration(tiny_t5_config())
    apply_method(model, method, {})
    wrapped = {name.rsplit(".", 1)[-1] for name, module in model.named_modules()
               if hasattr(module, "base_layer") and name.count(".") > 1}
    assert wrapped == set(listed["target_modules"]) and len(wrapped) >= 2
    if method == "ia3":
        assert listed["feedforward_modules"] == ["wo"]


def test_any_peft_type_and_its_options_through_the_peft_entry():
    for peft_type, config in (("LOHA", peft.LoHaConfig(task_type="SEQ_2_SEQ_LM", r=4)),
                              ("LOKR", peft.LoKrConfig(task_type="SEQ_2_SEQ_LM", r=4))):
        _, count = apply_method(T5ForConditionalGeneration(tiny_t5_config()), "peft", {"peft_type": peft_type, "r": 4})
        assert count.trainable == peft_counts(config)[0]


def test_a_saved_adapter_config_is_applied_and_options_override_it(tmp_path):
    peft.LoraConfig(r=4, target_modules=["q", "k", "v", "o"]).save_pretrained(tmp_path)
    model = T5ForConditionalGeneration(tiny_t5_config())
    _, from_file = apply_method(model, "peft", {"config_file": str(tmp_path)})
    assert from_file.trainable == peft_counts(peft.LoraConfig(r=4, target_modules=["q", "k", "v", "o"]))[0]
    assert any(".k.lora_A." in n for n, p in model.named_parameters() if p.requires_grad)
    _, overridden = apply_method(T5ForConditionalGeneration(tiny_t5_config()), "peft",
                                 {"config_file": str(tmp_path / "adapter_config.json"), "r": 2})
    assert overridden.trainable == from_file.trainable // 2


@pytest.mark.parametrize(("method", "options", "message"), [
    ("peft", {"peft_type": "LORA", "rr": 8}, "peft LoraConfig has no option 'rr'"),
    ("peft", {"peft_type": "PREFIX_TUNING"}, "cannot adapt T5 in place"),
    ("peft", {"peft_type": "NOPE"}, "peft_type 'NOPE'"),
    ("lora", {"peft_type": "IA3"}, "peft_type is LORA for this method"),
    ("peft", {"config_file": "/nonexistent/adapter_config.json"}, "cannot read a peft config"),
])
def test_bad_peft_options_fail_in_one_line_before_a_model_exists(method, options, message):
    with pytest.raises(ValueError, match=message) as caught:
        get_method(method).make_config(options)
    assert "\n" not in str(caught.value)


def mean_loss(run) -> float:
    run.engine.module.eval()
    with torch.no_grad():
        losses = [run.engine.module(**run.shard(b)).loss.item()
                  for b in batches(run.data["train"], 16, run.pad_id)]
    return sum(losses) / len(losses)


@pytest.mark.parametrize(("method", "lr"), [("lora", 3e-2), ("ia3", 1e-1)])
def test_lora_and_ia3_train_on_the_sst2_fixture(method, lr, tiny_trial_kwargs):
    cfg = TrialConfig(method=method, task="sst2", learning_rate=lr, seed=0, train_size=32,
                      **{**tiny_trial_kwargs, "epochs": 5, "warmup_steps": 0})
    run = setup(cfg, BatchPlan(micro_batch=16, accumulation=1, chosen_by="fixed"))
    before = mean_loss(run)
    run.engine.train()
    for _ in range(5):
        for batch in batches(run.data["train"], 16, run.pad_id, shuffle=None):
            run.engine.micro_step(run.shard(batch))
    after = mean_loss(run)
    assert after < 0.9 * before, (before, after)
    assert isinstance(run.engine.module, T5ForConditionalGeneration)
