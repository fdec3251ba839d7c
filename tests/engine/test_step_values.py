"""Values the training step must have: the learning rate at every optimizer step, label padding the loss
ignores, the rows each data-parallel worker takes, and the parameter totals of every T5 size."""

from __future__ import annotations

import pytest
import torch
from transformers import T5ForConditionalGeneration

from peftbench.engine.accounting import count_params
from peftbench.engine.batches import batches
from peftbench.engine.step import Engine, Optimization
from peftbench.harness.setup import Trial
from peftbench.methods import apply_method
from peftbench.models.load import model_config

from testkit.models import tiny_model


def adapter_model() -> T5ForConditionalGeneration:
    model = tiny_model().train()
    apply_method(model, "adapter")
    return model


def test_learning_rate_warms_up_linearly_then_decays_to_zero_once_per_optimizer_step():
    model = adapter_model()
    engine = Engine(model, Optimization(learning_rate=0.04, warmup_steps=4, total_steps=8, accumulation=2))
    batch = {"input_ids": torch.tensor([[5, 6, 1]]), "labels": torch.tensor([[7, 1]])}
    used = []  # the rate each micro-batch's step would apply
    for _ in range(16):
        used.append(engine.optimizer.param_groups[0]["lr"])
        engine.micro_step(batch)
    per_step = [0.0, 0.01, 0.02, 0.03, 0.04, 0.03, 0.02, 0.01]  # steps 0-3 warm up, then 4 steps down to 0
    assert used == pytest.approx([lr for lr in per_step for _ in range(2)], abs=1e-12)
    assert engine.optimizer.param_groups[0]["lr"] == 0.0 and engine.optimizer_steps == 8


def test_label_padding_is_ignored_by_the_loss():
    rows = [{"input_ids": [5, 6, 7, 1], "labels": [8, 9, 10, 1]}, {"input_ids": [11, 1], "labels": [12, 1]}]
    (batch,) = batches(rows, 2, pad_id=0)
    assert batch["labels"].tolist() == [[8, 9, 10, 1], [12, 1, -100, -100]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 1], [1, 1, 0, 0]]
    model = adapter_model().eval()
    with torch.no_grad():
        together = model(**batch).loss
        alone = [model(**next(batches([r], 1, pad_id=0))).loss for r in rows]
    # the mean over the 6 real target tokens: 4 of row one, 2 of row two
    assert together.item() == pytest.approx((4 * alone[0].item() + 2 * alone[1].item()) / 6, rel=1e-5)


def test_data_parallel_workers_split_each_step_batch_into_disjoint_micro_batches():
    step_batch = {"input_ids": torch.arange(12).view(6, 2), "labels": torch.arange(6).view(6, 1)}

    def rows_of(rank: int) -> list[int]:
        run = Trial(cfg=None, plan=None, task=None, fmt=None, splits={}, sources={}, model_source="", tokenizer=None,
                    cpu_memory=None, precision={}, engine=None, count=None, device=torch.device("cpu"), rank=rank,
                    world=3)
        shard = run.shard(step_batch)
        assert torch.equal(shard["input_ids"][:, 0] // 2, shard["labels"][:, 0])  # rows stay whole
        return shard["labels"][:, 0].tolist()

    shards = [rows_of(rank) for rank in range(3)]
    assert all(len(s) == 2 for s in shards)  # each worker its micro-batch
    assert sorted(row for shard in shards for row in shard) == list(range(6))  # together the whole batch, no row twice


# Parameter totals of the original checkpoints (their model cards and the T5 paper's sizes).
T5_TOTALS = {"t5-small": 60_506_624, "t5-base": 222_903_552, "t5-large": 737_668_096,
             "t5-3b": 2_851_598_336, "t5-11b": 11_307_321_344}


@pytest.mark.parametrize("name", list(T5_TOTALS))
def test_every_t5_size_has_its_parameter_total_and_adapters_of_d_model_over_32(name):
    config = model_config(name)
    count = count_params(config, "adapter")
    assert count.total == T5_TOTALS[name]
    d, r, blocks = config.d_model, config.d_model // 32, config.num_layers
    layer_norms = (2 * blocks + 1 + 3 * blocks + 1) * d  # encoder, decoder block norms and the two final ones
    assert count.trainable == 4 * blocks * (2 * d * r + r + d) + layer_norms
