"""Bottleneck adapters (Houlsby et al., 2019) as placed in T5 by the Compacter paper, and variants.

    y = x + U(GeLU(D(x)))        D: d_model -> d_model / reduction_factor,  U: back to d_model

adapter           one after the self-attention and one after the feed-forward sublayer of every encoder
                  and decoder block, on the sublayer's output F before its dropout and the residual
                  (T5: h + dropout(F + U(GeLU(D(F)))); BART: norm(h + dropout(F + U(GeLU(D(F)))))); with
                  ``cross_attention`` one after each decoder cross-attention too (VL-Adapter's default,
                  the Compacter paper's code has none there)
pfeiffer-adapter  only the one after self-attention (Pfeiffer et al., 2021)
adapterdrop       none in the first ``dropped_layers`` blocks of each stack (Rücklé et al., 2021)
adapter-lowrank   D and U rank-one products: W = u vᵀ

Where the sublayers are is methods/sublayers.py's, per architecture (T5, BART). All the backbone's layer
norms train with the adapters; the output layer stays frozen. Hypercomplex adapters
(methods/compacter.py) reuse this placement with other linear layers.

In a mixture (``sharing``): ``per-task`` gives each task its own D and U at every place, ``shared-up``
/ ``shared-down`` one U (or D) for all tasks beside per-task D (or U): VL-Adapter's "multiple" and
"half-shared" adapters. T5's layer norms stay shared by all tasks in every mode (Hyperformer's Adapter†).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

import torch
from torch import nn
from transformers.activations import NewGELUActivation

from peftbench.methods.multitask import SHARING, TaskSwitch, check_sharing, per_task, sharing_field, task_switch
from peftbench.methods.registry import register
from peftbench.methods.sublayers import AfterSublayer, layout, placements

__all__ = ["AfterSublayer", "adapter_and_layer_norm_names", "apply", "insert_after_sublayers"]

MakeLinear = Callable[[int, int], nn.Module]  # (in_features, out_features) -> layer


def normal_linear(in_features: int, out_features: int) -> nn.Linear:
    """The original code's adapter init: weights N(0, 0.01), zero bias."""
    linear = nn.Linear(in_features, out_features)
    nn.init.normal_(linear.weight, std=0.01)
    nn.init.zeros_(linear.bias)
    return linear


def glorot_uniform_(tensor: torch.Tensor) -> torch.Tensor:
    """Xavier-uniform with gain √2, the original code's ``glorot-uniform``."""
    return nn.init.xavier_uniform_(tensor, gain=math.sqrt(2))


@dataclass(frozen=True)
class AdapterConfig:
    """Houlsby adapters after the self-attention and feed-forward sublayers; layer norms train."""

    reduction_factor: int = field(default=32, metadata={"help": "bottleneck = d_model / reduction_factor"})
    sharing: str = sharing_field(SHARING, note="T5's layer norms are shared in every mode")
    cross_attention: bool = field(default=False, metadata={
        "help": "adapters after the decoder's cross-attention too (VL-Adapter's add_adapter_cross_attn)"})

    sublayers: ClassVar[tuple[str, ...]] = ("self_attention", "feed_forward")

    def __post_init__(self):
        check_sharing(self)
        if not isinstance(self.cross_attention, bool):
            raise ValueError(f"cross_attention must be true or false, got {self.cross_attention!r}")
        for name, least in self._int_bounds().items():
            value = getattr(self, name)
            if not (isinstance(value, int) and not isinstance(value, bool) and value >= least):
                raise ValueError(f"{name} must be an integer >= {least}, got {value!r}")

    def _int_bounds(self) -> dict[str, int]:
        """Integer options and their least allowed value; subclasses add theirs."""
        return {"reduction_factor": 1}

    @property
    def skip_blocks(self) -> int:
        return 0

    @property
    def kinds(self) -> tuple[str, ...]:
        """The sublayers that get an adapter: the variant's own, and cross-attention when asked."""
        return self.sublayers + (("cross_attention",) if self.cross_attention else ())

    @property
    def per_task_projections(self) -> frozenset[str]:
        """Which of ``down`` and ``up`` each task has its own of, in a mixture."""
        return frozenset({"per-task": ("down", "up"), "shared-up": ("down",),
                          "shared-down": ("up",)}.get(self.sharing, ()))

    def linear_factory(self, d_model: int, bottleneck: int) -> MakeLinear:
        """How this variant builds D and U; called once per model (shared state lives here)."""
        return normal_linear


