"""Hyperformer and Hyperformer++ (Karimi Mahabadi, Ruder, Dehghani, Henderson, ACL 2021): adapters whose
weights a hypernetwork, shared by the tasks of a mixture, generates from a learned task embedding.

    y = x + LN_τ(U_τ GeLU(D_τ x))            after self-attention and feed-forward (methods/adapter.py placement)
    D_τ, U_τ, their biases, γ_τ, β_τ = W I_τ + c   a linear generator each: h_A (adapter), h_LN (norm)

hyperformer    generators per adapter (h_A^l, h_LN^l for each layer l and sublayer) read
               I_τ = h_I(z_τ), h_I = Linear → ReLU → Linear (64 → 128 → 64), shared by all layers
hyperformer++  one set of generators per stack for all its adapters, read
               I_τ^{l,p} = LN(h'_I([z_τ; l_l; p_p])), with layer-id embeddings l and position embeddings p
               (after the attention or the feed-forward sublayer); ``stacks=shared``: one set for both
               stacks, four positions (encoder/decoder × sublayer)

z_τ: a learned embedding per task (64), N(0, 1), as are l and p; every generator N(0, 0.01) with zero
bias. LN_τ normalises the adapter's output (mean and variance, as ``F.layer_norm``) with generated γ, β:
the authors' conditional layer norm. T5's own layer norms train too (shared); the output layer is frozen.
The adapters read the current task from the model's task switch (methods/multitask.py); a single-task
trial has one task embedding.

vl-hyperformer VL-Adapter's "Hyperformer" (``--use_hyperformer --unique_hyper_net``,
               ``VL-T5/src/adapters/adapter_hypernetwork.py:54-138``): per stack, I = LN(h_I([z_τ; l_layer]))
               with z_τ 512-d and h_I = Linear → ReLU → Linear (1024 → 128 → p), and a pair of generators
               (D and its bias, U and its bias) per sublayer kind (self-attention, feed-forward, and in the
               decoder cross-attention), shared by the stack's layers; the adapter is x + U GeLU(D x), with no
               layer norm (their ``add_layer_norm_before/after_adapter`` are off)

As in the authors' code, the inputs carry no task-name prefix: the
task embedding tells the model which task it is doing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn
from transformers.activations import NewGELUActivation

from peftbench.methods.adapter import adapter_and_layer_norm_names, normal_linear
from peftbench.methods.multitask import TaskSwitch, task_switch
from peftbench.methods.registry import register
from peftbench.methods.sublayers import layout, placements

SUBLAYERS = ("feed_forward", "self_attention")  # position ids, in the authors' order


@dataclass(frozen=True)
class HyperformerConfig:
    """Hyperformer: a hypernetwork per adapter generates its weights and layer norm from a task embedding."""

    reduction_factor: int = field(default=32, metadata={"help": "bottleneck = d_model / reduction_factor"})
    task_embedding_dim: int = field(default=64, metadata={"help": "size of each task's learned embedding z"})
    projected_task_embedding_dim: int = field(default=64, metadata={
        "help": "size of the projected embedding I that the generators read"})
    task_hidden_dim: int = field(default=128, metadata={"help": "hidden width of the task projector MLP"})

    one_hypernet: ClassVar[bool] = False

    def __post_init__(self):
        for name in ("reduction_factor", "task_embedding_dim", "projected_task_embedding_dim", "task_hidden_dim"):
            value = getattr(self, name)
            if not (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
                raise ValueError(f"{name} must be a positive integer, got {value!r}")


@dataclass(frozen=True)
class HyperformerPlusPlusConfig(HyperformerConfig):
    """Hyperformer++: one hypernetwork per stack generates every adapter from task, layer and position embeddings."""

    stacks: str = field(default="separate", metadata={
        "help": "separate: encoder and decoder each have their hypernetwork (the authors' code); shared: one for "
                "both, its position embeddings telling the four adapter positions apart"})

    one_hypernet: ClassVar[bool] = True

    def __post_init__(self):
        super().__post_init__()
        if self.stacks not in ("separate", "shared"):
            raise ValueError(f"stacks must be separate or shared, got {self.stacks!r}")


class AdapterWeights(NamedTuple):
    """One adapter's generated tensors (``F.linear`` layout: out × in)."""

    down: torch.Tensor
    down_bias: torch.Tensor
    up: torch.Tensor
    up_bias: torch.Tensor
    gamma: torch.Tensor
    beta: torch.Tensor


