"""BitFit (Ben Zaken et al., 2021) on T5, as in the Compacter paper's code.

    y = W x + b,   with b new and zero-initialised, and only the b's train

T5 has no biases, so BitFit adds them: to q, k, v, o of every attention (self and cross), to the
feed-forward's wi and wo, to every block layer norm (y = norm(x) + b; the two final layer norms get
none), and to the output layer. Everything else is frozen.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from methods.multitask import check_sharing, sharing_field, sharing_modes
from methods.registry import register


@dataclass(frozen=True)
class BitFitConfig:
    """BitFit: new zero biases on every linear layer and layer norm train, nothing else."""

    sharing: str = sharing_field(("shared",), note="the biases sit inside T5's own layers")

    def __post_init__(self):
        check_sharing(self.sharing, sharing_modes(type(self)))


class WithBias(nn.Module):
    """``module(x) + bias``: a bias for a module that has none (T5's layer norm)."""

    def __init__(self, module: nn.Module, size: int):
        super().__init__()
        self.module = module
        self.bias = nn.Parameter(torch.zeros(size, device=module.weight.device, dtype=module.weight.dtype))

    def forward(self, x):
        return self.module(x) + self.bias


def add_bias(linear: nn.Linear) -> None:
    weight = linear.weight
    linear.bias = nn.Parameter(torch.zeros(linear.out_features, device=weight.device, dtype=weight.dtype))


def apply(model: nn.Module, cfg: BitFitConfig) -> list[str]:
    for stack in (model.encoder, model.decoder):
        for module in list(stack.block.modules()):
            if isinstance(module, nn.Linear) and module.bias is None:
                add_bias(module)
            if isinstance(getattr(module, "layer_norm", None), nn.Module):
                module.layer_norm = WithBias(module.layer_norm, model.config.d_model)
    add_bias(model.lm_head)
    return [name for name, _ in model.named_parameters() if name.endswith(".bias")]


register("bitfit", BitFitConfig, apply, task_prefix=True)