@dataclass(frozen=True)
class PfeifferAdapterConfig(AdapterConfig):
    """Pfeiffer adapters: one after the self-attention sublayer of each block."""

    sublayers: ClassVar[tuple[str, ...]] = ("self_attention",)


@dataclass(frozen=True)
class AdapterDropConfig(AdapterConfig):
    """AdapterDrop: Houlsby adapters, none in the first blocks of each stack."""

    dropped_layers: int = field(default=5, metadata={"help": "blocks of each stack without adapters"})

    def _int_bounds(self):
        return {**super()._int_bounds(), "dropped_layers": 0}

    @property
    def skip_blocks(self) -> int:
        return self.dropped_layers


class LowRankLinear(nn.Module):
    """``y = x u vᵀ + b``: a rank-``rank`` weight kept as its two factors (glorot-uniform, zero bias)."""

    def __init__(self, in_features: int, out_features: int, rank: int = 1):
        super().__init__()
        self.left = nn.Parameter(glorot_uniform_(torch.empty(in_features, rank)))
        self.right = nn.Parameter(glorot_uniform_(torch.empty(rank, out_features)))
        self.bias = nn.Parameter(torch.zeros(out_features))

    def forward(self, x):
        return (x @ self.left) @ self.right + self.bias


@dataclass(frozen=True)
class LowRankAdapterConfig(AdapterConfig):
    """Low-rank adapters: Houlsby adapters whose projections are rank-r products."""

    rank: int = field(default=1, metadata={"help": "rank of each projection's weight"})

    def _int_bounds(self):
        return {**super()._int_bounds(), "rank": 1}

    def linear_factory(self, d_model, bottleneck):
        return lambda i, o: LowRankLinear(i, o, self.rank)


class Adapter(nn.Module):
    """The bottleneck: down-projection, gelu_new, up-projection, plus the input (residual).

    The projections named in ``per_task`` are one per task of ``switch`` (``PerTask``), the others one.
    """

    def __init__(self, d_model: int, bottleneck: int, make_linear: MakeLinear = normal_linear, *,
                 switch: TaskSwitch | None = None, per_task_projections: frozenset[str] = frozenset()):
        super().__init__()
        down_switch = switch if "down" in per_task_projections else None
        up_switch = switch if "up" in per_task_projections else None
        self.down = per_task(lambda: make_linear(d_model, bottleneck), down_switch)
        self.up = per_task(lambda: make_linear(bottleneck, d_model), up_switch)
        self.act = NewGELUActivation()

    def forward(self, x):
        return x + self.up(self.act(self.down(x)))


def insert_after_sublayers(model: nn.Module, make_adapter, *, kinds=("self_attention", "feed_forward"),
                           skip_blocks: int = 0) -> None:
    """Insert ``make_adapter()`` after each sublayer of ``kinds`` (methods/sublayers.py finds them)."""
    arch = layout(model)
    for *_, sublayer in placements(model, kinds, skip_blocks):
        arch.insert_after(sublayer, make_adapter())


def adapter_and_layer_norm_names(model: nn.Module) -> list[str]:
    """Trainable set of the adapter family: every adapter parameter and every backbone layer norm."""
    arch = layout(model)
    return [name for name, _ in model.named_parameters() if ".adapter." in name or arch.is_layer_norm(name)]


def apply(model: nn.Module, cfg: AdapterConfig) -> list[str]:
    """Insert the adapters ``cfg`` describes; shared by every adapter-family method."""
    d_model, num_layers = model.config.d_model, min(layout(model).depth(model).values())
    if cfg.skip_blocks >= num_layers:
        raise ValueError(f"dropping adapters from {cfg.skip_blocks} blocks leaves none in a {num_layers}-block stack")
    bottleneck = max(1, d_model // cfg.reduction_factor)
    make_linear = cfg.linear_factory(d_model, bottleneck)
    switch, split = task_switch(model), cfg.per_task_projections
    insert_after_sublayers(model,
                           lambda: Adapter(d_model, bottleneck, make_linear, switch=switch, per_task_projections=split),
                           kinds=cfg.kinds, skip_blocks=cfg.skip_blocks)
    return adapter_and_layer_norm_names(model)


register("adapter", AdapterConfig, apply, task_prefix=False)
register("pfeiffer-adapter", PfeifferAdapterConfig, apply, task_prefix=False)
register("adapterdrop", AdapterDropConfig, apply, task_prefix=False)
register("adapter-lowrank", LowRankAdapterConfig, apply, task_prefix=False)
