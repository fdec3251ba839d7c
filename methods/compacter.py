"""Hypercomplex adapters: PHM-Adapter, Compacter and Compacter++ (Karimi Mahabadi et al., 2021).

    PHM layer    y = W x + b,    W = Σᵢ₌₁ⁿ Aᵢ ⊗ Bᵢ,   Aᵢ ∈ R^{n×n},  Bᵢ ∈ R^{(k/n)×(d/n)}
    LPHM layer   Bᵢ = sᵢ tᵢᵀ  (rank r),  and the rule A = (A₁..Aₙ) is one n×n×n tensor shared by
                 every LPHM layer of the model (encoder and decoder, down and up projections)

phm-adapter   adapters (methods/adapter.py placement) whose D and U are PHM layers, a rule per layer
compacter     the same with LPHM layers
compacter++   LPHM adapters after the feed-forward sublayer only

In a mixture, ``sharing`` splits the adapters as for the adapter family (methods/adapter.py); Compacter's
rule stays one tensor for the whole model, shared across tasks as well as layers, in every mode; there
it is the model's own ``phm_rule`` (its first layer's name would file it under one task).

The original code builds W every step. An LPHM layer need not: with x split into n rows,
X ∈ R^{n×(d/n)}, the row-major identity (A ⊗ B) vec(X) = vec(A X Bᵀ) turns W x into two small
matrix products, fewer multiply-adds than W x itself at rank 1. ``PHMLinear.plan`` picks, per call,
whichever order costs less for the rows at hand.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import torch
from torch import nn

from peftbench.methods.adapter import AdapterConfig, adapter_and_layer_norm_names, apply, glorot_uniform_
from peftbench.methods.multitask import SHARING, sharing_field, task_switch
from peftbench.methods.registry import register


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
    Each call evaluates in the cheaper order for its number of rows (``plan``); both are exact.
    """

    def __init__(self, in_features: int, out_features: int, n: int, *, rank: int | None = None,
                 rule: nn.Parameter | None = None, rule_init_std: float = 1e-4):
        super().__init__()
        if in_features % n or out_features % n:
            raise ValueError(f"phm_dim {n} must divide both {in_features} and {out_features}")
        self.n, self.rank, self.in_features, self.out_features = n, rank, in_features, out_features
        p, q = in_features // n, out_features // n
        self.rule = rule if rule is not None else phm_rule(n, rule_init_std)
        if rank is None:
            self.B = _slices_glorot((n, q, p))
        else:
            self.s, self.t = _slices_glorot((n, q, rank)), _slices_glorot((n, p, rank))
        self.bias = nn.Parameter(torch.zeros(out_features))

    def forward(self, x):
        lead, rows = x.shape[:-1], x.reshape(-1, self.in_features)
        if self.plan(len(rows)) == "weight":
            y = torch.addmm(self.bias, rows, self.weight().T)
        else:
            y = self._factored(rows)
        return y.view(*lead, self.out_features)

    def plan(self, rows: int) -> str:
        """``"weight"`` (build W, then one product) or ``"factored"`` (never build W), whichever takes
        fewer multiply-adds for ``rows`` inputs. Both launch the same kernels forward (the products
        Aᵢ[a, j] sᵢ[c, r], their copy into place, two matrix products) and backward costs about twice
        forward in both, so where per-kernel overhead dominates, on CPU or GPU, they tie and the
        count decides. Without a rank (PHM) the W-free order costs X Bᵢᵀ for every i, the
        multiply-adds of W x itself, and more: W is always built."""
        n, d, k, r = self.n, self.in_features, self.out_features, self.rank
        if r is None:
            return "weight"
        build, factored = n * r * d * k, rows * (d * n * r + n * n * r * k) + n * n * r * k
        return "weight" if build + rows * d * k < factored else "factored"

    def weight(self) -> torch.Tensor:
        """W = Σᵢ Aᵢ ⊗ Bᵢ (out × in): W[a·q + c, j·p + e] = Σᵢ Aᵢ[a, j] Bᵢ[c, e]."""
        n, rule, p, q = self.n, self.rule, self.in_features // self.n, self.out_features // self.n
        if self.rank is None:  # (a·j, i) @ (i, c·e), then (a, j, c, e) -> (a, c, j, e)
            W = (rule.reshape(n, n * n).T @ self.B.reshape(n, q * p)).view(n, n, q, p)
            return W.transpose(1, 2).reshape(self.out_features, self.in_features)
        # K[a, c, j, i, r] = Aᵢ[a, j] sᵢ[c, r], then W[(a, c, j), e] = Σ_ir K[a, c, j, i, r] tᵢ[e, r]
        K = rule.permute(1, 2, 0).reshape(n, 1, n, n, 1) * self.s.permute(1, 0, 2).reshape(1, q, 1, n, self.rank)
        W = K.reshape(n * q * n, n * self.rank) @ self.t.permute(0, 2, 1).reshape(n * self.rank, p)
        return W.view(self.out_features, self.in_features)

    def _factored(self, rows):
        """With X_b the n×p matrix of row b: U[b, (j, i, r)] = (X_b tᵢ)[j, r] and
        K[(j, i, r), (a, c)] = Aᵢ[a, j] sᵢ[c, r], so (U K)[b, a·q + c] = Σ_jir Aᵢ[a, j] sᵢ[c, r] (X_b tᵢ)[j, r]."""
        n, r, p = self.n, self.rank, self.in_features // self.n
        U = (rows.reshape(-1, p) @ self.t.permute(1, 0, 2).reshape(p, n * r)).view(len(rows), n * n * r)
        K = self.rule.permute(2, 0, 1).reshape(n, n, 1, n, 1) * self.s.permute(0, 2, 1).reshape(1, n, r, 1, -1)
        return torch.addmm(self.bias, U, K.reshape(n * n * r, self.out_features))  # mul keeps the rule's layout


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
    sharing: str = sharing_field(SHARING, note="the rule and T5's layer norms are shared in every mode")

    def _int_bounds(self):
        return {**super()._int_bounds(), "phm_rank": 1}

    def linear_factory(self, d_model, bottleneck):
        shared = phm_rule(self.phm_dim, self.rule_init_std)  # one rule for the whole model
        return lambda i, o: PHMLinear(i, o, self.phm_dim, rank=self.phm_rank, rule=shared)


@dataclass(frozen=True)
class CompacterPlusPlusConfig(CompacterConfig):
    """Compacter++: Compacter adapters after the feed-forward sublayer only."""

    sublayers: ClassVar[tuple[str, ...]] = ("feed_forward",)


def apply_with_shared_rule(model: nn.Module, cfg: CompacterConfig) -> list[str]:
    """Compacter's adapters (``apply``); in a mixture its one rule is registered as ``phm_rule``."""
    names = apply(model, cfg)
    if task_switch(model) is None:
        return names  # the rule keeps its single-task name, under the first adapter
    model.register_parameter("phm_rule", next(m.rule for m in model.modules() if isinstance(m, PHMLinear)))
    return ["phm_rule", *adapter_and_layer_norm_names(model)]


register("phm-adapter", PHMAdapterConfig, apply, task_prefix=False)
register("compacter", CompacterConfig, apply_with_shared_rule, task_prefix=False)
register("compacter++", CompacterPlusPlusConfig, apply_with_shared_rule, task_prefix=False)
