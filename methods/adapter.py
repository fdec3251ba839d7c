"""Bottleneck adapters (Houlsby et al., 2019) as placed in T5 by the Compacter paper.

    y = x + U(GeLU(D(x)))        D: d_model -> d_model / reduction_factor,  U: back to d_model

One adapter after the self-attention sublayer and one after the feed-forward sublayer of every
encoder and decoder block (never cross-attention), applied to the sublayer's output before the
residual sum. All T5 layer norms train with the adapters; the output layer stays frozen.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn
from transformers.activations import NewGELUActivation

from methods.registry import register


@dataclass(frozen=True)
class AdapterConfig:
    reduction_factor: int = 32

    def __post_init__(self):
        if not (isinstance(self.reduction_factor, int) and self.reduction_factor >= 1):
            raise ValueError(f"reduction_factor must be a positive integer, got {self.reduction_factor!r}")


class Adapter(nn.Module):
    """The bottleneck: down-projection, gelu_new, up-projection, plus the input (residual)."""

    def __init__(self, d_model: int, bottleneck: int):
        super().__init__()
        self.down = nn.Linear(d_model, bottleneck)
        self.up = nn.Linear(bottleneck, d_model)
        self.act = NewGELUActivation()
        for linear in (self.down, self.up):  # the original code's init: N(0, 0.01), zero bias
            nn.init.normal_(linear.weight, std=0.01)
            nn.init.zeros_(linear.bias)

    def forward(self, x):
        return x + self.up(self.act(self.down(x)))


class AfterSublayer(nn.Module):
    """Replaces a T5 sublayer's output dropout so the adapter sees that output before the residual.

    T5 computes ``h + dropout(sublayer(norm(h)))``; wrapping ``dropout`` gives
    ``h + adapter(dropout(sublayer(norm(h))))``, the placement of the original code.
    """

    def __init__(self, dropout: nn.Module, adapter: nn.Module):
        super().__init__()
        self.dropout = dropout
        self.adapter = adapter

    def forward(self, x):
        return self.adapter(self.dropout(x))


def t5_sublayers(model: nn.Module, *, kinds=("self_attention", "feed_forward"), skip_blocks: int = 0):
    """Yield the T5 sublayers (``T5LayerSelfAttention`` / ``T5LayerFF``) that take adapters."""
    for stack in (model.encoder, model.decoder):
        for block in list(stack.block)[skip_blocks:]:
            first, last = block.layer[0], block.layer[-1]
            if "self_attention" in kinds:
                yield first
            if "feed_forward" in kinds:
                yield last


def insert_after_sublayers(model: nn.Module, make_adapter, **where) -> None:
    """Insert ``make_adapter()`` after each selected sublayer (see ``t5_sublayers``)."""
    for sublayer in t5_sublayers(model, **where):
        sublayer.dropout = AfterSublayer(sublayer.dropout, make_adapter())


def adapter_and_layer_norm_names(model: nn.Module) -> list[str]:
    """Trainable set of the adapter family: every adapter parameter and every T5 layer norm."""
    return [
        name
        for name, _ in model.named_parameters()
        if ".adapter." in name or "layer_norm" in name
    ]


def apply(model: nn.Module, cfg: AdapterConfig) -> list[str]:
    d_model = model.config.d_model
    bottleneck = max(1, d_model // cfg.reduction_factor)
    insert_after_sublayers(model, lambda: Adapter(d_model, bottleneck))
    return adapter_and_layer_norm_names(model)


register("adapter", AdapterConfig, apply)
