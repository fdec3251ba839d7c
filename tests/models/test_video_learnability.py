"""The video fixtures can be learned, and only from the video: full fine-tuning of tiny VL-T5 on How2QA's fixture
(which colour the screen turns) beats the majority answer on validation, while the subtitles alone cannot."""

from __future__ import annotations

import random
from collections import Counter

import torch

from peftbench.methods import apply_method
from peftbench.models.load import load_model
from peftbench.tasks import get_task

MODEL, TASK = "tiny-t5+tiny-clip-vit", "how2qa"
LR, EPOCHS, BATCH = 1e-3, 6, 8


def pad(seqs: list[list[int]], value: int) -> torch.Tensor:
    width = max(len(s) for s in seqs)
    return torch.tensor([s + [value] * (width - len(s)) for s in seqs])


def batch(tokenizer, task, rows: list[tuple[dict, torch.Tensor]]) -> dict:
    input_ids = pad([tokenizer(task.source(ex)).input_ids for ex, _ in rows], tokenizer.pad_token_id)
    return {"input_ids": input_ids, "attention_mask": (input_ids != tokenizer.pad_token_id).long(),
            "visual_features": torch.stack([f for _, f in rows])}


def fine_tuned_accuracy() -> float:
    """Validation accuracy (×100) of tiny VL-T5 after a short full fine-tuning on the fixture's training clips."""
    torch.manual_seed(0)
    torch.set_num_threads(1)
    model, tokenizer, _ = load_model(MODEL, seed=0)
    apply_method(model, "full", {})
    task = get_task(TASK)
    loaded = task.load_with_source("fixtures")
    inputs = task.model_inputs(loaded.splits, model=MODEL, data_source=loaded.source)
    rows = {k: [(ex, f["visual_features"]) for ex, f in zip(v, inputs[k], strict=True)]
            for k, v in loaded.splits.items()}
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=LR)
    order, train = random.Random(0), rows["train"]
    model.train()
    for _ in range(EPOCHS):
        order.shuffle(train)
        for i in range(0, len(train), BATCH):
            chunk = train[i : i + BATCH]
            labels = pad([tokenizer(task.target(ex)).input_ids for ex, _ in chunk], -100)
            model(**batch(tokenizer, task, chunk), labels=labels).loss.backward()
            optimizer.step()
            optimizer.zero_grad()
    model.eval()
    with torch.no_grad():
        generated = model.generate(**batch(tokenizer, task, rows["validation"]), max_new_tokens=task.max_target_length,
                                   do_sample=False, num_beams=1)
    predictions = tokenizer.batch_decode(generated, skip_special_tokens=True)
    return task.compute_metrics(predictions, loaded.splits["validation"])["accuracy"]


def subtitle_only_accuracy(train: list[dict], validation: list[dict]) -> tuple[float, float]:
    """The best a reader of the subtitles alone can do (each subtitle's most common training answer) and the
    majority answer's, on validation (×100): the rest of the text is the same on every row."""
    def subs(ex):
        return " ".join(t["text"] for t in ex["sub"])

    by_sub: dict[str, Counter] = {}
    for ex in train:
        by_sub.setdefault(subs(ex), Counter())[ex["answer_idx"]] += 1
    guess = {s: c.most_common(1)[0][0] for s, c in by_sub.items()}
    majority = Counter(ex["answer_idx"] for ex in train).most_common(1)[0][0]
    n = len(validation)
    return (100 * sum(guess[subs(ex)] == ex["answer_idx"] for ex in validation) / n,
            100 * sum(majority == ex["answer_idx"] for ex in validation) / n)


def test_full_fine_tuning_learns_the_video_question_the_subtitles_cannot_answer():
    splits = get_task(TASK).load("fixtures")
    from_subtitles, majority = subtitle_only_accuracy(splits["train"], splits["validation"])
    assert from_subtitles <= majority == 25.0  # four balanced answers: the subtitles give nothing
    assert fine_tuned_accuracy() >= majority + 40
