"""What a memory budget is for: one method on one model at given sequence lengths, and its step.

The model is built from its configuration with random weights (memory does not depend on the
values), so neither the estimate nor a GPU probe downloads anything.
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass, field

import torch
from transformers import T5ForConditionalGeneration

from harness.models import model_config
from methods import apply_method, get_method

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass(frozen=True)
class Workload:
    """A method with its options on a model, every batch row at full source and target length."""

    model: str
    method: str
    options: dict = field(default_factory=dict)
    source_len: int = 128
    target_len: int = 16
    dtype: str = "float32"  # parameters, gradients and optimizer state alike

    def __post_init__(self):
        for name in ("source_len", "target_len"):
            value = getattr(self, name)
            if not (isinstance(value, int) and value >= 1):
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}")
        get_method(self.method).make_config(self.options)  # unknown method or option: fail now

    @property
    def engine(self) -> str:
        return get_method(self.method).engine

    def describe(self) -> dict:
        return asdict(self)


def build_model(workload: Workload, device: str | torch.device = "cpu") -> T5ForConditionalGeneration:
    """The workload's model, its method applied and only its parameters trainable, in train mode."""
    with torch.device(device), default_dtype(DTYPES[workload.dtype]):
        model = T5ForConditionalGeneration(model_config(workload.model))
    apply_method(model, workload.method, workload.options)
    return model.train()


@contextlib.contextmanager
def default_dtype(dtype: torch.dtype):
    """Build in ``dtype`` directly: converting afterwards (``model.to``) fails on fake tensors."""
    before = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(before)


def make_optimizer(model: torch.nn.Module, *, foreach: bool | None = None) -> torch.optim.AdamW:
    """The training loop's optimizer (harness/train.py): AdamW on the trainable parameters."""
    params = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.AdamW(params, lr=1e-4, betas=(0.9, 0.999), eps=1e-8, foreach=foreach)


def worst_case_batch(workload: Workload, batch: int, *, vocab_size: int, device="cpu") -> dict[str, torch.Tensor]:
    """``batch`` rows at full length: the most memory a batch of this size can need.

    One position is padding, as in the padded batches of a trial: transformers builds no attention
    mask for an all-ones ``attention_mask`` (a shortcut fake tensors cannot take, having no values).
    """
    input_ids = torch.randint(2, vocab_size, (batch, workload.source_len), device=device)
    labels = torch.randint(2, vocab_size, (batch, workload.target_len), device=device)
    attention_mask = torch.ones_like(input_ids)
    attention_mask[0, -1] = 0
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


def forward_backward(model, workload: Workload, batch: int, *, device="cpu") -> None:
    """One micro-batch's forward and backward; gradients accumulate into ``.grad``."""
    inputs = worst_case_batch(workload, batch, vocab_size=model.config.vocab_size, device=device)
    model(**inputs).loss.backward()
