"""Where a process's tensors go, and the arithmetic its float32 matmuls use: set once per trial, recorded.

CUDA calls that take a device (``set_per_process_memory_fraction`` among them) refuse ``cuda`` without
an index, so the accelerator is always named with its index. Tests simulate CUDA on the CPU by
replacing ``placement`` (tests/testkit/cudasim.py); code asks ``devices.placement()``, never ``"cuda"``.
"""

from __future__ import annotations

import torch

from peftbench.engine import PRECISIONS


def accelerator() -> torch.device | None:
    """This process's CUDA device with its index (Ray and torchrun set which one), or None."""
    if not torch.cuda.is_available():
        return None
    return torch.device("cuda", torch.cuda.current_device())


def placement() -> torch.device:
    """Where a trial's model and batches go: the accelerator, else the CPU."""
    return accelerator() or torch.device("cpu")


def set_precision(precision: str, *, tf32: bool) -> dict:
    """Fix the arithmetic of this process's training; return what it is, for the record.

    ``fp32``: float32 throughout, as the authors trained. ``bf16``: the forward pass autocast to
    bfloat16 (the engine's), weights, gradients and optimizer state staying float32, so AdamW's
    small updates are not lost to bfloat16's 8-bit mantissa. ``tf32``: float32 matmuls may round their
    inputs to TF32 on Ampere and later (faster, 10-bit mantissa). Set through torch's newer
    ``fp32_precision`` switches only: torch raises when the legacy and new ones are mixed.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "bf16" and accelerator() is not None and not torch.cuda.is_bf16_supported():
        raise ValueError(f"precision bf16: {torch.cuda.get_device_name()} has no bfloat16 arithmetic")
    mode = "tf32" if tf32 else "ieee"
    torch.backends.cuda.matmul.fp32_precision = mode
    torch.backends.cudnn.conv.fp32_precision = mode
    return precision_in_use(precision)


def precision_in_use(precision: str) -> dict:
    """The precision asked for and torch's float32 matmul and convolution settings as they are now."""
    return {"precision": precision, "matmul_fp32": torch.backends.cuda.matmul.fp32_precision,
            "conv_fp32": torch.backends.cudnn.conv.fp32_precision}
