"""Sharing in a mixture: per-task modules hold a copy per task, half-shared adapters one projection
per task, a task's batch trains only its own modules and the shared ones, and a single-task trial is
the same whatever the mode."""

from __future__ import annotations

import pytest
import torch

from peftbench.methods import apply_method, get_method, method_names
from peftbench.methods.multitask import SHARING, set_task, sharing_modes

from testkit.models import TINY_OPTIONS, tiny_batch, tiny_model

TASKS = ["rte", "sst2"]
ADAPTERS = ["adapter", "pfeiffer-adapter", "adapterdrop", "adapter-lowrank", "phm-adapter", "compacter", "compacter++"]
EVERY_MODE = [(name, mode) for name in method_names() for mode in sharing_modes(get_method(name).config_cls) or (None,)]


def applied(name: str, sharing: str | None, tasks=TASKS, seed: int = 0):
    options = dict(TINY_OPTIONS.get(name, {}), **({"sharing": sharing} if sharing else {}))
    model = tiny_model(seed)
    _, count = apply_method(model, name, options, tasks=tasks)
    return model, count.trainable


def outside_the_modules(model, name: str) -> int:
    """Trainable parameters every mode shares: T5's layer norms, and Compacter's one rule."""
    norms = sum(p.numel() for n, p in model.named_parameters() if p.requires_grad and n.endswith("layer_norm.weight"))
    rule = get_method(name).make_config(TINY_OPTIONS.get(name, {})).phm_dim ** 3 if name.startswith("compacter") else 0
    return norms + rule


def belongs_to(param_name: str, task: str) -> bool:
    return task in param_name.split(".")  # ``…tasks.<task>.…`` here, ``lora_A.<task>.weight`` in peft


def test_each_method_declares_the_modes_that_make_sense_for_it():
    declared = {name: sharing_modes(get_method(name).config_cls) for name in method_names()}
    assert all(declared[name] == SHARING for name in ADAPTERS)
    assert declared["prompt-tuning-r"] == declared["prompt-tuning-t"] == ("shared", "per-task")
    assert declared["lora"] == declared["ia3"] == declared["peft"] == declared["bitfit"] == ("shared", "per-task")
    assert declared["full"] == declared["intrinsic-said"] == ("shared",)
    assert declared["hyperformer"] == declared["hyperformer++"] == ()  # task-conditioned by construction
    with pytest.raises(ValueError, match="sharing must be one of shared, got 'per-task'"):
        apply_method(tiny_model(), "intrinsic-said", {"said_dim": 300, "sharing": "per-task"}, tasks=TASKS)
    with pytest.raises(ValueError, match="sharing must be one of shared, per-task, got 'shared-up'"):
        get_method("prompt-tuning-r").make_config({"sharing": "shared-up"})


@pytest.mark.parametrize("tasks", [TASKS, ["rte", "sst2", "cola"]], ids=["two", "three"])
@pytest.mark.parametrize("name", [*ADAPTERS, "prompt-tuning-r", "prompt-tuning-t", "bitfit", "lora", "ia3"])
def test_per_task_modules_hold_a_copy_per_task_of_the_shared_ones(name, tasks):
    shared_model, shared = applied(name, "shared", tasks)
    per_task_model, per_task = applied(name, "per-task", tasks)
    common = outside_the_modules(shared_model, name)
    assert common == outside_the_modules(per_task_model, name)
    assert per_task - common == len(tasks) * (shared - common) > 0


@pytest.mark.parametrize("name", ADAPTERS)
def test_half_shared_adapters_count_exactly_between(name):
    counts = {mode: applied(name, mode)[1] for mode in SHARING}
    assert counts["shared"] < counts["shared-up"] < counts["per-task"]
    assert counts["shared"] < counts["shared-down"] < counts["per-task"]
    # each half adds the other projection's per-task copies: the two halves add up to both
    assert counts["shared-up"] + counts["shared-down"] == counts["shared"] + counts["per-task"]
    model, _ = applied(name, "shared-up")
    per_task_names = [n for n, p in model.named_parameters() if p.requires_grad and belongs_to(n, "rte")]
    assert per_task_names and all(".adapter.down.tasks.rte." in n for n in per_task_names)


SPLIT_MODES = [(name, mode) for name, mode in EVERY_MODE if mode not in (None, "shared")]


@pytest.mark.parametrize(("name", "mode"), SPLIT_MODES)
def test_a_batch_of_task_a_trains_no_parameter_of_task_bs_modules(name, mode):
    model, _ = applied(name, mode)
    model.train()
    set_task(model, "rte")
    model(**tiny_batch()).loss.backward()
    grads = {n: p.grad for n, p in model.named_parameters() if p.requires_grad}
    of_b = [n for n in grads if belongs_to(n, "sst2")]
    of_a = [n for n in grads if belongs_to(n, "rte")]
    assert of_b and len(of_a) == len(of_b)
    assert all(grads[n] is None or not grads[n].any() for n in of_b)
    assert any(grads[n] is not None and grads[n].any() for n in of_a)


@pytest.mark.parametrize(("name", "mode"), [(n, m) for n, m in EVERY_MODE if m is not None])
def test_a_single_task_trial_is_the_same_in_every_mode(name, mode):
    default_model, default_count = applied(name, None, tasks=None)
    model, count = applied(name, mode, tasks=None)
    assert count == default_count
    ours, theirs = dict(model.named_parameters()), dict(default_model.named_parameters())
    assert ours.keys() == theirs.keys()
    assert all(torch.equal(ours[n], theirs[n]) for n in ours)


@pytest.mark.parametrize(("name", "mode"), EVERY_MODE)
def test_every_method_trains_a_step_in_a_mixture_in_each_of_its_modes(name, mode):
    model, trainable = applied(name, mode)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    assert trainable == sum(p.numel() for p in params) > 0
    optimizer = torch.optim.SGD(params, lr=0.1)
    before = [p.detach().clone() for p in params]
    set_task(model, "sst2")
    loss = model(**tiny_batch()).loss
    assert torch.isfinite(loss)
    loss.backward()
    optimizer.step()
    assert any(not torch.equal(b, p) for b, p in zip(before, params, strict=True))
    set_task(model, "rte")  # the other task's forward and generation run too
    model.eval()
    batch = {k: v for k, v in tiny_batch(seed=2).items() if k != "labels"}
    with torch.no_grad():
        assert torch.isfinite(model(**batch, decoder_input_ids=torch.zeros(3, 1, dtype=torch.long)).logits).all()
        assert model.generate(**batch, max_new_tokens=2, do_sample=False).shape[0] == 3


@pytest.mark.parametrize("name", ["adapter", "compacter++", "prompt-tuning-r", "lora", "bitfit"])
def test_per_task_modules_give_each_task_its_own_output(name):
    model, _ = applied(name, "per-task")
    with torch.no_grad():  # LoRA's up-projections start at zero: give every module weights to tell apart
        for n, p in model.named_parameters():
            if belongs_to(n, "rte") or belongs_to(n, "sst2"):
                p.normal_(0, 0.2)
    batch = tiny_batch()
    outputs = {}
    for task in TASKS:
        set_task(model, task)
        with torch.no_grad():
            outputs[task] = model(**batch).logits
    assert not torch.allclose(outputs["rte"], outputs["sst2"])
