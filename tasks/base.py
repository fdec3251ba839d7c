"""A task is data: where it lives, how it splits, how an example becomes text, how text is scored.

Loading is real (``datasets.load_dataset`` at a pinned revision); offline, the same code reads
small fixture files in the hub's schema, ``tasks/fixtures/<name>/<hub split>.jsonl``.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tasks.metrics import INVALID

log = logging.getLogger(__name__)

FIXTURES = Path(__file__).parent / "fixtures"
SMALL_DATASET = 10_000  # the paper's rule: below this many training units, halve validation into validation + test
VALIDATION_FROM_TRAIN = 1_000  # otherwise this many training units become validation
SPLIT_SEED = 42  # one fixed shuffle, so every machine and run gets the same split
DATA_SOURCES = ("auto", "hub", "fixtures")


@dataclass(frozen=True, kw_only=True)
class Task:
    """What every task declares. Kinds (label classification, ReCoRD) add targets and scoring.

    ``hub_splits`` maps our split names to the hub's; naming a ``test`` split there (MNLI) skips
    the size rule. ``unit`` keys the rows that must stay together in a split and that the size
    rule counts (MultiRC: the answer options of one question); ``None``: each row alone.
    """

    name: str
    version: str
    hub_path: str
    hub_config: str
    revision: str
    formatter: Callable[[dict], str]
    metrics: tuple[Callable, ...]
    max_source_length: int = 128
    epochs: int = 3  # the paper's epochs on the full training set
    hub_splits: Mapping[str, str] = field(default_factory=lambda: {"train": "train", "validation": "validation"})
    unit: Callable[[dict], Hashable] | None = None

    @property
    def max_target_length(self) -> int:
        raise NotImplementedError

    @property
    def metric_names(self) -> tuple[str, ...]:
        return tuple(m.__name__ for m in self.metrics)

    def source(self, example: dict) -> str:
        return self.formatter(example)

    def target(self, example: dict) -> str:
        raise NotImplementedError

    def evaluate(self, predictions: list[str], examples: list[dict]) -> dict[str, float]:
        """Metrics (×100) of generated texts against the examples, plus the count of invalid outputs."""
        raise NotImplementedError

    def training_examples(self, rows: list[dict]) -> list[dict]:
        """The rows the model trains on; a task with several targets per row expands them here."""
        return rows

    def score(self, metrics: dict[str, float]) -> float:
        """The task's single number: the mean of its metrics (the invalid count excluded)."""
        values = [v for k, v in metrics.items() if k != "invalid"]
        return sum(values) / len(values)

    def load(self, data: str = "auto", *, train_size: int | None = None, seed: int = 0) -> dict[str, list[dict]]:
        """Train/validation/test examples after the paper's split rule.

        ``data`` is ``"hub"``, ``"fixtures"`` or ``"auto"`` (the hub, else the fixtures).
        ``train_size`` subsamples the training split, the same rows for the same ``seed``.
        """
        splits = self.split(self.read(data))
        if train_size is not None:
            splits["train"] = subsample(splits["train"], train_size, seed=seed)
        splits["train"] = self.training_examples(splits["train"])
        return splits

    def split(self, raw: dict[str, list[dict]]) -> dict[str, list[dict]]:
        """Our train/validation/test from the hub's splits (keyed by our names)."""
        if "test" in raw:
            return {k: list(raw[k]) for k in ("train", "validation", "test")}
        return paper_splits(raw["train"], raw["validation"], unit=self.unit)

    def read(self, data: str) -> dict[str, list[dict]]:
        if data not in DATA_SOURCES:
            raise ValueError(f"data must be one of {', '.join(DATA_SOURCES)}, got {data!r}")
        if data == "fixtures":
            return self.load_fixtures()
        try:
            return self.load_hub()
        except Exception as exc:  # offline, hub down, auth: fall back only when asked to
            if data == "hub":
                raise
            log.warning("%s: hub not reachable (%s); using the offline fixtures", self.name, exc)
            return self.load_fixtures()

    def load_hub(self) -> dict[str, list[dict]]:
        import datasets

        ds = datasets.load_dataset(self.hub_path, self.hub_config, revision=self.revision)
        return {ours: list(ds[theirs]) for ours, theirs in self.hub_splits.items()}

    def load_fixtures(self) -> dict[str, list[dict]]:
        out = {}
        for ours, theirs in self.hub_splits.items():
            with (FIXTURES / self.name / f"{theirs}.jsonl").open() as f:
                out[ours] = [json.loads(line) for line in f if line.strip()]
        return out


