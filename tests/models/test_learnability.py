"""The point of pretraining: a frozen-backbone method learns SST-2 on the pretrained tiny T5 and not
on the same T5 randomly initialised."""

from __future__ import annotations

import random
from collections import Counter

import torch
from transformers import ByT5Tokenizer, T5ForConditionalGeneration

from peftbench.methods import apply_method
from peftbench.models import tinyt5
from peftbench.models.tinyt5 import pretrain
from peftbench.tasks import get_task

METHOD, LR, EPOCHS, BATCH = "adapter", 1e-2, 4, 16


def pad(seqs: list[list[int]], value: int) -> torch.Tensor:
    width = max(len(s) for s in seqs)
    return torch.tensor([s + [value] * (width - len(s)) for s in seqs])


def fine_tuned_accuracy(model: T5ForConditionalGeneration) -> tuple[float, float]:
    """SST-2 fixture test accuracy (×100) of ``model`` after a short run of METHOD, and the majority's."""
    torch.manual_seed(0)
    torch.set_num_threads(1)
    task, tokenizer = get_task("sst2"), ByT5Tokenizer()
    data = task.load("fixtures")
    apply_method(model, METHOD, {})
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=LR)
    rows = [(tokenizer(task.source(ex)).input_ids, tokenizer(task.target(ex)).input_ids) for ex in data["train"]]
    order = random.Random(0)
    model.train()
    for _ in range(EPOCHS):
        order.shuffle(rows)
        for i in range(0, len(rows), BATCH):
            chunk = rows[i : i + BATCH]
            input_ids = pad([s for s, _ in chunk], 0)
            loss = model(input_ids=input_ids, attention_mask=(input_ids != 0).long(),
                         labels=pad([t for _, t in chunk], -100)).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
    model.eval()
    batch = tokenizer([task.source(ex) for ex in data["test"]], padding=True, return_tensors="pt")
    with torch.no_grad():
        generated = model.generate(**batch, max_new_tokens=task.max_target_length, do_sample=False, num_beams=1)
    accuracy = task.compute_metrics(tokenizer.batch_decode(generated, skip_special_tokens=True),
                                    data["test"])["accuracy"]
    labels = Counter(ex["label"] for ex in data["test"])
    return accuracy, 100 * labels.most_common(1)[0][1] / len(data["test"])


def test_a_frozen_backbone_method_learns_sst2_only_on_the_pretrained_model():
    pretrained, majority = fine_tuned_accuracy(T5ForConditionalGeneration.from_pretrained(tinyt5.pretrained_path()))
    torch.manual_seed(0)
    random_init, _ = fine_tuned_accuracy(T5ForConditionalGeneration(pretrain.tiny_config()))
    assert pretrained >= majority + 10
    assert random_init < majority + 10
