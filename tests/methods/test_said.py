"""The Fastfood projection against dense matrices, and Intrinsic-SAID inside T5."""

from __future__ import annotations

import math

import pytest
import torch
from transformers import T5ForConditionalGeneration

from peftbench.methods import apply_method
from peftbench.methods.said import Fastfood, fwht, share_lengths
from peftbench.models.load import tiny_t5_config


def dense_hadamard(n: int) -> torch.Tensor:
    """Sylvester's construction by repeated Kronecker products: H_{2n} = [[H, H], [H, −H]]."""
    H = torch.ones(1, 1, dtype=torch.float64)
    while len(H) < n:
        H = torch.kron(torch.tensor([[1.0, 1.0], [1.0, -1.0]], dtype=torch.float64), H)
    return H


@pytest.mark.parametrize("n", [1, 2, 8, 32, 256, 2048])
@pytest.mark.parametrize("radix_bits", [1, 3, 4])
def test_fast_walsh_hadamard_equals_the_dense_matrix(n, radix_bits):
    x = torch.randn(3, 2, n, dtype=torch.float64)
    torch.testing.assert_close(fwht(x, radix_bits), x @ dense_hadamard(n).T)


def test_fwht_refuses_lengths_that_are_not_powers_of_two():
    with pytest.raises(ValueError, match="power-of-two"):
        fwht(torch.randn(12))


@pytest.mark.parametrize("d, sizes", [(20, [100]), (300, [64, 10]), (16, [16, 16, 3])])
def test_fastfood_rows_equal_their_dense_constructions(d, sizes):
    ff = Fastfood(d, sizes, torch.Generator().manual_seed(0), torch.device("cpu"))
    k, L = ff.sign.shape
    assert k == len(sizes) and L >= max(d, *sizes) and L & (L - 1) == 0 and L < 2 * max(d, *sizes)
    H = dense_hadamard(L).float()
    x = torch.randn(d)
    rows = ff(x)
    for j, D in enumerate(sizes):  # each row is its own projection: its own B, Π, G
        Pi = torch.eye(L)[ff.perm[j].long() - j * L]  # (Π v)_i = v_perm[i]
        G, B = torch.diag(ff.gauss[j].float()), torch.diag(ff.sign[j].float())
        P = (H @ G @ Pi @ H @ B)[:D, :d] / (ff.gauss[j].float().norm() * math.sqrt(D))
        torch.testing.assert_close(rows[j], P @ x, rtol=1e-4, atol=1e-5)
    if k > 1:
        assert not torch.equal(ff.gauss[0], ff.gauss[1]) and not torch.equal(ff.perm[0], ff.perm[1] - L)


def test_fastfood_columns_have_unit_norm_on_average():
    ff = Fastfood(64, [4096], torch.Generator().manual_seed(1), torch.device("cpu"))
    columns = torch.stack([ff(e)[0] for e in torch.eye(64)], dim=1)
    assert abs(columns.square().sum(0).mean().item() - 1) < 0.1


def test_tensors_of_one_padded_length_share_a_projection():
    assert share_lengths(100, [100, 50, 128, 129, 20, 4096]) == [[0, 1, 2, 4], [3], [5]]
    # a group never outgrows the int32 permutation index: at L = 2^30 two rows fill it
    assert share_lengths(2, [2**30] * 5) == [[0, 1], [2, 3], [4]]


def tiny_said(said_dim=300):
    torch.manual_seed(0)
    model = T5ForConditionalGeneration(tiny_t5_config())
    reference = {n: p.detach().clone() for n, p in model.named_parameters()}
    _, count = apply_method(model, "intrinsic-said", {"said_dim": said_dim})
    return model, reference, count


def test_said_weights_are_theta0_plus_scaled_projection_and_stay_tied():
    model, reference, count = tiny_said()
    said = model.intrinsic_said
    assert count.trainable == 300 and said.theta.numel() + said.scale.numel() == 300
    assert said.scale.numel() == len(reference)  # one scalar per weight tensor
    with torch.no_grad():
        said.theta.normal_()
        said.scale.uniform_(0.5, 2.0)
    model(input_ids=torch.tensor([[5, 6, 7]]), labels=torch.tensor([[8, 1]]))
    i = list(reference).index("encoder.block.0.layer.1.DenseReluDense.wi.weight")
    wi = model.encoder.block[0].layer[1].DenseReluDense.wi.weight
    (row,) = [rows[group.index(i)] for proj, group in zip(said.projections, said.groups, strict=True) if i in group
              for rows in [proj(said.theta)]]
    expected = reference["encoder.block.0.layer.1.DenseReluDense.wi.weight"] + said.scale[i] * row.view_as(wi)
    torch.testing.assert_close(wi, expected)
    # one embedding tensor, used by the input embeddings and the output layer alike
    assert model.lm_head.weight is model.shared.weight is model.encoder.embed_tokens.weight
    assert not torch.equal(model.shared.weight, reference["shared.weight"])


def test_said_keeps_no_dense_projection():
    model, reference, _ = tiny_said()
    largest = max(p.numel() for p in reference.values())
    for buffer_name, buffer in model.intrinsic_said.projections.named_buffers():
        assert buffer.dim() <= 2 and buffer.shape[-1] < 2 * max(largest, 300), buffer_name
    # every weight tensor is projected exactly once
    assert sorted(i for group in model.intrinsic_said.groups for i in group) == list(range(len(reference)))


def test_said_builds_on_the_meta_device():
    with torch.device("meta"):
        model = T5ForConditionalGeneration(tiny_t5_config())
        _, count = apply_method(model, "intrinsic-said", {"said_dim": 1000})
    assert count.trainable == 1000 and model.intrinsic_said.theta.is_meta


@pytest.mark.parametrize("n", [8, 256])
def test_walsh_hadamard_gradient_is_exact_not_scaled(n):
    # The original code's backward multiplies by 1/√L (a bug, methods/FIDELITY.md); here the
    # gradient of ⟨g, H x⟩ is Hᵀ g = H g exactly.
    x = torch.randn(n, dtype=torch.float64, requires_grad=True)
    g = torch.randn(n, dtype=torch.float64)
    (fwht(x) * g).sum().backward()
    torch.testing.assert_close(x.grad, dense_hadamard(n).T @ g)
