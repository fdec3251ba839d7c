"""What a memory budget is for: one method on one model at given sequence lengths, and its step.

A VL-T5 workload (``T5+ENCODER``) also has ``images`` per row: each adds the encoder's cells as
visual tokens in front of the source (models/vlt5.py), so the encoder's sequence is
``images × cells + source_len`` long, and the batch carries random features of that shape.

The model is built from its configuration with random weights (memory does not depend on the
values), so neither the estimate nor a GPU probe downloads anything. The step is the engine's
(engine/step.py), the one every trial runs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch

from peftbench.budgets.parse import DTYPE_NAMES
from peftbench.engine.batches import random_batch
from peftbench.engine.build import build_model
from peftbench.engine.step import Engine, Optimization, deepspeed_config_of
from peftbench.methods import get_method
from peftbench.models.encoders import spec as encoder_spec
from peftbench.models.spec import ModelSpec


@dataclass(frozen=True)
class Workload:
    """A method with its options on a model, every batch row at full source and target length."""

    model: str
    method: str
    options: dict = field(default_factory=dict)
    source_len: int = 128
    target_len: int = 16
    dtype: str = "float32"  # parameters, gradients and optimizer state alike
    tasks: tuple[str, ...] | None = None  # a mixture's members: the method builds its modules for each
    images: int = 0  # images per row (VL-T5: NLVR2's 2); their cells are visual tokens before the source

    def __post_init__(self):
        for name in ("source_len", "target_len"):
            value = getattr(self, name)
            if not (isinstance(value, int) and value >= 1):
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not (isinstance(self.images, int) and self.images >= 0):
            raise ValueError(f"images must be a non-negative integer, got {self.images!r}")
        if self.images and not ModelSpec.parse(self.model).is_vl:
            raise ValueError(f"{self.model} reads no images (a VL-T5 is named T5+ENCODER), got images={self.images}")
        if self.dtype not in DTYPE_NAMES:
            raise ValueError(f"dtype must be one of {', '.join(DTYPE_NAMES)}, got {self.dtype!r}")
        get_method(self.method).make_config(self.options)  # unknown method or option: fail now

    def describe(self) -> dict:
        """The workload as plain data (without ``tasks`` and ``images`` when unused: cache keys made before
        them hold)."""
        out = asdict(self)
        for key, absent in (("tasks", None), ("images", 0)):
            if out[key] == absent:
                del out[key]
        return out

    def build(self, device: str | torch.device = "cpu") -> torch.nn.Module:
        """The workload's model, its method applied and only its parameters trainable, in train mode."""
        return build_model(self.model, self.method, self.options, device=device, dtype=self.dtype, tasks=self.tasks)

    def engine(self, model: torch.nn.Module, *, accumulation: int = 1, plain: bool = False,
               foreach: bool | None = None) -> Engine:
        """The trial's engine for ``model``; ``plain``: AdamW in plain torch even for a DeepSpeed method."""
        deepspeed = None if plain else deepspeed_config_of(self.method, self.options)
        return Engine(model, Optimization(accumulation=accumulation), deepspeed=deepspeed, foreach=foreach)

    def batch(self, model: torch.nn.Module, batch_size: int, *, device="cpu") -> dict[str, torch.Tensor]:
        """``batch_size`` rows at full length: the most memory a batch of this size can need; a VL-T5's
        with ``images`` of random features each (what the values are does not change the memory)."""
        batch = random_batch(model.config.vocab_size, batch_size=batch_size, source_len=self.source_len,
                             target_len=self.target_len, device=device)
        if self.images:
            visual = encoder_spec(model.config.visual["encoder"])
            batch["visual_features"] = torch.randn(batch_size, self.images, visual.cells, visual.feat_dim,
                                                   device=device)
        return batch
