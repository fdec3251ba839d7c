"""Generation and scoring: a split's rows decoded by the trained model as its task declares (a VL task's
``generation`` arguments, or its ``choices`` compared by logit), then scored by the task's registered
metrics (``Task.compute_metrics``)."""

from __future__ import annotations

import dataclasses

import torch

from peftbench.engine.batches import batches
from peftbench.tasks import Task, TextFormat


def decoding(task: Task) -> dict:
    """The ``generate()`` arguments of ``task``: greedy up to its target length, unless it declares its own
    (``generation``: VL-Adapter's beam 5 and 40 tokens for captions)."""
    own = dict(getattr(task, "generation", None) or {})
    # a declared max_length bounds the whole decoder sequence, as the authors' generate() calls do
    limit = {} if "max_length" in own else {"max_new_tokens": task.max_target_length}
    return {"do_sample": False, "num_beams": 1, **limit, **own}


def capped(task: Task, *, num_beams: int | None, max_length: int | None) -> Task:
    """``task`` decoding with a trial's caps (``num_beams``, ``generation_max_length``) over the ``generation``
    it declares, so a smoke's untrained tiny model does not beam-search captions at the paper's width; a task
    without its own ``generation`` (greedy to its target length) is returned as it is."""
    caps = {k: v for k, v in (("num_beams", num_beams), ("max_length", max_length)) if v is not None}
    if not caps or getattr(task, "generation", None) is None:
        return task
    return dataclasses.replace(task, generation={**task.generation, **caps})


@torch.no_grad()
def generate(model, tokenizer, task: Task, rows: list[dict], micro_batch: int, device) -> list[str]:
    """The model's output text for each of ``rows``, ``micro_batch`` rows at a time: the task's ``choices``
    compared by logit when it has them, else generation with the task's ``decoding``."""
    model.eval()
    choices = getattr(task, "choices", None)
    predictions = []
    for batch in batches(rows, micro_batch, tokenizer.pad_token_id):
        inputs = {k: v.to(device) for k, v in batch.items() if k != "labels"}
        if choices:
            predictions += choose(model, tokenizer, inputs, choices)
        else:
            generated = model.generate(**inputs, **decoding(task))
            predictions += tokenizer.batch_decode(generated, skip_special_tokens=True)
    return predictions


def choose(model, tokenizer, inputs: dict, choices: tuple[str, ...]) -> list[str]:
    """Each row's choice whose first token has the largest logit at the first decoder step that predicts
    text (VL-Adapter's NLVR2, nlvr_model.py:121-127): never an invalid output.

    The decoder starts as in training: the start token, then whatever the tokenizer puts before a
    target's text (BART's ``<s>``; the authors' VL-BART compares at that second position too).
    """
    prefix, tokens = choice_tokens(tokenizer, choices)
    rows = inputs["input_ids"].shape[0]
    start = [model.config.decoder_start_token_id, *prefix]
    decoder_input_ids = torch.tensor([start] * rows, device=inputs["input_ids"].device)
    logits = model(**inputs, decoder_input_ids=decoder_input_ids).logits[:, -1, tokens]
    return [choices[i] for i in logits.argmax(dim=-1).tolist()]


def choice_tokens(tokenizer, choices: tuple[str, ...]) -> tuple[list[int], list[int]]:
    """The special tokens a target starts with, and each choice's first text token (distinct, or the
    comparison could not tell them apart)."""
    special = set(tokenizer.all_special_ids)
    prefixes, firsts = set(), []
    for choice in choices:
        ids = tokenizer(choice).input_ids
        lead = next(i for i, t in enumerate(ids) if t not in special)
        prefixes.add(tuple(ids[:lead]))
        firsts.append(ids[lead])
    if len(set(firsts)) != len(firsts) or len(prefixes) != 1:
        raise ValueError(f"choices {choices} do not start with distinct tokens after one shared prefix")
    return list(prefixes.pop()), firsts


def generate_and_score(model, tokenizer, task: Task, fmt: TextFormat, rows: list[dict], micro_batch: int,
                       device) -> dict[str, float]:
    """The task's metrics (and counts) of the model's outputs on ``rows`` (``generate``)."""
    predictions = generate(model, tokenizer, task, rows, micro_batch, device)
    return task.compute_metrics(predictions, [r["example"] for r in rows], fmt)