class Generators(nn.Module):
    """h_A and h_LN: linear maps from an embedding to an adapter's D, U, their biases, and γ, β."""

    def __init__(self, embedding_dim: int, d_model: int, bottleneck: int):
        super().__init__()
        self.d_model, self.bottleneck = d_model, bottleneck
        sizes = {"down": bottleneck * d_model, "down_bias": bottleneck, "up": d_model * bottleneck,
                 "up_bias": d_model, "gamma": d_model, "beta": d_model}
        self.make = nn.ModuleDict({name: normal_linear(embedding_dim, size) for name, size in sizes.items()})

    def forward(self, embedding: torch.Tensor) -> AdapterWeights:
        out = {name: linear(embedding) for name, linear in self.make.items()}
        out["down"] = out["down"].view(self.bottleneck, self.d_model)
        out["up"] = out["up"].view(self.d_model, self.bottleneck)
        return AdapterWeights(**out)


def task_projector(in_dim: int, hidden: int, out_dim: int) -> nn.Sequential:
    """h_I: Linear → ReLU → Linear, N(0, 0.01) weights and zero biases."""
    return nn.Sequential(normal_linear(in_dim, hidden), nn.ReLU(), normal_linear(hidden, out_dim))


class TaskEmbeddings(nn.Module):
    """z_τ, one row per task of the mixture (one row in a single-task trial); ``forward`` gives the current task's."""

    def __init__(self, switch: TaskSwitch | None, dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(len(switch.tasks) if switch else 1, dim))
        object.__setattr__(self, "_switch", switch)  # not a submodule

    def forward(self) -> torch.Tensor:
        return self.weight[self._switch.index if self._switch else 0]


class HyperAdapter(nn.Module):
    """An adapter whose tensors ``weights()`` generates for the current task at every call."""

    def __init__(self, d_model: int):
        super().__init__()
        self.d_model = d_model
        self.act = NewGELUActivation()

    def weights(self) -> AdapterWeights:
        raise NotImplementedError

    def forward(self, x):
        w = self.weights()
        h = F.linear(self.act(F.linear(x, w.down, w.down_bias)), w.up, w.up_bias)
        return x + F.layer_norm(h, (self.d_model,), w.gamma, w.beta)


class LayerHyperAdapter(HyperAdapter):
    """Hyperformer: the adapter owns its generators and reads the shared projected task embedding."""

    def __init__(self, d_model: int, bottleneck: int, hyper: Hyperformer):
        super().__init__(d_model)
        self.generators = Generators(hyper.projected_dim, d_model, bottleneck)
        object.__setattr__(self, "_hyper", hyper)  # shared by every adapter: not a submodule of each

    def weights(self):
        return self.generators(self._hyper.projector(self._hyper.task_embeddings()))


class SharedHyperAdapter(HyperAdapter):
    """Hyperformer++: the adapter at (layer, position) asks its stack's hypernetwork for its tensors."""

    def __init__(self, d_model: int, hypernet: StackHyperNet, layer: int, position: int):
        super().__init__(d_model)
        self.layer, self.position = layer, position
        object.__setattr__(self, "_hypernet", hypernet)

    def weights(self):
        return self._hypernet(self.layer, self.position)


