"""PHM and LPHM layers against an explicit W = Σᵢ Aᵢ ⊗ Bᵢ built with torch.kron."""

from __future__ import annotations

import pytest
import torch
from transformers import T5ForConditionalGeneration

from peftbench.methods import apply_method
from peftbench.methods.compacter import PHMLinear
from peftbench.models.load import tiny_t5_config


def explicit_weight(layer: PHMLinear) -> torch.Tensor:
    """The out×in weight, built the slow way."""
    if layer.rank is None:
        Bs = layer.B
    else:
        Bs = layer.s @ layer.t.transpose(1, 2)  # Bᵢ = sᵢ tᵢᵀ
    return sum(torch.kron(A, B) for A, B in zip(layer.rule, Bs, strict=True))


PHM_SHAPES = [(24, 8, 4, None), (8, 24, 4, None), (36, 12, 3, None)]  # a PHM layer always builds W
LPHM_SHAPES = [(24, 8, 4, 1), (8, 24, 2, 1), (36, 12, 3, 2)]


@pytest.mark.parametrize("in_features, out_features, n, rank, order", [
    *(shape + ("weight",) for shape in PHM_SHAPES + LPHM_SHAPES), *(shape + ("factored",) for shape in LPHM_SHAPES)])
def test_phm_layer_equals_the_kronecker_sum_in_either_order(in_features, out_features, n, rank, order):
    torch.manual_seed(0)
    layer = PHMLinear(in_features, out_features, n, rank=rank, rule_init_std=0.5)
    layer.plan = lambda rows: order  # this test, not the cost, picks the order
    torch.nn.init.normal_(layer.bias)
    x = torch.randn(2, 5, in_features)
    W = explicit_weight(layer)
    assert W.shape == (out_features, in_features)
    torch.testing.assert_close(layer.weight(), W, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(layer(x), x @ W.T + layer.bias, rtol=1e-5, atol=1e-5)

    # the gradients, too, are those of the explicit weight
    grads = torch.autograd.grad(layer(x).square().sum(), list(layer.parameters()))
    explicit = (x @ explicit_weight(layer).T + layer.bias).square().sum()
    reference = torch.autograd.grad(explicit, list(layer.parameters()))
    for got, want in zip(grads, reference, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


def test_the_order_is_the_one_with_fewer_multiply_adds():
    # T5-base's Compacter layers (768 -> 24 -> 768, n = 4, rank 1): never building W costs fewer
    # multiply-adds per row than W x alone, so at every batch
    for features in ((768, 24), (24, 768)):
        layer = PHMLinear(*features, 4, rank=1)
        assert {layer.plan(rows) for rows in (1, 64, 1024, 65536)} == {"factored"}
    # tiny T5's down-projection (128 -> 4): W x costs 512 per row against the factored 576, and
    # W's 2,048 to build pay off from 32 rows on (2048 + 512 T < 576 T + 64, the 64 building K)
    down = PHMLinear(128, 4, 4, rank=1)
    assert [down.plan(rows) for rows in (1, 31, 32, 1024)] == ["factored"] * 2 + ["weight"] * 2
    assert PHMLinear(768, 24, 12).plan(1) == "weight"


def test_phm_layer_refuses_dimensions_n_does_not_divide():
    with pytest.raises(ValueError, match="must divide"):
        PHMLinear(10, 8, 4)


def phm_layers(model):
    return [m for m in model.modules() if isinstance(m, PHMLinear)]


def test_compacter_shares_one_rule_across_the_whole_model_and_counts_it_once():
    model = T5ForConditionalGeneration(tiny_t5_config())
    _, count = apply_method(model, "compacter")
    layers = phm_layers(model)
    assert len(layers) == 2 * 2 * 4  # down and up × two adapters per block × four blocks
    assert all(layer.rule is layers[0].rule for layer in layers)
    names = [n for n, p in model.named_parameters() if p is layers[0].rule]
    assert len(names) == 1 and count.trainable == sum(p.numel() for p in model.parameters() if p.requires_grad)


def test_phm_adapter_has_a_rule_per_layer():
    model = T5ForConditionalGeneration(tiny_t5_config())
    apply_method(model, "phm-adapter", {"phm_dim": 4})
    layers = phm_layers(model)
    assert len({id(layer.rule) for layer in layers}) == len(layers) == 16
    assert all(layer.rank is None for layer in layers)


def test_compacter_plus_plus_sits_only_after_the_feed_forward():
    model = T5ForConditionalGeneration(tiny_t5_config())
    apply_method(model, "compacter++")
    owners = {name.rsplit(".dropout.adapter", 1)[0] for name, _ in model.named_modules() if name.endswith(".adapter")}
    stacks = {"encoder": 1, "decoder": 2}  # index of the feed-forward sublayer in each block
    assert owners == {f"{s}.block.{b}.layer.{i}" for s, i in stacks.items() for b in range(2)}
