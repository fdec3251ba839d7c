"""Trainable state: copy it, put it back, and checkpoint a training run so a killed one continues.

A checkpoint holds tensors and plain data only and is read with ``torch.load(weights_only=True)``:
a file planted in the output folder cannot run code when a run resumes. DeepSpeed reads its own
checkpoint with ``weights_only=False``; here every load inside it is forced to weights only, with
the few plain-data classes of DeepSpeed's that its optimizer state holds allowed by name.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import torch

from peftbench.engine.step import Engine
from peftbench.files import UnsafeFileError, regular_file, write_bytes, writing

LOOP_STATE = "loop.pt"


def trainable_state(model, *, device: str | torch.device | None = None) -> dict[str, torch.Tensor]:
    """A copy of the trainable parameters (on ``device``, default where they are)."""
    return {n: p.detach().to(device, copy=True) for n, p in model.named_parameters() if p.requires_grad}


@torch.no_grad()
def load_trainable_state(model, state: dict[str, torch.Tensor]) -> None:
    for name, p in model.named_parameters():
        if name in state:
            p.copy_(state[name])


def pending_gradients(model) -> dict[str, torch.Tensor]:
    """Gradients accumulated towards an optimizer step not yet taken (an epoch whose micro-batches
    are not a multiple of the accumulation ends mid-step); empty at a step's boundary."""
    return {n: p.grad.detach().to("cpu", copy=True) for n, p in model.named_parameters()
            if p.requires_grad and p.grad is not None}


def save_checkpoint(directory: Path, engine: Engine, loop: dict, *, rank: int) -> None:
    """Everything needed to continue after this epoch; the loop state is written last, atomically,
    so a checkpoint that has it is complete."""
    directory.mkdir(parents=True, exist_ok=True)
    if engine.deepspeed is not None:  # DeepSpeed saves its own (sharded) state, following any link it meets
        if links := [p for p in (directory, *directory.rglob("*")) if p.is_symlink()]:
            raise UnsafeFileError(f"{links[0]}: is a symlink; refusing to let DeepSpeed write through it")
        engine.deepspeed.save_checkpoint(str(directory), tag="last")
        extra = {}
    else:
        extra = {"trainable": trainable_state(engine.module), "engine": engine.state_dict(),
                 "gradients": pending_gradients(engine.module)}
    if rank == 0:  # through peftbench/files.py: a link planted at the file or its temporary is never followed
        with writing(directory / LOOP_STATE) as f:
            torch.save({**loop, **extra, "micro_steps": engine.micro_steps, "torch_rng": torch.get_rng_state()}, f)


def has_checkpoint(directory: Path | None) -> bool:
    return directory is not None and (directory / LOOP_STATE).exists()


def load_checkpoint(directory: Path, engine: Engine) -> dict:
    """Restore ``engine`` from ``directory``; return the loop state saved with it."""
    saved = torch.load(regular_file(directory / LOOP_STATE, kind="checkpoint"), weights_only=True, map_location="cpu")
    if engine.deepspeed is not None:
        with weights_only_loads():
            path, _ = engine.deepspeed.load_checkpoint(str(directory), tag="last")
        if path is None:
            raise FileNotFoundError(f"{directory}: no DeepSpeed checkpoint 'last'")
    else:
        load_trainable_state(engine.module, saved.pop("trainable"))
        engine.load_state_dict(saved.pop("engine"))
        params = dict(engine.module.named_parameters())
        for name, grad in saved.pop("gradients", {}).items():  # absent in checkpoints written before
            params[name].grad = grad.to(params[name].device)
    engine.micro_steps = saved.pop("micro_steps")
    torch.set_rng_state(saved.pop("torch_rng"))
    return saved


@contextlib.contextmanager
def weights_only_loads():
    """Every ``torch.load`` inside reads tensors and plain data only, whatever its caller asks
    (torch's ``TORCH_FORCE_WEIGHTS_ONLY_LOAD``, read at each load); DeepSpeed's ZeRO optimizer
    state also holds a loss scaler, a stage enum and fragment addresses, allowed by name."""
    from deepspeed.runtime.fp16.loss_scaler import DynamicLossScaler, LossScaler
    from deepspeed.runtime.zero.config import ZeroStageEnum
    from deepspeed.utils.tensor_fragment import fragment_address

    before = os.environ.get("TORCH_FORCE_WEIGHTS_ONLY_LOAD")
    os.environ["TORCH_FORCE_WEIGHTS_ONLY_LOAD"] = "1"
    try:
        with torch.serialization.safe_globals([DynamicLossScaler, LossScaler, ZeroStageEnum, fragment_address]):
            yield
    finally:
        if before is None:
            del os.environ["TORCH_FORCE_WEIGHTS_ONLY_LOAD"]
        else:
            os.environ["TORCH_FORCE_WEIGHTS_ONLY_LOAD"] = before


def save_tensors(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    """Tensors in safetensors (no pickle: safe to load from anywhere), written atomically."""
    from safetensors.torch import save

    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes(path, save({name: t.contiguous() for name, t in tensors.items()}))
