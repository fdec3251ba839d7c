"""Step timing: interleaving, and the bench-step command on tiny T5."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import T5ForConditionalGeneration

from peftbench.cli.main import main
from peftbench.engine.batches import random_batch
from peftbench.engine.bench import (
    FLOOR,
    backbone,
    floor_step,
    interleaved_times,
    parse_shapes,
    summarize,
    training_step,
)
from peftbench.methods import apply_method
from peftbench.models.load import tiny_t5_config


def test_interleaving_rotates_the_order_and_times_every_repetition():
    calls = []
    steps = {name: (lambda name=name: calls.append(name)) for name in "abc"}
    times = interleaved_times(steps, repeats=3, warmup=1)
    assert calls == list("abc") + list("abc") + list("bca") + list("cab")
    assert all(len(t) == 3 and min(t) >= 0 for t in times.values())


def test_the_cpu_clock_leaves_out_waiting():
    import time

    steps = {"sleeps": lambda: time.sleep(0.05)}
    assert min(interleaved_times(steps, repeats=2, clock="wall")["sleeps"]) >= 0.05
    assert max(interleaved_times(steps, repeats=2, clock="cpu")["sleeps"]) < 0.02


def test_training_step_updates_only_the_trainable_parameters():
    torch.manual_seed(0)
    model = T5ForConditionalGeneration(tiny_t5_config())
    apply_method(model, "compacter")
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    batch = random_batch(model.config.vocab_size, batch_size=2, source_len=7, target_len=3,
                         generator=torch.Generator().manual_seed(0))
    assert batch["input_ids"].shape == (2, 7) and batch["labels"].shape == (2, 3)
    training_step(model, batch)()
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert changed and changed == {n for n, p in model.named_parameters() if p.requires_grad}


def test_bench_step_json_reports_every_shape_with_ratios_to_the_first_and_to_the_floor(capsys):
    assert main(["bench-step", "--model", "tiny-t5", "--methods", "adapter,compacter", "--shapes", "2x8,3x5",
                 "--repeats", "1", "--json"]) == 0
    captured = capsys.readouterr()
    rows = json.loads(captured.out)
    assert [(r["shape"], r["method"]) for r in rows] == [(s, m) for s in ("2x8", "3x5")
                                                          for m in ("adapter", "compacter", FLOOR)]
    assert all(r["median_step_s"] > 0 and r["ratio"] > 0 and r["floor_ratio"] > 0 for r in rows)
    assert [r["ratio"] for r in rows if r["method"] == "adapter"] == [1.0, 1.0]
    assert [r["floor_ratio"] for r in rows if r["method"] == FLOOR] == [1.0, 1.0]
    assert "2x8 repetition 1/1: adapter" in captured.err and "3x5 repetition 1/1: adapter" in captured.err


def test_bench_step_prints_a_table_and_refuses_a_bad_shape(capsys):
    assert main(["bench-step", "--methods", "bitfit", "--shapes", "1x4", "--repeats", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["shape", "method", "median", "step", "×", "bitfit", "×", FLOOR]
    assert [line.split()[:2] for line in lines[1:]] == [["1x4", "bitfit"], ["1x4", FLOOR]]
    assert main(["bench-step", "--methods", "bitfit", "--shapes", "2x32,8by128"]) == 2
    assert "got '8by128'" in capsys.readouterr().err
    with pytest.raises(ValueError, match="BATCHxLENGTH"):
        parse_shapes("0x8")


def test_the_floor_trains_nothing_and_takes_gradients_to_the_inputs_only():
    torch.manual_seed(0)
    model = backbone("tiny-t5", torch.device("cpu"))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    batch = random_batch(model.config.vocab_size, batch_size=2, source_len=7, target_len=3,
                         generator=torch.Generator().manual_seed(0))
    step = floor_step(model, batch)
    seen = []
    model.encoder.block[0].register_full_backward_hook(lambda module, grad_in, grad_out: seen.append(grad_out))
    step()
    assert seen and torch.isfinite(seen[0][0]).all() and seen[0][0].abs().sum() > 0  # backward reached the first block
    assert all(p.grad is None and not p.requires_grad for p in model.parameters())
    assert all(torch.equal(p, before[n]) for n, p in model.named_parameters())


def test_ratios_pair_steps_of_the_same_repetition():
    # load changed between repetitions: the ratio of medians (2 / 10) would say b is 5× faster
    rows = summarize({"a": [1.0, 10.0, 10.0], "b": [2.0, 20.0, 1.0]})
    assert rows == [{"method": "a", "median_step_s": 10.0, "ratio": 1.0},
                    {"method": "b", "median_step_s": 2.0, "ratio": 2.0}]
    with_floor = summarize({"a": [2.0, 4.0, 6.0], FLOOR: [1.0, 1.0, 4.0]})
    assert [r["floor_ratio"] for r in with_floor] == [2.0, 1.0]
