"""A DeepSpeed engine on a CPU starts without compiling any C++ extension."""

from __future__ import annotations

import os
import subprocess
import sys

import torch
from transformers import T5ForConditionalGeneration

from peftbench.engine.batches import random_batch
from peftbench.engine.step import Engine, Optimization, deepspeed_config_of
from peftbench.models.load import tiny_t5_config


def test_deepspeed_starts_without_building_its_shared_memory_op(capfd):
    torch.manual_seed(0)
    model = T5ForConditionalGeneration(tiny_t5_config())
    engine = Engine(model, Optimization(), deepspeed=deepspeed_config_of("full", {"zero_stage": 2}), micro_batch=2)
    import deepspeed.comm.comm as ds_comm

    try:
        batch = random_batch(model.config.vocab_size, batch_size=2, source_len=5, target_len=3,
                             generator=torch.Generator().manual_seed(0))
        assert torch.isfinite(engine.micro_step(batch))
        assert ds_comm.cdb is not None and ds_comm.cdb.shm_comm_op is None
    finally:
        engine.close()
    output = capfd.readouterr()
    assert "built successfully" not in output.out + output.err
    assert "-laio" not in output.out + output.err  # no probe of the other ops' compilers either


SINGLE_PROCESS_ENGINE = """
import torch, torch.distributed as dist
import peftbench.engine.step as step
from peftbench.models.load import tiny_t5_config
from transformers import T5ForConditionalGeneration
def no_port():
    raise AssertionError("a single-process DeepSpeed engine asked for a TCP port")
step.free_port = no_port
model = T5ForConditionalGeneration(tiny_t5_config())
engine = step.Engine(model, step.Optimization(), deepspeed=step.deepspeed_config_of("full", {}), micro_batch=2)
store = dist.distributed_c10d._get_default_store()
store = getattr(store, "underlying_store", store)
print("store", type(store).__name__, "world", dist.get_world_size())
engine.close()
"""


def test_single_process_deepspeed_takes_no_port(tmp_path):
    # trials packed on one host each start an engine: a port found free, then bound later, can be
    # taken in between by another trial; an in-process store takes none
    env = {k: v for k, v in os.environ.items() if k not in ("MASTER_PORT", "MASTER_ADDR", "RANK", "WORLD_SIZE")}
    proc = subprocess.run([sys.executable, "-c", SINGLE_PROCESS_ENGINE], check=False, capture_output=True,
                          text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "store HashStore world 1" in proc.stdout


def test_zero2_reduction_bucket_is_no_larger_than_the_trainable_weights():
    # DeepSpeed's default bucket (5e8 elements, 2 GB in fp32) would be allocated on every step:
    # memory the authors' plain-PyTorch full fine-tuning never had
    torch.manual_seed(0)
    model = T5ForConditionalGeneration(tiny_t5_config())
    trainable = sum(p.numel() for p in model.parameters())
    engine = Engine(model, Optimization(), deepspeed=deepspeed_config_of("full", {"zero_stage": 2}), micro_batch=2)
    try:
        batch = random_batch(model.config.vocab_size, batch_size=2, source_len=5, target_len=3,
                             generator=torch.Generator().manual_seed(0))
        assert engine.deepspeed.optimizer.reduce_bucket_size <= trainable  # the buffer's elements
        assert torch.isfinite(engine.micro_step(batch))
    finally:
        engine.close()