class StackHyperNet(nn.Module):
    """Hyperformer++'s hypernetwork: I = LN(h'_I([z_τ; l_layer; p_position])), then the generators."""

    def __init__(self, cfg: HyperformerConfig, task_embeddings: TaskEmbeddings, *, layers: int, positions: int,
                 d_model: int, bottleneck: int):
        super().__init__()
        t, p = cfg.task_embedding_dim, cfg.projected_task_embedding_dim
        self.layer_embeddings = nn.Embedding(layers, t)
        self.position_embeddings = nn.Embedding(positions, t)
        self.projector = task_projector(3 * t, cfg.task_hidden_dim, p)
        self.norm = nn.LayerNorm(p, eps=1e-6)
        self.generators = Generators(p, d_model, bottleneck)
        object.__setattr__(self, "_task_embeddings", task_embeddings)

    def forward(self, layer: int, position: int) -> AdapterWeights:
        z = self._task_embeddings()
        joint = torch.cat([z, self.layer_embeddings.weight[layer], self.position_embeddings.weight[position]])
        return self.generators(self.norm(self.projector(joint)))


class Hyperformer(nn.Module):
    """What the adapters share: the task embeddings, and the task projector (Hyperformer) or the
    stacks' hypernetworks (Hyperformer++). ``adapter(stack, layer, sublayer)`` makes each adapter."""

    def __init__(self, cfg: HyperformerConfig, switch: TaskSwitch | None, *, d_model: int, layers: dict[str, int]):
        super().__init__()
        self.d_model, self.bottleneck = d_model, max(1, d_model // cfg.reduction_factor)
        self.projected_dim = cfg.projected_task_embedding_dim
        self.task_embeddings = TaskEmbeddings(switch, cfg.task_embedding_dim)
        self.shared_stacks = cfg.one_hypernet and cfg.stacks == "shared"
        if not cfg.one_hypernet:
            self.projector = task_projector(cfg.task_embedding_dim, cfg.task_hidden_dim, self.projected_dim)
            return
        scopes = {"both": max(layers.values())} if self.shared_stacks else layers
        positions = len(SUBLAYERS) * (len(layers) if self.shared_stacks else 1)
        self.hypernets = nn.ModuleDict({
            scope: StackHyperNet(cfg, self.task_embeddings, layers=n, positions=positions, d_model=d_model,
                                 bottleneck=self.bottleneck)
            for scope, n in scopes.items()})

    def adapter(self, stack: str, layer: int, sublayer: str) -> HyperAdapter:
        if not hasattr(self, "hypernets"):
            return LayerHyperAdapter(self.d_model, self.bottleneck, self)
        position = SUBLAYERS.index(sublayer)
        if self.shared_stacks:
            return SharedHyperAdapter(self.d_model, self.hypernets["both"], layer,
                                      position + len(SUBLAYERS) * ("encoder", "decoder").index(stack))
        return SharedHyperAdapter(self.d_model, self.hypernets[stack], layer, position)


def apply(model: nn.Module, cfg: HyperformerConfig) -> list[str]:
    """Insert generated adapters after every self-attention and feed-forward sublayer."""
    arch = layout(model)
    model.hyperformer = Hyperformer(cfg, task_switch(model), d_model=model.config.d_model, layers=arch.depth(model))
    for stack, index, kind, sublayer in placements(model, SUBLAYERS):
        arch.insert_after(sublayer, model.hyperformer.adapter(stack, index, kind))
    return adapter_and_layer_norm_names(model) + ["hyperformer." + n for n, _ in model.hyperformer.named_parameters()]


@dataclass(frozen=True)
class VLHyperformerConfig:
    """VL-Adapter's Hyperformer (--unique_hyper_net): generators per stack and sublayer read the projected \
[task; layer] embedding."""

    reduction_factor: int = field(default=32, metadata={"help": "bottleneck = d_model / reduction_factor"})
    task_embedding_dim: int = field(default=512, metadata={"help": "size of each task's learned embedding z"})
    projected_task_embedding_dim: int = field(default=64, metadata={
        "help": "size of the projected embedding I that the generators read"})
    task_hidden_dim: int = field(default=128, metadata={"help": "hidden width of the task projector MLP"})
    cross_attention: bool = field(default=True, metadata={
        "help": "generated adapters after the decoder's cross-attention too (their add_adapter_cross_attn)"})

    def __post_init__(self):
        HyperformerConfig.__post_init__(self)
        if not isinstance(self.cross_attention, bool):
            raise ValueError(f"cross_attention must be true or false, got {self.cross_attention!r}")


class PlainHyperAdapter(HyperAdapter):
    """``x + U GeLU(D x)`` with D, U generated by its stack's controller: no layer norm on the output."""

    def __init__(self, d_model: int, controller: LayersController, layer: int, kind: str):
        super().__init__(d_model)
        self.layer, self.kind = layer, kind
        object.__setattr__(self, "_controller", controller)

    def forward(self, x):
        w = self._controller(self.layer, self.kind)
        return x + F.linear(self.act(F.linear(x, w.down, w.down_bias)), w.up, w.up_bias)


class LayersController(nn.Module):
    """One stack's AdapterLayersHyperNetController: I = LN(h_I([z_τ; l_layer])), then a generator per sublayer kind."""

    def __init__(self, cfg: VLHyperformerConfig, task_embeddings: TaskEmbeddings, *, layers: int,
                 kinds: tuple[str, ...], d_model: int, bottleneck: int):
        super().__init__()
        t, p = cfg.task_embedding_dim, cfg.projected_task_embedding_dim
        self.d_model, self.bottleneck = d_model, bottleneck
        self.layer_embeddings = nn.Embedding(layers, t)
        self.projector = task_projector(2 * t, cfg.task_hidden_dim, p)
        self.norm = nn.LayerNorm(p, eps=1e-6)  # their unique_hyper_net_layer_norm, on by default
        sizes = {"down": bottleneck * d_model, "down_bias": bottleneck, "up": d_model * bottleneck, "up_bias": d_model}
        self.generators = nn.ModuleDict({
            kind: nn.ModuleDict({name: normal_linear(p, size) for name, size in sizes.items()}) for kind in kinds})
        object.__setattr__(self, "_task_embeddings", task_embeddings)

    def forward(self, layer: int, kind: str) -> AdapterWeights:
        embedding = self.norm(self.projector(torch.cat([self._task_embeddings(), self.layer_embeddings.weight[layer]])))
        out = {name: linear(embedding) for name, linear in self.generators[kind].items()}
        return AdapterWeights(down=out["down"].view(self.bottleneck, self.d_model), down_bias=out["down_bias"],
                              up=out["up"].view(self.d_model, self.bottleneck), up_bias=out["up_bias"],
                              gamma=None, beta=None)


def apply_vl(model: nn.Module, cfg: VLHyperformerConfig) -> list[str]:
    """VL-Adapter's --unique_hyper_net: task embeddings shared by both stacks, a controller per stack."""
    arch = layout(model)
    d_model = model.config.d_model
    bottleneck = max(1, d_model // cfg.reduction_factor)
    kinds = {"encoder": ("self_attention", "feed_forward"),
             "decoder": ("self_attention",) + (("cross_attention",) if cfg.cross_attention else ()) + ("feed_forward",)}
    model.vl_hyperformer = nn.Module()
    model.vl_hyperformer.task_embeddings = TaskEmbeddings(task_switch(model), cfg.task_embedding_dim)
    model.vl_hyperformer.stacks = nn.ModuleDict({
        stack: LayersController(cfg, model.vl_hyperformer.task_embeddings, layers=n, kinds=kinds[stack],
                                d_model=d_model, bottleneck=bottleneck)
        for stack, n in arch.depth(model).items()})
    for stack, index, kind, sublayer in placements(model, SUBLAYERS + ("cross_attention",)):
        if kind in kinds[stack]:
            arch.insert_after(sublayer, PlainHyperAdapter(d_model, model.vl_hyperformer.stacks[stack], index, kind))
    return adapter_and_layer_norm_names(model) + ["vl_hyperformer." + n
                                                  for n, _ in model.vl_hyperformer.named_parameters()]


register("hyperformer", HyperformerConfig, apply, task_prefix=False)
register("hyperformer++", HyperformerPlusPlusConfig, apply, task_prefix=False)
register("vl-hyperformer", VLHyperformerConfig, apply_vl, task_prefix=False)
