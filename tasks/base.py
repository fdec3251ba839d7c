"""A task is data: where it lives, how an example becomes text, how text is scored.

Loading is real (``datasets.load_dataset`` at a pinned revision); offline, the same code reads
small fixture files in the hub's schema shipped in ``tasks/fixtures/<name>/<split>.jsonl``.
"""

from __future__ import annotations

import json
import logging
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

log = logging.getLogger(__name__)

FIXTURES = Path(__file__).parent / "fixtures"
SMALL_DATASET = 10_000  # the paper's rule: below this, halve validation into validation + test
SPLIT_SEED = 42  # one fixed shuffle, so every machine and run gets the same split
INVALID = -1  # a prediction that is no label


@dataclass(frozen=True)
class Task:
    """A text-to-text classification task in the paper's format."""

    name: str
    version: str
    hub_path: str
    hub_config: str
    revision: str
    formatter: Callable[[dict], str]
    label_texts: tuple[str, ...]
    metrics: tuple[Callable[[list[int], list[int]], dict[str, float]], ...]
    max_source_length: int = 128
    label_field: str = "label"
    hub_splits: dict[str, str] = field(default_factory=lambda: {"train": "train", "validation": "validation"})

    @property
    def max_target_length(self) -> int:
        """Bytes of the longest label text plus the end-of-sequence token (ByT5 counts bytes)."""
        return max(len(t.encode()) for t in self.label_texts) + 1

    def source(self, example: dict) -> str:
        return self.formatter(example)

    def target(self, example: dict) -> str:
        return self.label_texts[example[self.label_field]]

    def parse(self, prediction: str) -> int:
        """Map generated text to a label index; anything else is ``INVALID``, never an error."""
        text = prediction.strip()
        return self.label_texts.index(text) if text in self.label_texts else INVALID

    def evaluate(self, predictions: list[str], examples: list[dict]) -> dict[str, float]:
        """Metrics (×100) of generated texts against the examples' labels, plus the invalid count."""
        preds = [self.parse(p) for p in predictions]
        refs = [ex[self.label_field] for ex in examples]
        out: dict[str, float] = {}
        for metric in self.metrics:
            out.update(metric(preds, refs))
        out["invalid"] = sum(p == INVALID for p in preds)
        return out

    def score(self, metrics: dict[str, float]) -> float:
        """The task's single number: the mean of its metrics (the invalid count excluded)."""
        values = [v for k, v in metrics.items() if k != "invalid"]
        return sum(values) / len(values)

    def load(self, data: str = "auto") -> dict[str, list[dict]]:
        """Train/validation/test examples after the paper's split rule.

        ``data`` is ``"hub"``, ``"fixtures"`` or ``"auto"`` (the hub, else the fixtures).
        """
        if data not in ("auto", "hub", "fixtures"):
            raise ValueError(f"data must be auto, hub or fixtures, got {data!r}")
        raw = None
        if data in ("auto", "hub"):
            try:
                raw = self.load_hub()
            except Exception as exc:  # offline, hub down, auth: fall back only when asked to
                if data == "hub":
                    raise
                log.warning("%s: hub not reachable (%s); using the offline fixtures", self.name, exc)
        if raw is None:
            raw = self.load_fixtures()
        return paper_splits(raw["train"], raw["validation"])

    def load_hub(self) -> dict[str, list[dict]]:
        import datasets

        ds = datasets.load_dataset(self.hub_path, self.hub_config, revision=self.revision)
        return {ours: list(ds[theirs]) for ours, theirs in self.hub_splits.items()}

    def load_fixtures(self) -> dict[str, list[dict]]:
        out = {}
        for split in self.hub_splits:
            path = FIXTURES / self.name / f"{split}.jsonl"
            with path.open() as f:
                out[split] = [json.loads(line) for line in f if line.strip()]
        return out


def paper_splits(train: list[dict], validation: list[dict]) -> dict[str, list[dict]]:
    """The paper's splits: small sets halve validation; large ones take 1,000 train rows as validation."""
    if len(train) < SMALL_DATASET:
        val = _shuffled(validation)
        half = len(val) // 2
        return {"train": list(train), "validation": val[:half], "test": val[half:]}
    tr = _shuffled(train)
    return {"train": tr[1000:], "validation": tr[:1000], "test": list(validation)}


def _shuffled(rows: list[dict]) -> list[dict]:
    rows = list(rows)
    random.Random(SPLIT_SEED).shuffle(rows)
    return rows
