"""Intrinsic-SAID (Aghajanyan et al., 2021): train the whole model inside a random d-dim subspace.

    θᵢ = θ₀ᵢ + λᵢ Pᵢ(θ_d)         for every weight tensor i of the model (m of them)
    Pᵢ x = (H G Π H B pad(x))[:Dᵢ] / (‖G‖ √Dᵢ)          Fastfood (Le et al., 2013)

H: Walsh–Hadamard (±1 entries), G: Gaussian diagonal, Π: permutation, B: random ±1 diagonal, all of
size L = the power of two ≥ max(Dᵢ, d), fixed per tensor; the scaling gives columns of unit norm in
expectation. θ_d ∈ R^{d−m} starts at 0 and the m per-tensor scalars λ at 1, so ``said_dim`` = d counts
both, as in the original code. No D×d matrix exists: P costs two fast transforms, O(L log L).

The projected weights replace the model's parameters as plain tensors, recomputed before use
(a pre-hook on each module that owns one) whenever θ_d or λ changed or a backward pass consumed them.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from methods.registry import register


def fwht(x: torch.Tensor, radix_bits: int = 4) -> torch.Tensor:
    """Unnormalised Walsh–Hadamard transform over the last dim (a power of two), in plain torch.

    H_{2^m} = H_{2^a} ⊗ H_{2^b} ⊗ …: each stage multiplies the leading factor axis by a small Sylvester
    matrix, then rotates it to the back; after all stages the axes are in their original order.
    """
    n = x.shape[-1]
    if n & (n - 1):
        raise ValueError(f"fwht needs a power-of-two length, got {n}")
    y, bits_left = x.reshape(-1, n), n.bit_length() - 1
    while bits_left:
        bits = min(radix_bits, bits_left)
        c = 1 << bits
        y = (sylvester(bits, y) @ y.reshape(len(y), c, n // c)).transpose(1, 2).reshape(len(y), n)
        bits_left -= bits
    return y.reshape(x.shape)


def sylvester(bits: int, like: torch.Tensor) -> torch.Tensor:
    """The 2^bits × 2^bits Hadamard matrix H[i, j] = (−1)^popcount(i & j), on ``like``'s device."""
    return _sylvester(bits, like.device, like.dtype)


@functools.lru_cache(maxsize=64)
def _sylvester(bits: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    i = torch.arange(1 << bits)
    parity = sum(((i[:, None] & i[None, :]) >> bit) & 1 for bit in range(bits)) % 2
    return (1 - 2 * parity).to(device=device, dtype=dtype)


class Fastfood(nn.Module):
    """A fixed random projection R^d -> R^D; its randomness (B, Π, G) is drawn once from ``generator``."""

    def __init__(self, d: int, D: int, generator: torch.Generator | None, device: torch.device):
        super().__init__()
        self.d, self.D = d, D
        L = 1 << max(D - 1, d - 1, 1).bit_length()
        if device.type == "meta":  # parameter accounting: shapes only
            sign, perm, gauss = (torch.empty(L, dtype=t, device=device) for t in (torch.int8, torch.int32, torch.bfloat16))
        else:
            sign = (torch.randint(0, 2, (L,), generator=generator) * 2 - 1).to(torch.int8)
            perm = torch.randperm(L, generator=generator).to(torch.int32)
            gauss = torch.randn(L, generator=generator)
        # compact dtypes: these vectors sum to about twice the model's size
        self.register_buffer("sign", sign.to(device), persistent=False)
        self.register_buffer("perm", perm.to(device), persistent=False)
        self.register_buffer("gauss", gauss.to(device=device, dtype=torch.bfloat16), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v = F.pad(x, (0, len(self.sign) - self.d)) * self.sign
        v = fwht(v)[self.perm] * self.gauss
        v = fwht(v)[: self.D]
        return v / (self.gauss.float().norm() * math.sqrt(self.D))


@dataclass(frozen=True)
class SAIDConfig:
    said_dim: int = 20000
    seed: int = 0  # draws the projections; fixed so every trial of a sweep shares the subspace

    def __post_init__(self):
        if not (isinstance(self.said_dim, int) and self.said_dim >= 2):
            raise ValueError(f"said_dim must be an integer >= 2, got {self.said_dim!r}")
        if not (isinstance(self.seed, int) and self.seed >= 0):
            raise ValueError(f"seed must be a non-negative integer, got {self.seed!r}")


class IntrinsicSAID(nn.Module):
    """θ_d, the scalars λ, each tensor's θ₀ and projection, and the places its value is installed."""

    def __init__(self, model: nn.Module, cfg: SAIDConfig):
        super().__init__()
        targets = list(model.named_parameters())
        if cfg.said_dim <= len(targets):
            raise ValueError(f"said_dim {cfg.said_dim} must exceed the model's {len(targets)} weight tensors")
        device = targets[0][1].device
        d = cfg.said_dim - len(targets)
        self.theta = nn.Parameter(torch.zeros(d, device=device))
        self.scale = nn.Parameter(torch.ones(len(targets), device=device))
        generator = torch.Generator().manual_seed(cfg.seed)
        self.projections = nn.ModuleList(Fastfood(d, p.numel(), generator, device) for _, p in targets)
        self.owners = owners_of(model, [p for _, p in targets])
        for i, (_, p) in enumerate(targets):
            self.register_buffer(f"base{i}", p.detach())
        for holders in self.owners:
            for module, attr in holders:
                del module._parameters[attr]
        self._cache_key = None
        for p in (self.theta, self.scale):  # a backward frees the graph the cached weights hang on
            p.register_post_accumulate_grad_hook(lambda _: setattr(self, "_cache_key", None))
        self.install()

    def install(self) -> None:
        """Recompute θ₀ + λ P(θ_d) for every tensor if stale, and set it where the model reads it."""
        key = (self.theta._version, self.scale._version, self.theta.data_ptr(), torch.is_grad_enabled())
        if key == self._cache_key:
            return
        for i, (proj, holders) in enumerate(zip(self.projections, self.owners)):
            base = getattr(self, f"base{i}")
            value = base + (self.scale[i] * proj(self.theta)).view_as(base).to(base.dtype)
            for module, attr in holders:
                setattr(module, attr, value)
        self._cache_key = key

    def before_forward(self, module, args):
        self.install()


def owners_of(model: nn.Module, params: list[nn.Parameter]) -> list[list[tuple[nn.Module, str]]]:
    """For each parameter, every (module, attribute) holding it: tied weights have several."""
    where = {id(p): [] for p in params}
    for module in model.modules():
        for attr, p in module._parameters.items():
            if p is not None and id(p) in where:
                where[id(p)].append((module, attr))
    return [where[id(p)] for p in params]


def apply(model: nn.Module, cfg: SAIDConfig) -> list[str]:
    said = IntrinsicSAID(model, cfg)
    for module in {id(m): m for holders in said.owners for m, _ in holders}.values():
        module.register_forward_pre_hook(said.before_forward)
    model.intrinsic_said = said
    return ["intrinsic_said.theta", "intrinsic_said.scale"]


register("intrinsic-said", SAIDConfig, apply)
