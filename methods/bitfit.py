"""BitFit (Ben Zaken et al., 2021) on T5, as in the Compacter paper's code.

    y = W x + b,   with b new and zero-initialised, and only the b's train

BART has its biases (every linear layer and layer norm): BitFit trains them, and adds the output
layer's; per task (``sharing=per-task``) it adds only that one. T5 has no biases, so BitFit adds
them: to q, k, v, o of every attention (self and cross), to the
feed-forward's wi and wo, to every block layer norm (y = norm(x) + b; the two final layer norms get
none), and to the output layer. Everything else is frozen.

In a mixture, ``sharing=per-task`` gives every one of those places a bias per task instead
(``….q.task_bias.tasks.<task>``), added to the layer's output for the current task: 280,960 a task on
T5-base, the cheapest per-task method after prompt tuning.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from peftbench.methods.multitask import TaskSwitch, check_sharing, sharing_field, task_switch
from peftbench.methods.registry import register
from peftbench.methods.sublayers import layout


@dataclass(frozen=True)
class BitFitConfig:
    """BitFit: new zero biases on every linear layer and layer norm train, nothing else."""

    sharing: str = sharing_field(("shared", "per-task"))

    def __post_init__(self):
        check_sharing(self)


class WithBias(nn.Module):
    """``module(x) + bias``: a bias for a module that has none (T5's layer norm)."""

    def __init__(self, module: nn.Module, size: int):
        super().__init__()
        self.module = module
        self.bias = nn.Parameter(torch.zeros(size, device=module.weight.device, dtype=module.weight.dtype))

    def forward(self, x):
        return self.module(x) + self.bias


class TaskBias(nn.Module):
    """A zero-initialised bias per task, added to its input for the current task (``tasks.<task>``)."""

    def __init__(self, size: int, switch: TaskSwitch, like: torch.Tensor):
        super().__init__()
        self.tasks = nn.ParameterDict({t: nn.Parameter(torch.zeros(size, device=like.device, dtype=like.dtype))
                                       for t in switch.tasks})
        object.__setattr__(self, "_switch", switch)  # not a submodule

    def forward(self, x):
        return x + self.tasks[self._switch.current]


def add_bias(linear: nn.Linear, switch: TaskSwitch | None = None) -> None:
    weight = linear.weight
    if switch is None:
        linear.bias = nn.Parameter(torch.zeros(linear.out_features, device=weight.device, dtype=weight.dtype))
        return
    linear.task_bias = TaskBias(linear.out_features, switch, weight)
    linear.register_forward_hook(lambda layer, args, out: layer.task_bias(out))


def add_norm_bias(norm: nn.Module, size: int, switch: TaskSwitch | None) -> nn.Module:
    return WithBias(norm, size) if switch is None else nn.Sequential(norm, TaskBias(size, switch, norm.weight))


def apply(model: nn.Module, cfg: BitFitConfig) -> list[str]:
    switch = task_switch(model) if cfg.sharing == "per-task" else None
    arch = layout(model)
    for module in [m for stack in arch.stacks(model).values() for b in arch.blocks(stack) for m in b.modules()]:
        if isinstance(module, nn.Linear) and module.bias is None:
            add_bias(module, switch)
        if isinstance(getattr(module, "layer_norm", None), nn.Module):
            module.layer_norm = add_norm_bias(module.layer_norm, model.config.d_model, switch)
    add_bias(model.lm_head, switch)
    return [name for name, _ in model.named_parameters() if name.endswith(".bias") or ".tasks." in name]


register("bitfit", BitFitConfig, apply, task_prefix=True)
