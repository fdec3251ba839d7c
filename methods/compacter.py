"""Hypercomplex adapters: PHM-Adapter, Compacter and Compacter++ (Karimi Mahabadi et al., 2021).

    PHM layer    y = W x + b,    W = Σᵢ₌₁ⁿ Aᵢ ⊗ Bᵢ,   Aᵢ ∈ R^{n×n},  Bᵢ ∈ R^{(k/n)×(d/n)}
    LPHM layer   Bᵢ = sᵢ tᵢᵀ  (rank r),  and the rule A = (A₁..Aₙ) is one n×n×n tensor shared by
                 every LPHM layer of the model (encoder and decoder, down and up projections)

phm-adapter   adapters (methods/adapter.py placement) whose D and U are PHM layers, a rule per layer
compacter     the same with LPHM layers
compacter++   LPHM adapters after the feed-forward sublayer only

W is never built. With x split into n rows, X ∈ R^{n×(d/n)}, the row-major identity
(A ⊗ B) vec(X) = vec(A X Bᵀ) turns the product into two small matrix products per layer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import torch
from torch import nn

from methods.adapter import AdapterConfig, apply, glorot_uniform_
from methods.registry import register


def _slices_glorot(shape: tuple[int, ...]) -> nn.Parameter:
    """A stack of matrices, each glorot-uniform on its own (the original code's per-slice init)."""
    tensor = torch.empty(shape)
    for matrix in tensor:
        glorot_uniform_(matrix)
    return nn.Parameter(tensor)


def phm_rule(n: int, std: float) -> nn.Parameter:
    """The rule A: n matrices of n×n, N(0, std²)."""
    return nn.Parameter(torch.randn(n, n, n) * std)


class PHMLinear(nn.Module):
    """``y = (Σᵢ Aᵢ ⊗ Bᵢ) x + b``; ``rank=None`` keeps each Bᵢ whole, else ``Bᵢ = sᵢ tᵢᵀ``.

    ``rule`` (n×n×n) may be a Parameter shared with other layers; by default the layer owns one.
    """

    def __init__(self, in_features: int, out_features: int, n: int, *, rank: int | None = None,
                 rule: nn.Parameter | None = None, rule_init_std: float = 1e-4):
        super().__init__()
        if in_features % n or out_features % n:
            raise ValueError(f"phm_dim {n} must divide both {in_features} and {out_features}")
        self.n, self.rank, self.out_features = n, rank, out_features
        p, q = in_features // n, out_features // n
        self.rule = rule if rule is not None else phm_rule(n, rule_init_std)
        if rank is None:
            self.B = _slices_glorot((n, q, p))
        else:
            self.s, self.t = _slices_glorot((n, q, rank)), _slices_glorot((n, p, rank))
        self.bias = nn.Parameter(torch.zeros(out_features))

    def forward(self, x):
        lead, n = x.shape[:-1], self.n
        X = x.reshape(-1, n, x.shape[-1] // n)  # token b: X[b, j, e] = x[b, j·(d/n) + e]
        y = self._full(X) if self.rank is None else self._factored(X)
        return y.reshape(*lead, self.out_features) + self.bias

    def _factored(self, X):
        """U[b, j, i, r] = (X_b tᵢ)[j, r];  y[b, a, c] = Σ_jir Aᵢ[a, j] sᵢ[c, r] U[b, j, i, r]."""
        U = (X @ self.t.permute(1, 0, 2).reshape(X.shape[-1], -1)).reshape(len(X), -1)
        K = torch.einsum("iaj,icr->jirac", self.rule, self.s).reshape(U.shape[-1], self.out_features)
        return U @ K

    def _full(self, X):
        """Σᵢ Aᵢ X Bᵢᵀ, contracting the rule on whichever side of the layer is smaller."""
        n, (T, _, p), q = self.n, X.shape, self.out_features // self.n
        A = self.rule.permute(2, 0, 1)  # A[j, i, a] = Aᵢ[a, j]
        if q <= p:  # Z[b, j, i, c] = (X_b Bᵢᵀ)[j, c], then y[b, a, c] = Σ_ji A[j, i, a] Z[b, j, i, c]
            Z = (X @ self.B.permute(2, 0, 1).reshape(p, n * q)).view(T, n * n, q)
            return (Z.transpose(1, 2).reshape(T * q, n * n) @ A.reshape(n * n, n)).view(T, q, n).transpose(1, 2)
        # V[b, e, i, a] = Σ_j A[j, i, a] X[b, j, e], then y[b, a, c] = Σ_ie V[b, e, i, a] Bᵢ[c, e]
        V = (X.transpose(1, 2).reshape(T * p, n) @ A.reshape(n, n * n)).view(T, p, n, n)
        return V.permute(0, 3, 2, 1).reshape(T * n, n * p) @ self.B.permute(0, 2, 1).reshape(n * p, q)


@dataclass(frozen=True)
class PHMAdapterConfig(AdapterConfig):
    """PHM-Adapter: adapters whose projections are sums of Kronecker products, a rule per layer."""

    phm_dim: int = field(default=12, metadata={"help": "n: Kronecker products per layer (divides d_model)"})
    rule_init_std: float = field(default=0.01, metadata={"help": "std of the rules' normal init"})

    def __post_init__(self):
        super().__post_init__()
        if not (isinstance(self.rule_init_std, (int, float)) and self.rule_init_std > 0):
            raise ValueError(f"rule_init_std must be a positive number, got {self.rule_init_std!r}")

    def _int_bounds(self):
        return {**super()._int_bounds(), "phm_dim": 1}

    def linear_factory(self, d_model, bottleneck):
        return lambda i, o: PHMLinear(i, o, self.phm_dim, rule_init_std=self.rule_init_std)


@dataclass(frozen=True)
class CompacterConfig(PHMAdapterConfig):
    """Compacter: PHM adapters with rank-r factors and one rule shared by the whole model."""

    phm_dim: int = field(default=4, metadata={"help": "n: Kronecker products per layer (divides d_model)"})
    phm_rank: int = field(default=1, metadata={"help": "rank r of each factor B = s tᵀ"})
    rule_init_std: float = field(default=1e-4, metadata={"help": "std of the shared rule's normal init"})

    def _int_bounds(self):
        return {**super()._int_bounds(), "phm_rank": 1}

    def linear_factory(self, d_model, bottleneck):
        shared = phm_rule(self.phm_dim, self.rule_init_std)  # one rule for the whole model
        return lambda i, o: PHMLinear(i, o, self.phm_dim, rank=self.phm_rank, rule=shared)


@dataclass(frozen=True)
class CompacterPlusPlusConfig(CompacterConfig):
    """Compacter++: Compacter adapters after the feed-forward sublayer only."""

    sublayers: ClassVar[tuple[str, ...]] = ("feed_forward",)


register("phm-adapter", PHMAdapterConfig, apply, task_prefix=False)
register("compacter", CompacterConfig, apply, task_prefix=False)
register("compacter++", CompacterPlusPlusConfig, apply, task_prefix=False)
