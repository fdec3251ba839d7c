"""Training batches: padded batches of encoded examples, and random batches at full length."""

from __future__ import annotations

import random

import torch

TEXT_KEYS = ("input_ids", "labels", "example")  # an encoded row's keys that are not model inputs as they are


def pad(seqs: list[list[int]], value: int) -> torch.Tensor:
    width = max(len(s) for s in seqs)
    return torch.tensor([s + [value] * (width - len(s)) for s in seqs])


def batches(rows: list[dict], size: int, pad_id: int, *, shuffle: random.Random | None = None, min_rows: int = 1):
    """Padded tensor batches of encoded rows; label padding is -100 so the loss ignores it.

    ``min_rows``: a last batch with fewer rows is left out (k workers each need a row: a worker
    with none would average an empty loss to NaN, or skip a collective the others wait in).
    """
    idx = list(range(len(rows)))
    if shuffle:
        shuffle.shuffle(idx)
    for i in range(0, len(idx) - min_rows + 1, size):
        yield collate([rows[j] for j in idx[i : i + size]], pad_id)


def collate(chunk: list[dict], pad_id: int) -> dict[str, torch.Tensor]:
    """One padded batch of encoded rows; label padding is -100 so the loss ignores it. Inputs beside
    the text (a VL task's image features): one tensor per row, stacked."""
    input_ids = pad([r["input_ids"] for r in chunk], pad_id)
    labels = pad([r["labels"] for r in chunk], -100)
    extra = {k: torch.stack([r[k] for r in chunk]) for k in chunk[0] if k not in TEXT_KEYS}
    return {"input_ids": input_ids, "attention_mask": (input_ids != pad_id).long(), "labels": labels, **extra}


def random_batch(vocab_size: int, *, batch_size: int, source_len: int, target_len: int,
                 generator: torch.Generator | None = None, device="cpu") -> dict[str, torch.Tensor]:
    """``batch_size`` rows of random token ids at full source and target length.

    The most memory a batch of this size can need, in the loop's format. One position is padding,
    as in a trial's padded batches: transformers builds no attention mask for an all-ones
    ``attention_mask`` (a shortcut fake tensors cannot take, having no values).
    """
    def ids(length):
        return torch.randint(2, vocab_size, (batch_size, length), generator=generator).to(device)

    input_ids = ids(source_len)
    attention_mask = torch.ones_like(input_ids)
    attention_mask[0, -1] = 0
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": ids(target_len)}
