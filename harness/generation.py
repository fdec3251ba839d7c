"""Generation and scoring: a split's rows generated greedily by the trained model, then scored by the
task's registered metrics (``Task.compute_metrics``)."""

from __future__ import annotations

import torch

from peftbench.engine.batches import batches
from peftbench.tasks import Task, TextFormat


@torch.no_grad()
def generate(model, tokenizer, task: Task, rows: list[dict], micro_batch: int, device) -> list[str]:
    """Greedy generation (one beam, no sampling) on encoded ``rows``, ``micro_batch`` rows at a time."""
    model.eval()
    predictions = []
    for batch in batches(rows, micro_batch, tokenizer.pad_token_id):
        generated = model.generate(
            **{k: v.to(device) for k, v in batch.items() if k != "labels"},
            max_new_tokens=task.max_target_length,
            do_sample=False,
            num_beams=1,
        )
        predictions += tokenizer.batch_decode(generated, skip_special_tokens=True)
    return predictions


def generate_and_score(model, tokenizer, task: Task, fmt: TextFormat, rows: list[dict], micro_batch: int,
                       device) -> dict[str, float]:
    """The task's metrics (and counts) of the model's greedy outputs on ``rows``."""
    predictions = generate(model, tokenizer, task, rows, micro_batch, device)
    return task.compute_metrics(predictions, [r["example"] for r in rows], fmt)
