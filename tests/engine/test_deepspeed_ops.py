"""A DeepSpeed engine on a CPU starts without compiling any C++ extension."""

from __future__ import annotations

import torch
from transformers import T5ForConditionalGeneration

from engine.batches import random_batch
from engine.models import tiny_t5_config
from engine.step import Engine, Optimization, deepspeed_config_of


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
