"""A task is data: where it lives, how it splits, how an example becomes text, how text is scored.

Loading is real (``datasets.load_dataset`` at a pinned revision); offline, the same code reads
small fixture files in the hub's schema, ``tasks/fixtures/<name>/<hub split>.jsonl``. Which of the
two was used is reported (``Task.load_with_source``), so a record can say what it was trained on.

Nothing here imports torch at module level: ``peftbench tasks`` lists tasks without it.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, NamedTuple

from peftbench.models.spec import ModelSpec
from peftbench.tasks.hub import hub_reachable
from peftbench.tasks.metrics import COUNTS, INVALID, Metric

log = logging.getLogger(__name__)

FIXTURES = Path(__file__).parent / "fixtures"
SMALL_DATASET = 10_000  # the paper's rule: below this many training units, halve validation into validation + test
VALIDATION_FROM_TRAIN = 1_000  # otherwise this many training units become validation
SPLIT_SEED = 42  # the original code's permutation seed (its data_seed default), the same split everywhere
DATA_SOURCES = ("auto", "hub", "fixtures")
# How ``train_size`` subsamples: rows drawn per trial seed, or the first N of the seed-42 permutation for every
# seed (the authors' data_seed: Compacter's seq2seq/data/tasks.py:60-79, 107-117, Hyperformer's data/tasks.py)
SUBSAMPLES = ("per-seed", "seed-42")
FIXTURES_SOURCE = "fixtures"
LABEL_STYLES = ("names", "digits")


@dataclass(frozen=True)
class TextFormat:
    """How an example becomes text, where the original code and T5's convention differ.

    ``prefix``: the source starts with the task's prefix (``rte sentence1: …``); ``labels``:
    targets are label names (``entailment``, T5's label texts) or the hub's label index as text
    (``"0"``). The default, names without a prefix, is peftbench's earlier format; the original
    Compacter code's is ``TextFormat(prefix=p, labels="digits")`` with
    ``p = methods.resolve_prefix("auto", method)`` (no prefix for the adapter family).
    """

    prefix: bool = False
    labels: Literal["names", "digits"] = "names"

    def __post_init__(self):
        if not isinstance(self.prefix, bool):
            raise TypeError(f"TextFormat.prefix must be True or False, got {self.prefix!r}")
        if self.labels not in LABEL_STYLES:
            raise ValueError(f"TextFormat.labels must be one of {', '.join(LABEL_STYLES)}, got {self.labels!r}")


T5_STYLE = TextFormat()


class DataUnavailable(RuntimeError):
    """``data="hub"`` and the hub could not give the dataset."""


class Loaded(NamedTuple):
    """Splits and where they came from: ``"fixtures"`` or ``"hub:<path>/<config>@<revision>"``."""

    splits: dict[str, list[dict]]
    source: str


_FALLBACK_WARNED: set[str] = set()  # tasks already warned about, so a sweep warns once per task


@dataclass(frozen=True, kw_only=True)
class Task:
    """What every task declares. Kinds (label classification, ReCoRD) add targets and scoring.

    ``hub_splits`` maps our split names to the hub's; naming a ``test`` split there (MNLI) skips
    the size rule. ``unit`` keys the rows that must stay together in a split and that the size
    rule counts (MultiRC: the answer options of one question); ``None``: each row alone.
    ``prefix`` is what ``TextFormat(prefix=True)`` prepends; ``None``: the task's name.
    """

    name: str
    version: str
    hub_path: str
    hub_config: str
    revision: str
    formatter: Callable[[dict], str]
    metrics: tuple[Metric, ...]
    max_source_length: int = 128
    epochs: int = 3  # the paper's epochs on the full training set
    hub_splits: Mapping[str, str] = field(default_factory=lambda: {"train": "train", "validation": "validation"})
    unit: Callable[[dict], Hashable] | None = None
    prefix: str | None = None

    @property
    def max_target_length(self) -> int:
        raise NotImplementedError

    @property
    def all_metrics(self) -> tuple[Metric, ...]:
        """Every registered metric the task reports (a kind's extra ones too)."""
        return tuple(self.metrics)

    @property
    def metric_names(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.all_metrics)

    @property
    def metric_directions(self) -> dict[str, str]:
        """Each metric's name and which way it is better (``higher`` or ``lower``), as records carry them."""
        return {m.name: m.direction for m in self.all_metrics}

    @property
    def score_direction(self) -> str:
        """Which way the task's score (a mean of its ``scored_metrics``) is better: theirs, all one way."""
        directions = {self.metric_directions[name] for name in self.scored_metrics}
        if len(directions) != 1:
            raise ValueError(f"{self.name}: its score averages metrics of both directions ({self.metric_directions})")
        return directions.pop()

    @property
    def hub_source(self) -> str:
        return f"hub:{self.hub_path}/{self.hub_config}@{self.revision}"

    def source(self, example: dict, fmt: TextFormat = T5_STYLE) -> str:
        text = self.formatter(example)
        return f"{self.prefix or self.name} {text}" if fmt.prefix else text

    def target(self, example: dict, fmt: TextFormat = T5_STYLE) -> str:
        raise NotImplementedError

    def compute_metrics(self, predictions: list[str], examples: list[dict],
                        fmt: TextFormat = T5_STYLE) -> dict[str, float]:
        """Metrics (×100) of generated texts against the examples, plus ``invalid`` (outputs that
        could not be read) and ``examples`` (outputs scored): ``tasks.metrics.COUNTS``."""
        raise NotImplementedError

    def evaluated_on(self, split: str) -> Task:
        """The task as ``split`` is scored (a kind may leave costly metrics to the test split)."""
        return self

    def sample(self, output: str, example: dict, fmt: TextFormat = T5_STYLE) -> dict:
        """One row as ``log_samples`` keeps it: input, target, what the model said, and the row's
        scores (the task's metrics over this row alone; a kind may say it more plainly)."""
        scores = self.compute_metrics([output], [example], fmt)
        return {"task": self.name, "source": self.source(example, fmt), "target": self.target(example, fmt),
                "output": output, "invalid": bool(scores["invalid"]),
                "scores": {k: v for k, v in scores.items() if k not in COUNTS}}

    def training_examples(self, rows: list[dict]) -> list[dict]:
        """The rows the model trains on; a task with several targets per row expands them here."""
        return rows

    def encoder(self, data_source: str) -> str | None:
        """The image encoder this task's pictures are read with, for data from ``data_source``
        (tasks/vl.py); None: a text task. ``trial_model`` puts it into the trial's model."""
        return None

    @property
    def images_per_example(self) -> int:
        """Images each example shows the model beside its text (0: a text task); a VL task's tasks/vl.py."""
        return 0

    def model_inputs(self, splits: dict[str, list[dict]], *, model: str | ModelSpec, data_source: str,
                     map_fn: Callable = map) -> dict[str, list[dict]] | None:
        """Model inputs beside the text, per row of each split (``{split: [{arg: tensor}]}``); None: text
        only. What must be computed first (a VL task's image features) is mapped by ``map_fn``."""
        return None

    @property
    def scored_metrics(self) -> tuple[str, ...]:
        """The metrics the task's score averages: all of them, unless a kind says otherwise."""
        return self.metric_names

    def score(self, metrics: dict[str, float]) -> float:
        """The task's single number: the mean of its ``scored_metrics`` (never the counts ``COUNTS``)."""
        values = [v for k, v in metrics.items() if k not in COUNTS and k in self.scored_metrics]
        return sum(values) / len(values)

    def load(self, data: str = "auto", *, train_size: int | None = None, seed: int = 0,
             rule: str = "per-seed") -> dict[str, list[dict]]:
        """Train/validation/test examples after the paper's split rule (``load_with_source`` without the source)."""
        return self.load_with_source(data, train_size=train_size, seed=seed, rule=rule).splits

    def load_with_source(self, data: str = "auto", *, train_size: int | None = None, seed: int = 0,
                         rule: str = "per-seed") -> Loaded:
        """Train/validation/test examples after the paper's split rule, and which data they are.

        ``data`` is ``"hub"``, ``"fixtures"`` or ``"auto"`` (the hub, else the fixtures with a
        warning). ``train_size`` subsamples the training split by ``rule`` (``SUBSAMPLES``): the same rows
        for the same ``seed``, or the authors' first N of the seed-42 permutation whatever the seed.
        """
        if rule not in SUBSAMPLES:
            raise ValueError(f"subsample must be one of {', '.join(SUBSAMPLES)}, got {rule!r}")
        raw, source = self.read(data)
        splits = self.split(raw)
        if train_size is not None and rule == "seed-42":
            splits["train"] = first_of_permutation(raw["train"], splits["train"], train_size)
        elif train_size is not None:
            splits["train"] = subsample(splits["train"], train_size, seed=seed)
        splits["train"] = self.training_examples(splits["train"])
        return Loaded(splits, source)

    def split(self, raw: dict[str, list[dict]]) -> dict[str, list[dict]]:
        """Our train/validation/test from the hub's splits (keyed by our names)."""
        if "test" in raw:
            return {k: list(raw[k]) for k in ("train", "validation", "test")}
        return paper_splits(raw["train"], raw["validation"], unit=self.unit)

    def split_sizes(self, raw: dict[str, list[dict]]) -> dict[str, int]:
        """How many units (rows; MultiRC questions) the split rule puts in each split, without
        drawing the permutation (so without torch): the sizes depend only on the counts."""
        if "test" in raw:
            return {k: len(_units(raw[k], self.unit)) for k in ("train", "validation", "test")}
        return paper_split_sizes(len(_units(raw["train"], self.unit)), len(_units(raw["validation"], self.unit)))

    def read(self, data: str) -> tuple[dict[str, list[dict]], str]:
        """The hub's splits (keyed by our names) from the hub or the fixtures, and which it was."""
        if data not in DATA_SOURCES:
            raise ValueError(f"data must be one of {', '.join(DATA_SOURCES)}, got {data!r}")
        if data == "fixtures":
            return self.load_fixtures(), FIXTURES_SOURCE
        hub_reachable()  # once per process; unreachable: offline mode, so no retries below
        try:
            return self.load_hub(), self.hub_source
        except Exception as exc:  # offline, hub down, auth, datasets missing: fall back only when asked to
            reason = _one_line(exc)
            if data == "hub":
                raise DataUnavailable(f"{self.name}: could not load {self.hub_source}: {reason}") from exc
            self._warn_fallback(reason)
            return self.load_fixtures(), FIXTURES_SOURCE

    def _warn_fallback(self, reason: str) -> None:
        # Loud, because fixture numbers look like results; once per task, because a sweep loads often.
        if self.name in _FALLBACK_WARNED:
            return
        _FALLBACK_WARNED.add(self.name)
        log.warning("%s: USING THE OFFLINE FIXTURES, NOT THE BENCHMARK: %s could not be loaded (%s). "
                    "Fixtures are small synthetic data; their scores are no paper numbers. "
                    "data='hub' makes this an error.", self.name, self.hub_source, reason)

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

    ``label_texts`` are the names (``TextFormat(labels="names")``); ``label_digits`` the texts under
    ``labels="digits"``, by default the label index as text (``str(label)``, the original code's
    targets). ``group_metrics`` take (predictions, references, units) for metrics over groups of rows.
    """

    label_texts: tuple[str, ...]
    label_digits: tuple[str, ...] | None = None
    label: Callable[[dict], int] = hub_label
    group_metrics: tuple[Metric, ...] = ()

    def __post_init__(self):
        if self.group_metrics and self.unit is None:
            raise ValueError(f"{self.name}: group metrics need a unit to group by")
        if self.label_digits is not None and len(self.label_digits) != len(self.label_texts):
            raise ValueError(f"{self.name}: {len(self.label_digits)} digit texts for {len(self.label_texts)} labels")

    def texts(self, fmt: TextFormat = T5_STYLE) -> tuple[str, ...]:
        """The target text of each label index in format ``fmt``."""
        if fmt.labels == "names":
            return self.label_texts
        return self.label_digits or tuple(str(i) for i in range(len(self.label_texts)))

    @property
    def max_target_length(self) -> int:
        """Bytes of the longest label text in either style plus the end-of-sequence token (ByT5 counts bytes)."""
        texts = self.texts(TextFormat(labels="names")) + self.texts(TextFormat(labels="digits"))
        return max(len(t.encode()) for t in texts) + 1

    @property
    def all_metrics(self) -> tuple[Metric, ...]:
        return tuple(self.metrics) + tuple(self.group_metrics)

    def target(self, example: dict, fmt: TextFormat = T5_STYLE) -> str:
        return self.texts(fmt)[self.label(example)]

    def parse(self, prediction: str, fmt: TextFormat = T5_STYLE) -> int:
        """Map generated text to a label index; anything but a label text of ``fmt`` is ``INVALID``, never an error."""
        texts, text = self.texts(fmt), prediction.strip()
        return texts.index(text) if text in texts else INVALID

    def sample(self, output: str, example: dict, fmt: TextFormat = T5_STYLE) -> dict:
        """A label task's row: right or wrong, and whether the output was a label text at all."""
        parsed = self.parse(output, fmt)
        return {"task": self.name, "source": self.source(example, fmt), "target": self.target(example, fmt),
                "output": output, "invalid": parsed == INVALID,
                "scores": {"correct": float(parsed == self.label(example))}}

    def compute_metrics(self, predictions: list[str], examples: list[dict],
                        fmt: TextFormat = T5_STYLE) -> dict[str, float]:
        preds = [self.parse(p, fmt) for p in predictions]
        refs = [self.label(ex) for ex in examples]
        out: dict[str, float] = {}
        for metric in self.metrics:
            out.update(metric(preds, refs))
        for metric in self.group_metrics:
            out.update(metric(preds, refs, [self.unit(ex) for ex in examples]))
        out["invalid"] = sum(p == INVALID for p in preds)
        out["examples"] = len(preds)
        return out


def paper_splits(
    train: list[dict], validation: list[dict], *, unit: Callable[[dict], Hashable] | None = None
) -> dict[str, list[dict]]:
    """The paper's splits, drawn as the original code draws them (``permuted``): under 10k training
    units, the permuted validation set's first half is validation, the rest test, and train is kept
    as it is; otherwise the first 1,000 of the permuted training units are validation, the rest train
    (in permuted order), and the hub's validation is test. The permutation runs over units, so a
    MultiRC question stays whole (the original code permutes answer rows and can split a question)."""
    train_units = _units(train, unit)
    if len(train_units) < SMALL_DATASET:
        val = permuted(_units(validation, unit))
        half = len(val) // 2
        return {"train": list(train), "validation": _flat(val[:half]), "test": _flat(val[half:])}
    perm = permuted(train_units)
    return {
        "train": _flat(perm[VALIDATION_FROM_TRAIN:]),
        "validation": _flat(perm[:VALIDATION_FROM_TRAIN]),
        "test": list(validation),
    }


def paper_split_sizes(train_units: int, validation_units: int) -> dict[str, int]:
    """Units per split under ``paper_splits``, from the counts alone."""
    if train_units < SMALL_DATASET:
        half = validation_units // 2
        return {"train": train_units, "validation": half, "test": validation_units - half}
    held_out = min(VALIDATION_FROM_TRAIN, train_units)
    return {"train": train_units - held_out, "validation": held_out, "test": validation_units}


def permuted(items: list) -> list:
    """``items`` in the order of ``torch.randperm(len(items))`` from a generator seeded with 42,
    the original code's split permutation (so the same rows land in each split as there)."""
    import torch  # here, not at the top: listing tasks must not pay for importing torch

    order = torch.randperm(len(items), generator=torch.Generator().manual_seed(SPLIT_SEED)).tolist()
    return [items[i] for i in order]


def subsample(rows: list[dict], size: int, *, seed: int) -> list[dict]:
    """``size`` rows drawn without replacement; the same rows for the same seed on every machine."""
    if size < 1 or size > len(rows):
        raise ValueError(f"train_size {size} is not between 1 and the {len(rows)} training examples")
    return random.Random(seed).sample(rows, size)


def first_of_permutation(hub_train: list[dict], train: list[dict], size: int) -> list[dict]:
    """The first ``size`` training rows in the order of the seed-42 permutation of the hub's training rows
    (``permuted``), the same for every trial seed: the authors' low-resource subsets. Compacter permutes the
    hub's train and takes its first N on small sets (seq2seq/data/tasks.py:60-79, 113-117); on large ones
    the same permutation's first 1,000 are validation and the N after them train (:84-89, 107-111) — both
    are the permutation's first N rows that are training rows. A split rule whose training rows are not
    the hub's own (a VL task's) takes the first N of its training rows' own seed-42 permutation."""
    if size < 1 or size > len(train):
        raise ValueError(f"train_size {size} is not between 1 and the {len(train)} training examples")
    kept = {id(row) for row in train}
    if kept <= {id(row) for row in hub_train}:
        return [row for row in permuted(hub_train) if id(row) in kept][:size]
    return permuted(train)[:size]


def _units(rows: list[dict], unit: Callable[[dict], Hashable] | None) -> list[list[dict]]:
    """Rows grouped by unit, units in order of first appearance, rows in their order."""
    if unit is None:
        return [[r] for r in rows]
    groups: dict[Hashable, list[dict]] = {}
    for r in rows:
        groups.setdefault(unit(r), []).append(r)
    return list(groups.values())


def _flat(units: list[list[dict]]) -> list[dict]:
    return [r for u in units for r in u]


def _one_line(exc: BaseException) -> str:
    """An exception as ``Type: first line of its message``, for a one-line log or error."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def trial_model(model: str | ModelSpec, members: Sequence[Task], source_of: Callable[[Task], str]) -> ModelSpec:
    """The one model a trial of ``members`` loads: ``model`` as named, reading the image encoder its VL
    members use for their data (``source_of(task)``) unless the name chose one. Members that need
    different encoders, or a mixture of text and VL tasks, are refused (ValueError)."""
    spec = ModelSpec.parse(model)
    encoders = {t.encoder(source_of(t)) for t in members}
    if None in encoders and len(encoders) > 1:
        raise ValueError(f"{', '.join(t.name for t in members)}: text tasks and image-text tasks cannot be "
                         "trained as one model")
    encoders.discard(None)
    if len(encoders) > 1 and not spec.encoder:
        raise ValueError(f"{', '.join(t.name for t in members)}: the tasks read their images with different "
                         f"encoders ({', '.join(sorted(encoders))}); name one in the model (T5+ENCODER)")
    return spec.with_encoder(encoders.pop()) if encoders else spec

