"""Where a backbone's sublayers are, declared once per architecture for the methods that adapt them.

    T5    block.layer = [self-attention, (cross-attention,) feed-forward], each ``h + dropout(F(norm(h)))``
    BART  layer.self_attn, layer.encoder_attn (decoder), layer.fc2, each ``norm(h + dropout(F))``

Both put a sublayer's adapter on F, the sublayer's output before its dropout and the residual (the
Compacter/Hyperformer code for T5, VL-Adapter's ``my_transformers/modeling_bart.py:485-505, 639-703``
for BART). T5's dropout is a module, so the adapter wraps it (``AfterSublayer``); BART's is a function
call, so the adapter becomes a child of the module that computes F and a forward hook applies it. Either
way the adapter's parameters are named ``….adapter.…``.

Methods ask ``layout(model)`` and never name a T5 or BART module themselves.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from torch import nn

SUBLAYERS = ("self_attention", "cross_attention", "feed_forward")


class AfterSublayer(nn.Module):
    """Replaces a T5 sublayer's output dropout so the adapter sees that output before the dropout.

    T5 computes ``h + dropout(F)`` with ``F = sublayer(norm(h))``; wrapping ``dropout`` gives
    ``h + dropout(adapter(F))`` = ``h + dropout(F + U(GeLU(D(F))))``, the original code's placement
    (its T5 layers call the adapter on F, then add the dropout of the sum to the residual). The
    adapter therefore trains on undropped sublayer outputs, and its own output is dropped too.
    """

    def __init__(self, dropout: nn.Module, adapter: nn.Module):
        super().__init__()
        self.dropout = dropout
        self.adapter = adapter

    def forward(self, x):
        return self.dropout(self.adapter(x))


def adapt_output(module: nn.Module, args, output):
    """Forward hook: ``module.adapter`` applied to the module's output (its first element, for attention)."""
    if isinstance(output, tuple):
        return (module.adapter(output[0]), *output[1:])
    return module.adapter(output)


@dataclass(frozen=True)
class Layout:
    """One architecture: its stacks, their blocks, each block's sublayers and its own layer norms."""

    name: str
    encoder_path: str
    decoder_path: str
    blocks_attr: str
    layer_norm_marks: tuple[str, ...]  # a parameter whose name holds one of these is a backbone layer norm

    def stacks(self, model: nn.Module) -> dict[str, nn.Module]:
        return {"encoder": model.get_submodule(self.encoder_path), "decoder": model.get_submodule(self.decoder_path)}

    def blocks(self, stack: nn.Module) -> list[nn.Module]:
        return list(getattr(stack, self.blocks_attr))

    def depth(self, model: nn.Module) -> dict[str, int]:
        return {name: len(self.blocks(stack)) for name, stack in self.stacks(model).items()}

    def sublayer(self, block: nn.Module, kind: str) -> nn.Module | None:
        """The module computing F of ``kind`` in ``block`` (None: the block has no such sublayer)."""
        if kind not in SUBLAYERS:
            raise ValueError(f"unknown sublayer {kind!r} (known: {', '.join(SUBLAYERS)})")
        if self.name == "t5":
            layers = list(block.layer)
            if kind == "cross_attention":
                return layers[1] if len(layers) == 3 else None
            return layers[0] if kind == "self_attention" else layers[-1]
        attr = {"self_attention": "self_attn", "cross_attention": "encoder_attn", "feed_forward": "fc2"}[kind]
        return getattr(block, attr, None)

    def insert_after(self, sublayer: nn.Module, adapter: nn.Module) -> None:
        """Put ``adapter`` on ``sublayer``'s output F, before its dropout and residual."""
        if self.name == "t5":
            sublayer.dropout = AfterSublayer(sublayer.dropout, adapter)
            return
        sublayer.adapter = adapter
        sublayer.register_forward_hook(adapt_output)

    def is_layer_norm(self, name: str) -> bool:
        return any(mark in name for mark in self.layer_norm_marks)


T5 = Layout("t5", "encoder", "decoder", "block", ("layer_norm",))
# BART's embedding layer norms count too: VL-Adapter's --unfreeze_layer_norms trains every nn.LayerNorm
BART = Layout("bart", "model.encoder", "model.decoder", "layers", ("layer_norm", "layernorm_embedding"))
LAYOUTS = {layout.name: layout for layout in (T5, BART)}


def layout(model: nn.Module) -> Layout:
    """The layout of ``model``'s architecture (its config's ``model_type``)."""
    model_type = getattr(model.config, "model_type", None)
    if model_type not in LAYOUTS:
        raise ValueError(f"no sublayer layout for model type {model_type!r} (known: {', '.join(LAYOUTS)})")
    return LAYOUTS[model_type]


def placements(model: nn.Module, kinds, skip_blocks: int = 0) -> Iterator[tuple[str, int, str, nn.Module]]:
    """(stack, block index, kind, sublayer) for each sublayer of ``kinds`` that exists, blocks from
    ``skip_blocks`` on."""
    arch = layout(model)
    for stack_name, stack in arch.stacks(model).items():
        for index, block in enumerate(arch.blocks(stack)):
            if index < skip_blocks:
                continue
            for kind in SUBLAYERS:
                sublayer = arch.sublayer(block, kind) if kind in kinds else None
                if sublayer is not None:
                    yield stack_name, index, kind, sublayer
