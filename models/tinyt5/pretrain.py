"""Pretrains the tiny T5 on models/tinyt5/corpus.py and writes it where ``tinyt5.pretrained_path()`` looks.

    python -m peftbench.models.tinyt5.pretrain                 # rebuild the committed weights (about 6 min of CPU)
    python -m peftbench.models.tinyt5.pretrain --steps 20 --out /tmp/t5   # a quick look

Deterministic: one seed draws the initial weights and the corpus, the batches come in a fixed order,
and torch runs deterministic algorithms on one thread (a fixed count, so the machine's cores do not
change the sums; and on a busy 2-core machine a second thread mostly waits), so the same command on
the same torch build writes the same bytes.
"""

from __future__ import annotations

import argparse
import math
import random
import time
from pathlib import Path

import torch
from transformers import ByT5Tokenizer, T5Config, T5ForConditionalGeneration

from peftbench.models.tinyt5 import corpus

SEED = 0
THREADS = 1
STEPS = 600  # the committed weights' steps and batch: tests/tinyt5 regenerates their corpus from these
BATCH_SIZE = 64
MAX_SOURCE = 192  # bytes; the corpus's longest source is shorter, so nothing is cut
MAX_TARGET = 64


def tiny_config() -> T5Config:
    """A T5 of about 0.84M parameters on ByT5's 384 byte ids (no vocabulary file).

    The shape of the random ``tiny-t5`` (d_model 128, 2 blocks per stack), so the smoke's
    scaled-down method options stay valid (adapter bottleneck d_model/32 = 4, PHM n = 4 divides
    it, AdapterDrop drops 1 of 2 blocks) and a smoke trial costs about what it did.
    The gated-GELU feed-forward follows T5 v1.1 / ByT5; no dropout, as ``tiny-t5``; input and
    output embeddings tied, as ``tiny-t5``: with 384 ids untying would buy little.
    """
    return T5Config(
        vocab_size=384, d_model=128, d_ff=256, d_kv=32, num_heads=4, num_layers=2, num_decoder_layers=2,
        feed_forward_proj="gated-gelu", dropout_rate=0.0, decoder_start_token_id=0, pad_token_id=0,
        eos_token_id=1, tie_word_embeddings=True,
    )


def encode(tokenizer: ByT5Tokenizer, pairs: list[tuple[str, str]]) -> list[tuple[list[int], list[int]]]:
    """Byte ids of each (source, target) pair, sentinels included, each ending with </s>."""
    sources = tokenizer([s for s, _ in pairs], truncation=True, max_length=MAX_SOURCE).input_ids
    targets = tokenizer([t for _, t in pairs], truncation=True, max_length=MAX_TARGET).input_ids
    return list(zip(sources, targets, strict=False))


def batches(rows: list[tuple[list[int], list[int]]], size: int, rng: random.Random, *, window: int = 16):
    """Padded batches; rows of similar length share a batch (sorted within windows of ``window``
    batches, then the batches shuffled) so little time goes into padding."""
    span = size * window
    order = []
    for i in range(0, len(rows), span):
        chunk = sorted(range(i, min(i + span, len(rows))), key=lambda j: len(rows[j][0]))
        order += [chunk[k : k + size] for k in range(0, len(chunk), size)]
    rng.shuffle(order)
    for idx in order:
        yield collate([rows[j] for j in idx])


def collate(rows: list[tuple[list[int], list[int]]]) -> dict[str, torch.Tensor]:
    """Tensors for ``model(**batch)``: pad 0 in the source, -100 in the labels (the loss skips it)."""
    width = max(len(s) for s, _ in rows)
    labels_width = max(len(t) for _, t in rows)
    input_ids = torch.tensor([s + [0] * (width - len(s)) for s, _ in rows])
    labels = torch.tensor([t + [-100] * (labels_width - len(t)) for _, t in rows])
    return {"input_ids": input_ids, "attention_mask": (input_ids != 0).long(), "labels": labels}


def schedule(step: int, *, steps: int, warmup: int) -> float:
    """Learning-rate factor: linear warm-up, then cosine decay to a tenth."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))


def pretrain(*, steps: int, batch_size: int = BATCH_SIZE, lr: float = 3e-3, seed: int = SEED, log=print,
             log_every: int = 250) -> T5ForConditionalGeneration:
    """The pretrained model after ``steps`` AdamW steps on the first steps × batch_size corpus pairs."""
    torch.set_num_threads(THREADS)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(seed)
    model = T5ForConditionalGeneration(tiny_config())
    rows = encode(ByT5Tokenizer(), list(corpus.examples(steps * batch_size, seed=seed)))
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: schedule(s, steps=steps, warmup=max(1, steps // 20)))
    model.train()
    start, running = time.perf_counter(), 0.0
    for step, batch in enumerate(batches(rows, batch_size, random.Random(seed)), start=1):
        loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        running += loss.item()
        if step % log_every == 0 or step == steps:
            log(f"step {step}/{steps} loss {running / (log_every if step % log_every == 0 else step % log_every):.4f} "
                f"({time.perf_counter() - start:.0f}s)")
            running = 0.0
    model.eval()
    return model


def save(model: T5ForConditionalGeneration, out: Path) -> None:
    """config.json, generation_config.json, model.safetensors and the tokenizer's files: a
    ``from_pretrained`` directory."""
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    # The tokenizer's few JSON files too, so the directory also loads as a plain model path
    # (AutoTokenizer.from_pretrained) where no code maps the name to ByT5Tokenizer().
    ByT5Tokenizer().save_pretrained(out)


def main(argv: list[str] | None = None) -> None:
    from peftbench.models.tinyt5 import pretrained_path

    parser = argparse.ArgumentParser(prog="python -m peftbench.models.tinyt5.pretrain",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=STEPS)
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--out", type=Path, default=pretrained_path(), help="default: the packaged weights")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    model = pretrain(steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                     log=lambda line: print(line, flush=True))
    save(model, args.out)
    params = sum(p.numel() for p in model.parameters())
    print(f"wrote {args.out} ({params:,} parameters) in {time.perf_counter() - start:.0f}s "
          f"on {THREADS} threads")


if __name__ == "__main__":
    main()
