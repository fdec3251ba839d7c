"""Each method is the paper's method, not only one with the same parameter count: which blocks and which
sublayers take adapters, and how new weights start (distributions checked tightly enough that a wrong
range or a zero init fails)."""

from __future__ import annotations

import math

import pytest
import torch

from peftbench.methods import apply_method
from peftbench.methods.adapter import AfterSublayer

from testkit.models import tiny_model

SUBLAYER = {"T5LayerSelfAttention": "self-attention", "T5LayerCrossAttention": "cross-attention",
            "T5LayerFF": "feed-forward"}


def placement(model) -> set[tuple[str, int, str]]:
    """(stack, block index, sublayer kind) of every adapter in the model."""
    where = set()
    for stack in ("encoder", "decoder"):
        for i, block in enumerate(getattr(model, stack).block):
            for sublayer in block.layer:
                if isinstance(getattr(sublayer, "dropout", None), AfterSublayer):
                    where.add((stack, i, SUBLAYER[type(sublayer).__name__]))
    return where


def everywhere(kinds: tuple[str, ...], blocks=range(3)) -> set[tuple[str, int, str]]:
    return {(stack, i, kind) for stack in ("encoder", "decoder") for i in blocks for kind in kinds}


BOTH = ("self-attention", "feed-forward")


@pytest.mark.parametrize("method, options, expected", [
    ("adapter", {}, everywhere(BOTH)),
    ("adapter-lowrank", {}, everywhere(BOTH)),
    ("phm-adapter", {"phm_dim": 4}, everywhere(BOTH)),
    ("compacter", {}, everywhere(BOTH)),
    ("pfeiffer-adapter", {}, everywhere(("self-attention",))),  # Pfeiffer et al.'s best: after self-attention
    ("compacter++", {}, everywhere(("feed-forward",))),
    ("adapterdrop", {"dropped_layers": 2}, everywhere(BOTH, blocks=[2])),  # the first blocks go, the last stay
    ("adapterdrop", {"dropped_layers": 1}, everywhere(BOTH, blocks=[1, 2])),
], ids=lambda v: v if isinstance(v, str) else "")
def test_adapters_sit_in_the_papers_blocks_and_sublayers_never_in_cross_attention(method, options, expected):
    model = tiny_model(layers=3).train()
    apply_method(model, method, options)
    assert placement(model) == expected


def test_prompt_tuning_r_starts_uniform_on_minus_half_to_half():
    model = tiny_model(layers=1).train()
    apply_method(model, "prompt-tuning-r", {"prompt_length": 100})
    x = model.soft_prompt.embedding.detach().flatten()  # 12,800 draws
    assert x.min() >= -0.5 and x.max() < 0.5
    assert x.min() < -0.49 and x.max() > 0.49  # the whole range is used, not [0, 0.5) or a narrower one
    assert abs(x.mean()) < 0.01  # standard error 0.0026
    assert abs(x.std() - 1 / math.sqrt(12)) < 0.005  # uniform's std on a range of 1
    for lo in (-0.5, -0.25, 0.0, 0.25):  # a quarter of the draws in each quarter of the range
        assert abs(((x >= lo) & (x < lo + 0.25)).float().mean() - 0.25) < 0.02


def test_prompt_tuning_t_copies_embeddings_of_the_first_vocab_sample_tokens():
    model = tiny_model(layers=1).train()
    apply_method(model, "prompt-tuning-t", {"prompt_length": 40, "vocab_sample": 10})
    rows, table = model.soft_prompt.embedding.detach(), model.shared.weight.detach()
    matches = [(table == row).all(-1).nonzero().flatten().tolist() for row in rows]
    assert all(len(m) == 1 and m[0] < 10 for m in matches)
    assert len({m[0] for m in matches}) > 5  # drawn, not one token repeated


def adapter_weights(model, part: str) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for n, p in model.named_parameters() if f".adapter.{part}" in n])


def test_houlsby_adapter_weights_start_normal_with_std_0_01_and_zero_biases():
    model = tiny_model(layers=3).train()
    apply_method(model, "adapter")
    weights = adapter_weights(model, "down.weight"), adapter_weights(model, "up.weight")
    for w in weights:  # 12 adapters × 512 weights each way
        assert abs(w.std() - 0.01) < 0.0005 and abs(w.mean()) < 0.0005
    assert not adapter_weights(model, "down.bias").any() and not adapter_weights(model, "up.bias").any()


def test_low_rank_factors_start_glorot_uniform_with_gain_sqrt_2():
    model = tiny_model(layers=3).train()
    apply_method(model, "adapter-lowrank")
    left = [p.detach() for n, p in model.named_parameters() if n.endswith("down.left")]
    x = torch.cat([t.flatten() for t in left])  # each 128 × 1: fan_in 1, fan_out 128
    bound = math.sqrt(2) * math.sqrt(6 / (1 + 128))
    assert x.abs().max() <= bound and x.abs().max() > 0.95 * bound
    assert abs(x.std() - bound / math.sqrt(3)) < 0.05 * bound


@pytest.mark.parametrize("method, options, std, shared", [
    ("compacter", {}, 1e-4, True), ("compacter++", {}, 1e-4, True), ("phm-adapter", {"phm_dim": 4}, 0.01, False),
])
def test_phm_rules_start_normal_and_compacters_one_rule_is_shared_by_every_layer(method, options, std, shared):
    model = tiny_model(layers=3).train()
    apply_method(model, method, options)
    rules = [m.rule for m in model.modules() if hasattr(m, "rule")]
    assert len({id(r) for r in rules}) == (1 if shared else len(rules)) and len(rules) > 1
    x = torch.cat([r.detach().flatten() for r in {id(r): r for r in rules}.values()])
    assert 0.75 * std < x.std() < 1.25 * std and abs(x.mean()) < 0.3 * std


@pytest.mark.parametrize("method, options", [("bitfit", {}), ("intrinsic-said", {"said_dim": 300})])
def test_bitfit_and_said_start_from_the_unchanged_model(method, options):
    torch.manual_seed(1)
    batch = {"input_ids": torch.randint(2, 384, (2, 7)), "decoder_input_ids": torch.randint(2, 384, (2, 3))}
    model = tiny_model(layers=3)
    with torch.no_grad():
        before = model(**batch).logits
        apply_method(model, method, options)
        after = model(**batch).logits
    assert torch.allclose(before, after, atol=1e-6)
    trainable = [p for p in model.parameters() if p.requires_grad]
    with torch.no_grad():  # the check above can fail: moving a trainable weight changes the output
        trainable[0].add_(0.5)
        assert not torch.allclose(model(**batch).logits, before, atol=1e-4)
