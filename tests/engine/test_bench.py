"""Step timing: interleaving, and the bench-step command on tiny T5."""

from __future__ import annotations

import json

import torch
from transformers import T5ForConditionalGeneration

from cli.main import main
from engine.batches import random_batch
from engine.bench import interleaved_times, summarize, training_step
from engine.models import tiny_t5_config
from methods import apply_method


def test_interleaving_rotates_the_order_and_times_every_repetition():
    calls = []
    steps = {name: (lambda name=name: calls.append(name)) for name in "abc"}
    times = interleaved_times(steps, repeats=3, warmup=1)
    assert calls == list("abc") + list("abc") + list("bca") + list("cab")
    assert all(len(t) == 3 and min(t) >= 0 for t in times.values())


def test_training_step_updates_only_the_trainable_parameters():
    torch.manual_seed(0)
    model = T5ForConditionalGeneration(tiny_t5_config())
    apply_method(model, "compacter")
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    batch = random_batch(model.config.vocab_size, batch_size=2, source_len=7, target_len=3, generator=torch.Generator().manual_seed(0))
    assert batch["input_ids"].shape == (2, 7) and batch["labels"].shape == (2, 3)
    training_step(model, batch)()
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert changed and changed == {n for n, p in model.named_parameters() if p.requires_grad}


def test_bench_step_json_reports_medians_and_ratios_to_the_first(capsys):
    assert main(["bench-step", "--model", "tiny-t5", "--methods", "adapter,compacter", "--batch-size", "2",
                 "--seq-len", "8", "--repeats", "2", "--json"]) == 0
    captured = capsys.readouterr()
    rows = json.loads(captured.out)
    assert [r["method"] for r in rows] == ["adapter", "compacter"]
    assert rows[0]["ratio"] == 1.0 and all(r["median_step_s"] > 0 and r["ratio"] > 0 for r in rows)
    assert "repetition 2/2: adapter" in captured.err


def test_ratios_pair_steps_of_the_same_repetition():
    # load changed between repetitions: the ratio of medians (2 / 10) would say b is 5× faster
    rows = summarize({"a": [1.0, 10.0, 10.0], "b": [2.0, 20.0, 1.0]})
    assert rows == [{"method": "a", "median_step_s": 10.0, "ratio": 1.0},
                    {"method": "b", "median_step_s": 2.0, "ratio": 2.0}]