def hub_label(example: dict) -> int:
    return example["label"]


@dataclass(frozen=True, kw_only=True)
class ClassificationTask(Task):
    """Targets are label texts; a generated text that is no label text is ``INVALID``.

    ``group_metrics`` take (predictions, references, units) for metrics over groups of rows.
    """

    label_texts: tuple[str, ...]
    label: Callable[[dict], int] = hub_label
    group_metrics: tuple[Callable, ...] = ()

    def __post_init__(self):
        if self.group_metrics and self.unit is None:
            raise ValueError(f"{self.name}: group metrics need a unit to group by")

    @property
    def max_target_length(self) -> int:
        """Bytes of the longest label text plus the end-of-sequence token (ByT5 counts bytes)."""
        return max(len(t.encode()) for t in self.label_texts) + 1

    @property
    def metric_names(self) -> tuple[str, ...]:
        return tuple(m.__name__ for m in self.metrics + self.group_metrics)

    def target(self, example: dict) -> str:
        return self.label_texts[self.label(example)]

    def parse(self, prediction: str) -> int:
        """Map generated text to a label index; anything else is ``INVALID``, never an error."""
        text = prediction.strip()
        return self.label_texts.index(text) if text in self.label_texts else INVALID

    def evaluate(self, predictions: list[str], examples: list[dict]) -> dict[str, float]:
        preds = [self.parse(p) for p in predictions]
        refs = [self.label(ex) for ex in examples]
        out: dict[str, float] = {}
        for metric in self.metrics:
            out.update(metric(preds, refs))
        for metric in self.group_metrics:
            out.update(metric(preds, refs, [self.unit(ex) for ex in examples]))
        out["invalid"] = sum(p == INVALID for p in preds)
        return out


def paper_splits(
    train: list[dict], validation: list[dict], *, unit: Callable[[dict], Hashable] | None = None
) -> dict[str, list[dict]]:
    """The paper's splits: under 10k training units, halve validation into validation and test;
    otherwise 1,000 training units become validation and the hub's validation is test."""
    train_units = _units(train, unit)
    if len(train_units) < SMALL_DATASET:
        val = _shuffled(_units(validation, unit))
        half = len(val) // 2
        return {"train": list(train), "validation": _flat(val[:half]), "test": _flat(val[half:])}
    shuffled = _shuffled(train_units)
    return {
        "train": _flat(shuffled[VALIDATION_FROM_TRAIN:]),
        "validation": _flat(shuffled[:VALIDATION_FROM_TRAIN]),
        "test": list(validation),
    }


def subsample(rows: list[dict], size: int, *, seed: int) -> list[dict]:
    """``size`` rows drawn without replacement; the same rows for the same seed on every machine."""
    if size < 1 or size > len(rows):
        raise ValueError(f"train_size {size} is not between 1 and the {len(rows)} training examples")
    return random.Random(seed).sample(rows, size)


def _units(rows: list[dict], unit: Callable[[dict], Hashable] | None) -> list[list[dict]]:
    if unit is None:
        return [[r] for r in rows]
    groups: dict[Hashable, list[dict]] = {}
    for r in rows:
        groups.setdefault(unit(r), []).append(r)
    return list(groups.values())


def _flat(units: list[list[dict]]) -> list[dict]:
    return [r for u in units for r in u]


def _shuffled(units: list) -> list:
    units = list(units)
    random.Random(SPLIT_SEED).shuffle(units)
    return units
