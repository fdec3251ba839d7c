"""Intrinsic-SAID (Aghajanyan et al., 2021): train the whole model inside a random d-dim subspace.

    θᵢ = θ₀ᵢ + λᵢ Pᵢ(θ_d)         for every weight tensor i of the model (m of them)
    Pᵢ x = (H Gᵢ Πᵢ H Bᵢ pad(x))[:Dᵢ] / (‖Gᵢ‖ √Dᵢ)          Fastfood (Le et al., 2013)

H: Walsh–Hadamard (±1 entries), G: Gaussian diagonal, Π: permutation, B: random ±1 diagonal, all of
size L = the power of two ≥ max(Dᵢ, d), fixed per tensor; the scaling gives columns of unit norm in
expectation. θ_d ∈ R^{d−m} starts at 0 and the m per-tensor scalars λ at 1, so ``said_dim`` = d counts
both, as in the original code. No D×d matrix exists: P costs two fast transforms, O(L log L).

Tensors whose L is the same (T5-small to T5-large: four lengths for 131 to 509 tensors) are
projected together, one row each, so a step runs a few batched transforms, not hundreds of small ones.
The projected weights replace the model's parameters as plain tensors, recomputed before use
(a pre-hook on each module that owns one) whenever θ_d or λ changed or a backward pass consumed them.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from peftbench.methods.multitask import check_sharing, sharing_field
from peftbench.methods.registry import register


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
    return torch.tensor(_sylvester(bits), device=like.device, dtype=like.dtype)


@functools.lru_cache(maxsize=16)
def _sylvester(bits: int) -> list[list[int]]:
    # plain numbers: a cached tensor would belong to the fake-tensor mode (or device) that made it
    n = 1 << bits
    return [[1 - 2 * ((i & j).bit_count() % 2) for j in range(n)] for i in range(n)]


class Fastfood(nn.Module):
    """k fixed random projections R^d -> R^Dⱼ sharing one length L; B, Π, G drawn once from ``generator``.

    ``forward(x)`` returns the k projections of x, as rows cut to their lengths Dⱼ.
    """

    def __init__(self, d: int, sizes: list[int], generator: torch.Generator | None, device: torch.device):
        super().__init__()
        self.d, self.sizes = d, tuple(sizes)
        k, L = len(sizes), padded_length(d, max(sizes))
        if k * L > 2**31:
            raise ValueError(f"{k} projections of length {L} overflow the int32 permutation index")
        if device.type == "meta":  # parameter accounting: shapes only
            sign, perm, gauss = (torch.empty(k, L, dtype=t, device=device)
                                 for t in (torch.int8, torch.int32, torch.bfloat16))
        else:
            sign = (torch.randint(0, 2, (k, L), generator=generator) * 2 - 1).to(torch.int8)
            perm = torch.stack([torch.randperm(L, generator=generator) for _ in range(k)]).to(torch.int32)
            perm += torch.arange(0, k * L, L, dtype=torch.int32)[:, None]  # Πⱼ indexes row j of the flat (k, L)
            gauss = torch.randn(k, L, generator=generator).to(torch.bfloat16)
        # compact dtypes: these vectors sum to about twice the model's size
        self.register_buffer("sign", sign.to(device), persistent=False)
        self.register_buffer("perm", perm.to(device), persistent=False)
        self.register_buffer("gauss", gauss.to(device), persistent=False)
        norm = self.gauss.float().norm(dim=1) * torch.tensor(self.sizes, dtype=torch.float32, device=device).sqrt()
        self.register_buffer("inv_norm", 1 / norm, persistent=False)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        v = F.pad(x, (0, self.sign.shape[1] - self.d)) * self.sign  # B pad(x), one row per projection
        v = fwht(v).flatten()[self.perm] * self.gauss  # G Π H
        v = fwht(v) * self.inv_norm[:, None]  # H, then the scaling
        return [row[:D] for row, D in zip(v, self.sizes, strict=False)]


def padded_length(d: int, D: int) -> int:
    """L: the power of two ≥ max(D, d)."""
    return 1 << max(D - 1, d - 1, 1).bit_length()


def share_lengths(d: int, sizes: list[int]) -> list[list[int]]:
    """Indices of ``sizes`` grouped by padded length, each group small enough for one int32 index."""
    groups: dict[int, list[list[int]]] = {}
    for i, D in enumerate(sizes):
        L = padded_length(d, D)
        chunks = groups.setdefault(L, [[]])
        if len(chunks[-1]) * L >= 2**31:
            chunks.append([])
        chunks[-1].append(i)
    return [chunk for chunks in groups.values() for chunk in chunks]


@dataclass(frozen=True)
class SAIDConfig:
    """Intrinsic SAID: the weight update lives in a random low-dimensional subspace (Fastfood)."""

    said_dim: int = field(default=20000, metadata={"help": "dimension of the trained subspace"})
    # fixed, so every trial of a sweep shares the subspace
    seed: int = field(default=0, metadata={"help": "seed of the random projections"})
    sharing: str = sharing_field(("shared",), note="one point of the subspace moves the whole model for every task")

    def __post_init__(self):
        check_sharing(self)
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
        self.groups = share_lengths(d, [p.numel() for _, p in targets])  # tensor indices per projection
        self.projections = nn.ModuleList(
            Fastfood(d, [targets[i][1].numel() for i in group], generator, device) for group in self.groups
        )
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
        key = (self.theta._version, self.scale._version, self.theta.device, self.theta.dtype, torch.is_grad_enabled())
        if key == self._cache_key:
            return
        for proj, group in zip(self.projections, self.groups, strict=False):
            for i, row in zip(group, proj(self.theta), strict=False):
                base = getattr(self, f"base{i}")
                value = base + (self.scale[i] * row).view_as(base).to(base.dtype)
                for module, attr in self.owners[i]:
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


register("intrinsic-said", SAIDConfig, apply, task_prefix=True)
