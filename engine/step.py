"""One training step, the only one: AdamW with a linear schedule, gradient accumulation and clipping,
in plain torch or through a DeepSpeed engine (the method's ``engine``).

A step is split in two phases, which the memory estimate tracks apart: ``forward_backward`` (its
peak grows with the batch) and ``boundary`` (the optimizer step, every ``accumulation`` micro-batches;
its peak does not). ``micro_step`` runs both.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

import torch
from transformers import get_linear_schedule_with_warmup

from peftbench.methods import get_method


@dataclass(frozen=True)
class Optimization:
    """How parameters move: AdamW (β 0.9/0.999, ε 1e-8 as the paper unless given), a linear schedule, clipping."""

    learning_rate: float = 1e-4
    weight_decay: float = 0.0
    adam_eps: float = 1e-8
    label_smoothing: float = 0.0  # of the targets' token loss (Hyperformer's 0.1); 0: the model's own loss
    smoothed_loss: str = "mean"  # the smoothed loss over a micro-batch's target tokens: mean, or sum (Hyperformer's)
    max_grad_norm: float | None = None  # None: no clipping
    warmup_steps: int = 0
    total_steps: int | None = None  # None: a constant learning rate (probes and benchmarks)
    accumulation: int = 1  # micro-batches per optimizer step


def make_optimizer(model: torch.nn.Module, opt: Optimization, *, foreach: bool | None = None) -> torch.optim.AdamW:
    """AdamW on the trainable parameters."""
    params = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.AdamW(params, lr=opt.learning_rate, betas=(0.9, 0.999), eps=opt.adam_eps,
                             weight_decay=opt.weight_decay, foreach=foreach)


def deepspeed_config_of(method: str, options: dict | None) -> dict | None:
    """The DeepSpeed settings of a method that trains through DeepSpeed, else None."""
    method_def = get_method(method)
    if method_def.engine != "deepspeed":
        return None
    return method_def.make_config(options).deepspeed_config()


class Engine:
    """A model and what trains it. ``module`` is the model itself (unwrapped from DeepSpeed).

    ``deepspeed``: the method's DeepSpeed settings (``deepspeed_config_of``); None trains in plain torch.
    ``precision``: ``bf16`` runs the forward pass under bfloat16 autocast (engine/devices.py).
    """

    def __init__(self, model: torch.nn.Module, opt: Optimization, *, deepspeed: dict | None = None,
                 micro_batch: int = 1, foreach: bool | None = None, precision: str = "fp32"):
        self.opt, self.micro_steps, self.module, self.precision = opt, 0, model, precision
        self.optimizer = make_optimizer(model, opt, foreach=foreach)
        self.scheduler = (None if opt.total_steps is None
                          else get_linear_schedule_with_warmup(self.optimizer, opt.warmup_steps, opt.total_steps))
        self.deepspeed = (None if deepspeed is None
                          else deepspeed_engine(model, self, deepspeed, micro_batch=micro_batch))

    def forward_backward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """One micro-batch's loss and its gradients (scaled for accumulation); returns the loss."""
        device = batch["input_ids"].device.type
        with torch.autocast(device, dtype=torch.bfloat16, enabled=self.precision == "bf16"):
            loss = self.loss((self.deepspeed or self.module)(**batch), batch["labels"])
        if self.deepspeed is not None:
            self.deepspeed.backward(loss)  # scaled by 1/accumulation, averaged over workers
            return loss
        (loss / self.opt.accumulation).backward()
        return loss

    def loss(self, out, labels: torch.Tensor) -> torch.Tensor:
        """The micro-batch's loss: the model's mean token cross-entropy, or, with ``label_smoothing`` ε, the
        same mean of (1-ε)·NLL + ε·(mean over the vocabulary of -log p) (fairseq's label-smoothed loss,
        Hyperformer's), padding (-100) left out; ``smoothed_loss: sum`` sums it over the tokens instead, as
        Hyperformer's fairseq loss does (third_party/utils/utils.py:64-65), so a batch's gradient grows
        with its target tokens."""
        if not self.opt.label_smoothing:
            return out.loss
        logits = out.logits.float()
        return torch.nn.functional.cross_entropy(logits.view(-1, logits.shape[-1]), labels.view(-1).to(logits.device),
                                                 ignore_index=-100, label_smoothing=self.opt.label_smoothing,
                                                 reduction=self.opt.smoothed_loss)

    def boundary(self) -> None:
        """After each micro-batch: clip and step the optimizer and schedule every ``accumulation``."""
        self.micro_steps += 1
        if self.deepspeed is not None:
            self.deepspeed.step()  # DeepSpeed counts micro-batches and clips itself
            return
        if self.micro_steps % self.opt.accumulation:
            return
        if self.opt.max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(self.optimizer.param_groups[0]["params"], self.opt.max_grad_norm)
        self.optimizer.step()
        if self.scheduler is not None:
            self.scheduler.step()
        self.zero_grad()

    @property
    def optimizer_steps(self) -> int:
        return self.micro_steps // self.opt.accumulation

    def at_boundary(self) -> bool:
        """Whether the last micro-batch ended an optimizer step."""
        return self.micro_steps % self.opt.accumulation == 0

    def micro_step(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        loss = self.forward_backward(batch)
        self.boundary()
        return loss

    def zero_grad(self) -> None:
        self.optimizer.zero_grad(set_to_none=True)

    def train(self) -> None:
        self.module.train()

    def close(self) -> None:
        """Let go of the DeepSpeed engine: its hooks keep model and ZeRO state alive after ``del``."""
        if self.deepspeed is not None:
            self.deepspeed.destroy()
            self.deepspeed = None
        self.optimizer = self.scheduler = None

    def state_dict(self) -> dict:
        """Optimizer and schedule state of the plain-torch engine (DeepSpeed saves its own)."""
        return {"optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict() if self.scheduler else None}

    def load_state_dict(self, state: dict) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None:
            self.scheduler.load_state_dict(state["scheduler"])


def deepspeed_engine(model, engine: Engine, settings: dict, *, micro_batch: int):
    """A DeepSpeed engine around ``model`` with ``engine``'s optimizer and schedule.

    Single process: a one-rank process group on an in-process store, so no port is taken and
    trials packed on one host cannot race each other for one (a port found free and then bound
    later can be taken in between). DeepSpeed scales the loss by 1/accumulation and
    steps every ``accumulation`` micro-batches, clipping at ``gradient_clipping`` (0: none).
    """
    import deepspeed

    without_shared_memory_op()
    if not torch.distributed.is_initialized():
        backend = "nccl" if next(model.parameters()).device.type == "cuda" else "gloo"
        torch.distributed.init_process_group(backend, store=torch.distributed.HashStore(), rank=0, world_size=1)
        os.environ.setdefault("LOCAL_RANK", "0")  # the engine asserts it is set (its launchers set it)
    opt = engine.opt
    settings = bounded_reduce_bucket(settings, sum(p.numel() for p in model.parameters() if p.requires_grad))
    ds_config = {
        "train_micro_batch_size_per_gpu": micro_batch,
        "gradient_accumulation_steps": opt.accumulation,
        "gradient_clipping": opt.max_grad_norm or 0.0,
        "steps_per_print": 10**9,
        **settings,
    }
    wrapped, engine.optimizer, _, scheduler = deepspeed.initialize(
        model=model, optimizer=engine.optimizer, lr_scheduler=engine.scheduler, config=ds_config
    )
    engine.scheduler = scheduler
    return wrapped


# ZeRO-1/2 stage gradients for reduction in a buffer of ``reduce_bucket_size`` elements, allocated
# whole on every step: DeepSpeed's default of 5e8 is 2 GB in fp32 — more than T5-base's weights, and
# none of it there in the authors' plain-PyTorch fine-tuning, the baseline of every memory Δ in
# Table 3. Bounded here, and never larger than what it holds: the trainable parameters.
REDUCE_BUCKET_ELEMENTS = 5 * 10**7


def bounded_reduce_bucket(settings: dict, trainable: int) -> dict:
    """``settings`` with ZeRO's reduction bucket at most ``REDUCE_BUCKET_ELEMENTS`` and ``trainable``
    elements (a size set in the method's settings is bounded the same way)."""
    zero = settings.get("zero_optimization")
    if not zero or zero.get("stage", 0) == 0:
        return settings
    bucket = min(int(zero.get("reduce_bucket_size", REDUCE_BUCKET_ELEMENTS)), max(trainable, 1))
    return {**settings, "zero_optimization": {**zero, "reduce_bucket_size": bucket}}


def without_shared_memory_op() -> None:
    """Keep DeepSpeed from compiling its shared-memory allreduce, a C++ extension it builds on a CPU
    when its communication backend starts (about 90 s, once per machine, after probing every op's
    compiler needs: the ``cannot find -laio`` lines). One process reduces nothing; CPU workers of
    one trial reduce through torch.distributed (gloo) instead; GPUs never use it (NCCL)."""
    import deepspeed.ops

    # deepspeed.ops probes compatibility on first access and keeps the dict, meant to be edited;
    # set before that access, the probe never runs
    deepspeed.ops.__dict__.setdefault("__compatible_ops__", {})["deepspeed_shm_comm"] = False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rank_and_world() -> tuple[int, int]:
    """This worker's rank and the number of data-parallel workers (1 without torch.distributed)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1
