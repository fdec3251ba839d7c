"""Two data-parallel workers take disjoint halves of a batch and step on the average of their
gradients: the same step as one process on the whole batch."""

from __future__ import annotations

import os
from types import SimpleNamespace

import numpy
import torch
from transformers import T5ForConditionalGeneration

from peftbench.engine.batches import random_batch
from peftbench.engine.step import Engine, Optimization, deepspeed_config_of, rank_and_world
from peftbench.harness.setup import Trial
from peftbench.models.load import tiny_t5_config

from testkit.cudasim import run_gloo_workers

ROWS = 8


def _step(rank: int, zero_stage: int) -> dict:
    """One DeepSpeed step of full fine-tuning on this worker's rows of a fixed batch."""
    os.environ["DS_ACCELERATOR"] = "cpu"
    torch.manual_seed(0)
    model = T5ForConditionalGeneration(tiny_t5_config())
    model.config.dropout_rate = 0.0
    batch = random_batch(model.config.vocab_size, batch_size=ROWS, source_len=6, target_len=4,
                         generator=torch.Generator().manual_seed(1))
    batch["attention_mask"][0, -1] = 1  # every row whole, so each half's mean loss weighs its tokens alike
    rank, world = rank_and_world()
    rows = Trial.shard(SimpleNamespace(rank=rank, world=world, device=torch.device("cpu")), batch)
    engine = Engine(model, Optimization(learning_rate=1e-3, max_grad_norm=None),
                    deepspeed=deepspeed_config_of("full", {"zero_stage": zero_stage}),
                    micro_batch=len(rows["input_ids"]))
    seen = {}
    inner = engine.deepspeed.optimizer
    if zero_stage == 0:  # the client AdamW itself: record the gradient it is about to apply
        step = inner.step

        def recording_step(*args, **kwargs):
            seen["norm"] = torch.cat([p.grad.flatten() for g in inner.param_groups for p in g["params"]]).norm()
            return step(*args, **kwargs)

        inner.step = recording_step
    try:
        model.eval()  # no dropout: the two runs see the same function
        loss = engine.micro_step(rows)
        # ZeRO-2 computes the global norm over its partitions itself
        norm = seen["norm"] if zero_stage == 0 else engine.deepspeed.get_global_grad_norm()
        return {"rows": rows["input_ids"][:, 0].tolist(), "loss": loss.item(), "grad_norm": float(norm),
                "weights": torch.cat([p.detach().flatten() for p in model.parameters()]).numpy().copy()}
    finally:
        engine.close()


def _steps(rank: int) -> dict[int, dict]:
    """ZeRO-0's step and ZeRO-2's, one after the other in the same worker: starting a worker (torch,
    DeepSpeed) takes longer than its steps."""
    return {stage: _step(rank, stage) for stage in (0, 2)}


def test_two_workers_average_their_gradients_to_the_one_process_step():
    ones = run_gloo_workers(_steps, world=1, timeout=300)[0]
    twos = run_gloo_workers(_steps, world=2, timeout=300)
    for stage in (0, 2):
        one, two = ones[stage], {rank: twos[rank][stage] for rank in (0, 1)}
        # disjoint halves that together make the batch
        assert sorted(two[0]["rows"] + two[1]["rows"]) == sorted(one["rows"])
        assert len(two[0]["rows"]) == len(two[1]["rows"]) == ROWS // 2
        # the mean of the halves' losses is the whole batch's loss (equal token counts)
        assert abs((two[0]["loss"] + two[1]["loss"]) / 2 - one["loss"]) < 1e-5
        # the averaged gradient: its norm is the whole batch's, not the sum's (twice) or a half's
        for rank in (0, 1):
            assert abs(two[rank]["grad_norm"] - one["grad_norm"]) < 1e-4 * one["grad_norm"], f"ZeRO-{stage}"
        # and both workers end the step with the one process's weights: AdamW's first step moves
        # each weight by about lr·sign(g) = 1e-3, so a wrong half would show as 1e-3 differences; the
        # few gradients near ε (1e-8) move by less, summation order showing there as up to ~1e-5
        for rank in (0, 1):
            assert numpy.allclose(two[rank]["weights"], one["weights"], atol=2e-5), f"ZeRO-{stage}"
