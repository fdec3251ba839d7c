"""Full fine-tuning: every parameter trains, through a DeepSpeed ZeRO engine."""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn

from peftbench.methods.multitask import check_sharing, sharing_field
from peftbench.methods.registry import register


@dataclass(frozen=True)
class FullConfig:
    """Full fine-tuning: every parameter trains (DeepSpeed ZeRO)."""

    zero_stage: int = field(default=2, metadata={"help": "DeepSpeed ZeRO stage: 0, 1 or 2"})
    workers: int = field(default=1, metadata={
        "help": "data-parallel workers (GPUs on a GPU cluster), run by Ray Train"})
    sharing: str = sharing_field(("shared",), note="a whole model per task would be separate trials, not a mixture")

    def __post_init__(self):
        check_sharing(self)
        if self.zero_stage not in (0, 1, 2):
            raise ValueError(f"zero_stage must be 0, 1 or 2, got {self.zero_stage!r}")
        if not (isinstance(self.workers, int) and self.workers >= 1):
            raise ValueError(f"workers must be a positive integer, got {self.workers!r}")

    def deepspeed_config(self) -> dict:
        """The ZeRO part of the DeepSpeed config; the engine (engine/step.py) adds batch sizes and clipping."""
        return {"zero_optimization": {"stage": self.zero_stage}, "zero_allow_untested_optimizer": True}


def apply(model: nn.Module, cfg: FullConfig) -> list[str]:
    return [name for name, _ in model.named_parameters()]


register("full", FullConfig, apply, task_prefix=True, engine="deepspeed")
