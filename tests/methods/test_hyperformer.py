"""Hyperformer and Hyperformer++: generated adapters that follow the task switch, and their counts on
T5-base against the authors' structure and the paper's 0.29 % per task."""

from __future__ import annotations

from itertools import pairwise

import pytest
import torch

from peftbench.engine.accounting import count_params
from peftbench.methods import apply_method
from peftbench.methods.hyperformer import HyperAdapter
from peftbench.methods.multitask import set_task
from peftbench.models.load import model_config, tiny_t5_config

from testkit.models import tiny_batch, tiny_model

GLUE = ["rte", "sst2", "mrpc", "stsb", "qqp", "mnli", "qnli", "cola"]


def mixture(name: str, tasks=("rte", "sst2"), options=None, seed: int = 0):
    model = tiny_model(seed)
    _, count = apply_method(model, name, options or {}, tasks=list(tasks))
    return model, count


@pytest.mark.parametrize("name", ["hyperformer", "hyperformer++"])
@pytest.mark.parametrize("dim", [64, 24])
def test_adding_a_task_adds_only_its_embedding(name, dim):
    config = tiny_t5_config()
    options = {"task_embedding_dim": dim}
    counts = [count_params(config, name, options, GLUE[:k]).trainable for k in (1, 2, 3, 8)]
    assert [b - a for a, b in pairwise(counts)] == [dim, dim, 5 * dim]
    assert count_params(config, name, options).trainable == counts[0]  # a single task: one embedding


def test_hyperformer_generates_per_adapter_and_hyperformer_plus_plus_per_stack_on_t5_base():
    """Counts from the authors' modules for T5-base (d 768, bottleneck 24, 12 blocks a stack, 8 tasks)."""
    config = model_config("t5-base")
    d, r, t, h, p, layer_norms = 768, 24, 64, 128, 64, 62 * 768
    generators = (p + 1) * (2 * d * r + r + 3 * d)  # D, U, their biases, γ, β
    assert generators == 2_547_480
    per_layer = count_params(config, "hyperformer", {}, GLUE)
    assert per_layer.trainable == 8 * t + (t * h + h + h * p + p) + 48 * generators + layer_norms == 122_343_744
    stack = 12 * t + 2 * t + (3 * t * h + h + h * p + p) + 2 * p + generators  # ids, positions, h'_I, LN
    plus_plus = count_params(config, "hyperformer++", {}, GLUE)
    assert plus_plus.trainable == 8 * t + 2 * stack + layer_norms == 5_211_056
    # the paper's "0.29 % parameters per task": the mixture's count over T5-base, per member task
    assert round(plus_plus.pct / len(GLUE), 2) == 0.29
    one_for_both = count_params(config, "hyperformer++", {"stacks": "shared"}, GLUE)
    assert plus_plus.trainable - one_for_both.trainable == stack - 2 * t  # one stack's net, less 2 positions


def test_generated_weights_and_outputs_differ_between_tasks():
    for name in ("hyperformer", "hyperformer++"):
        model, _ = mixture(name)
        adapters = [m for m in model.modules() if isinstance(m, HyperAdapter)]
        assert len(adapters) == 8  # self-attention and feed-forward of 2 + 2 blocks
        weights, logits = {}, {}
        for task in ("rte", "sst2"):
            set_task(model, task)
            with torch.no_grad():
                weights[task] = [adapter.weights() for adapter in adapters]
                logits[task] = model(**tiny_batch()).logits
        for a, b in zip(weights["rte"], weights["sst2"], strict=True):
            assert not any(torch.allclose(x, y) for x, y in zip(a, b, strict=True))
        assert not torch.allclose(logits["rte"], logits["sst2"])


@pytest.mark.parametrize("name", ["hyperformer", "hyperformer++"])
def test_a_batch_of_task_a_moves_task_as_embedding_and_the_shared_hypernetwork_only(name):
    model, _ = mixture(name)
    set_task(model, "sst2")
    model(**tiny_batch()).loss.backward()
    table = model.hyperformer.task_embeddings.weight
    assert table.grad[1].abs().sum() > 0 and not table.grad[0].any()  # sst2 is row 1, rte row 0
    with_grad = {n for n, p in model.named_parameters() if p.grad is not None and p.grad.any()}
    generators = {n for n, _ in model.named_parameters() if ".make." in n}
    assert generators and generators <= {n for n, p in model.named_parameters() if p.requires_grad}
    assert {n for n in generators if n.endswith(".weight")} <= with_grad


def test_hyperformer_plus_plus_adapters_own_nothing_the_stacks_hypernetworks_own_it_all():
    model, _ = mixture("hyperformer++")
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert not any(".adapter." in n for n in trainable)
    assert {n.split(".")[2] for n in trainable if n.startswith("hyperformer.hypernets.")} == {"encoder", "decoder"}
    assert {n for n in trainable if "layer_norm" in n}  # T5's own layer norms train, shared by the tasks


def test_a_single_task_hyperformer_needs_no_switch():
    model = tiny_model()
    _, count = apply_method(model, "hyperformer++", {})
    assert model.hyperformer.task_embeddings.weight.shape == (1, 64)
    assert torch.isfinite(model(**tiny_batch()).loss)
    assert count.trainable == count_params(tiny_t5_config(), "hyperformer++", {}, ["rte"]).trainable


@pytest.mark.parametrize(("options", "message"), [
    ({"task_embedding_dim": 0}, "task_embedding_dim must be a positive integer"),
    ({"stacks": "one"}, "stacks must be separate or shared"),
])
def test_bad_options_are_refused(options, message):
    with pytest.raises(ValueError, match=message):
        apply_method(tiny_model(), "hyperformer++", options)
