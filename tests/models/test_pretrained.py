"""The committed weights load and run; the rebuild is deterministic."""

from __future__ import annotations

import torch
from transformers import ByT5Tokenizer, T5ForConditionalGeneration

from peftbench.models import tinyt5
from peftbench.models.tinyt5 import pretrain


def test_committed_weights_load_and_give_finite_outputs():
    model = T5ForConditionalGeneration.from_pretrained(tinyt5.pretrained_path()).eval()
    tokenizer = ByT5Tokenizer()
    batch = tokenizer(["kind sentence: the small otter slept near the barn ."], return_tensors="pt")
    labels = tokenizer(["animal"], return_tensors="pt").input_ids
    with torch.no_grad():
        loss = model(**batch, labels=labels).loss
    assert torch.isfinite(loss)
    assert loss < 1.0  # pretrained, not random: a random T5 over 384 ids starts near ln 384 ≈ 6
    assert sum(p.numel() for p in model.parameters()) < 2_000_000


def test_pretraining_twice_gives_bit_identical_weights():
    first = pretrain.pretrain(steps=3, batch_size=4, log=lambda line: None)
    second = pretrain.pretrain(steps=3, batch_size=4, log=lambda line: None)
    a, b = first.state_dict(), second.state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    torch.manual_seed(pretrain.SEED)
    untrained = T5ForConditionalGeneration(pretrain.tiny_config()).state_dict()
    assert not all(torch.equal(a[k], untrained[k]) for k in a)  # the three steps did change them
