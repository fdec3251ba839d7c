"""Tasks declared in a YAML file instead of code: the user's own data (jsonl, csv, tsv, parquet, or a
hub dataset at a pinned revision), the input as a template over an example's fields, the target as
a label field with its label texts (or a binned number) or free text, metrics by name from the metric
registry.

A file holds one task (its keys at the top) or several (``tasks: [...]``)::

    name: my-sentiment
    data: {train: train.jsonl, validation: dev.jsonl}     # or {file: all.jsonl}, or {hub: ID[/CONFIG]@REV}
    input: "review: {text}"
    target: {label: label, texts: [negative, positive]}   # or {regression: score, steps_per_unit: 5, range: [0, 5]}
                                                          # or {text: answer, max_length: 64}
    metrics: [accuracy]
    split: paper                                          # or given, or {validation: 0.1, test: 0.1}

Every mistake is one ``TaskFileError`` line naming the file and the key. Reading a task file reads
its data too (to check the template's fields and the labels, and to hash the files), so a task that
loads is a task that runs; the result is a plain ``ClassificationTask`` (a free-text target: a
``DeclaredTextTask``, scored by text metrics) that pickles by value.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import random
import string
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import yaml

from peftbench.files import read_bytes
from peftbench.tasks.base import FIXTURES, SPLIT_SEED, T5_STYLE, ClassificationTask, Task, TextFormat
from peftbench.tasks.metrics import LABELS, NUMBERS, TEXTS, VALUES, get_metric, macro_f1_over, metrics_reading
from peftbench.tasks.record import scored_texts

SPLIT_NAMES = ("train", "validation", "test")
DATA_SUFFIXES = (".jsonl", ".csv", ".tsv", ".parquet")
DATA_CAP = 4 * 1024**3  # a data file larger than this is no fixture-sized local task; use the hub
TASK_KEYS = {"name", "version", "data", "input", "target", "metrics", "max_source_length", "epochs", "split",
             "prefix"}
SPLIT_RULES = ("paper", "given")
MEASURE = "measure"
TEXT_METRICS = ("squad_em", "squad_f1")  # a free-text target's metrics where the file names none
TEXT_LENGTH = 64  # a free-text target's tokens at most where the file does not say (ReCoRD's)


class TaskFileError(ValueError):
    """A task file that cannot be used, in one line: ``FILE: KEY: what is wrong``."""


@dataclass(frozen=True)
class Template:
    """An example's fields into the input text: ``"premise: {premise}"`` -> ``"premise: A dog runs."``."""

    text: str

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(name for _, name, _, _ in string.Formatter().parse(self.text) if name)

    def __call__(self, example: dict) -> str:
        return self.text.format_map(example)


@dataclass(frozen=True)
class LabelOf:
    """A label field's value as a label index: an index already, or one of the label texts (or digits)."""

    name: str
    texts: tuple[str, ...]
    digits: tuple[str, ...] = ()

    def __call__(self, example: dict) -> int:
        value = example[self.name]
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise ValueError(f"label {value!r} is neither a label index nor a label text")
        if isinstance(value, str):
            for texts in (self.texts, self.digits):
                if value in texts:
                    return texts.index(value)
            if not value.lstrip("-").isdigit():
                raise ValueError(f"label {value!r} is not one of {', '.join(self.texts)}")
            value = int(value)  # csv and tsv give every value as text
        if not 0 <= value < len(self.texts):
            raise ValueError(f"label {value} is outside the {len(self.texts)} label texts")
        return value


@dataclass(frozen=True)
class Binned:
    """A number as the index of its bin: rounded to the nearest 1/``steps_per_unit`` above ``low``,
    ties up (STS-B: 5 steps per unit from 0, 2.53 -> 13, whose text is "2.6")."""

    name: str
    steps_per_unit: int
    low: float

    def __call__(self, example: dict) -> int:
        return math.floor((float(example[self.name]) - self.low) * self.steps_per_unit + 0.5)


@dataclass(frozen=True)
class TextOf:
    """A free-text field's reference texts, any one of them right: ``"Paris"`` -> ``("Paris",)``,
    ``["Paris", "paris, France"]`` -> both."""

    name: str

    def __call__(self, example: dict) -> tuple[str, ...]:
        value = example[self.name]
        texts = [value] if isinstance(value, str) else value
        if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
            raise ValueError(f"{self.name} {value!r} is neither a text nor a list of texts")
        return tuple(texts)


def bin_texts(steps_per_unit: int, low: float, high: float) -> tuple[str, ...]:
    """Each bin's text, with as many decimals as a step needs (5 steps per unit: "0.0" … "5.0")."""
    decimals = next(d for d in range(7) if all(abs(round(k / steps_per_unit, d) - k / steps_per_unit) < 1e-9
                                               for k in range(steps_per_unit)))
    count = round((high - low) * steps_per_unit) + 1
    return tuple(f"{low + k / steps_per_unit:.{decimals}f}" for k in range(count))


@dataclass(frozen=True, kw_only=True)
class DeclaredData:
    """Where a task file's task gets its data, whatever its target: local files (hashed) or the hub,
    split by its rule. A kind of task comes after it (``DeclaredTask``, ``DeclaredTextTask``).

    ``files``: our split name -> (absolute path, sha256) for local data, empty for hub data;
    ``split_rule_name``: ``paper``, ``given`` or fractions of one file; ``file_sha256``: the task
    file's hash, so records can tell two versions of a task apart; ``declaration``: the entry as
    read, what a sweep sends its workers (``task_from_declaration``) instead of the task object."""

    files: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    split_rule_name: str | Mapping[str, float] = "paper"
    file_sha256: str = ""
    declared_in: str = ""
    declaration: Mapping = field(default_factory=dict)

    @property
    def sent(self) -> dict:
        """What a worker needs to rebuild this task without the task file: plain data, pickled anywhere."""
        return {"entry": dict(self.declaration), "declared_in": self.declared_in, "file_sha256": self.file_sha256,
                "files": {k: list(v) for k, v in self.files.items()}}

    @property
    def split_description(self) -> str | None:
        """The split rule in words where the catalog's (the paper's rule, or the hub's named splits) is not it."""
        rule = self.split_rule_name
        if isinstance(rule, Mapping):
            return (f"one file shuffled with seed {SPLIT_SEED}: {rule.get('validation', 0):.0%} validation, "
                    f"{rule.get('test', 0):.0%} test, the rest train")
        return "train, validation and test as given" if rule == "given" else None

    @property
    def data_source(self) -> str:
        """``file:<name>@sha256:<hash>`` for each local file, then ``task:<task file>@sha256:<hash>``
        (``+``-joined: records of another version of the data or the task are never pooled); or the
        hub's source (a built-in task's, as before task files)."""
        if not self.files:
            return self.hub_source
        files = [f"file:{Path(p).name}@sha256:{h}" for p, h in self.files.values()]
        return "+".join([*files, f"task:{Path(self.declared_in).name}@sha256:{self.file_sha256}"])

    def read(self, data: str) -> tuple[dict[str, list[dict]], str]:
        if not self.files:
            return super().read(data)
        return {split: read_rows(Path(p)) for split, (p, _) in self.files.items()}, self.data_source

    def split(self, raw: dict[str, list[dict]]) -> dict[str, list[dict]]:
        rule = self.split_rule_name
        if isinstance(rule, Mapping):
            return fraction_splits(raw["all"], rule)
        if rule == "given":
            return {k: list(raw[k]) for k in SPLIT_NAMES}
        return super().split(raw)

    def split_sizes(self, raw: dict[str, list[dict]]) -> dict[str, int]:
        if isinstance(self.split_rule_name, Mapping):
            return {k: len(v) for k, v in fraction_splits(raw["all"], self.split_rule_name).items()}
        if self.split_rule_name == "given":
            return {k: len(raw[k]) for k in SPLIT_NAMES}
        return super().split_sizes(raw)


@dataclass(frozen=True, kw_only=True)
class DeclaredTask(DeclaredData, ClassificationTask):
    """A task file's task with a label (or a binned number) for a target."""

    def check_target(self, example: dict) -> None:
        self.label(example)


@dataclass(frozen=True, kw_only=True)
class DeclaredTextTask(DeclaredData, Task):
    """A task file's task with free text for a target, scored by text metrics (``TEXTS``) against every
    reference of a row; trained on each distinct reference, as ReCoRD. An output with no words left after
    normalisation (empty, only punctuation or articles) can match nothing: counted ``invalid``."""

    answers: TextOf
    target_length: int = TEXT_LENGTH

    @property
    def max_target_length(self) -> int:
        return self.target_length

    def check_target(self, example: dict) -> None:
        self.answers(example)

    def target(self, example: dict, fmt: TextFormat = T5_STYLE) -> str:
        """The row's first reference, in every format (it is text, not a label)."""
        return self.answers(example)[0]

    def training_examples(self, rows: list[dict]) -> list[dict]:
        return [{**r, self.answers.name: a} for r in rows for a in dict.fromkeys(self.answers(r))]

    def compute_metrics(self, predictions: list[str], examples: list[dict],
                        fmt: TextFormat = T5_STYLE) -> dict[str, float]:
        return scored_texts(self.metrics, predictions, [list(self.answers(ex)) for ex in examples])


def fraction_splits(rows: list[dict], fractions: Mapping[str, float]) -> dict[str, list[dict]]:
    """One file into train/validation/test: the rows shuffled with the split seed, then the first
    ``fractions["validation"]`` of them validation, the next ``fractions["test"]`` test, the rest train."""
    order = list(rows)
    random.Random(SPLIT_SEED).shuffle(order)
    n_val, n_test = (round(len(order) * fractions.get(k, 0.0)) for k in ("validation", "test"))
    return {"train": order[n_val + n_test:], "validation": order[:n_val], "test": order[n_val:n_val + n_test]}


def read_rows(path: Path) -> list[dict]:
    """A data file's rows as dicts, by its suffix; ``ValueError`` (one line) for bytes that are not UTF-8."""
    raw = read_bytes(path, kind="data", cap=DATA_CAP, follow=True)
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(io.BytesIO(raw)).to_pylist()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not UTF-8 (byte {exc.start})") from None
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    return list(csv.DictReader(io.StringIO(text), delimiter="\t" if path.suffix == ".tsv" else ","))


def task_from_declaration(sent: Mapping) -> DeclaredTask | DeclaredTextTask:
    """The task a sweep's driver read (``DeclaredTask.sent``), rebuilt where the task file is not:
    its data files are read at the paths the driver resolved, and must hash as they did there."""
    task = _Reader(Path(sent["declared_in"]), None).task(sent["entry"], sent["file_sha256"])
    for split, (path, digest) in sent["files"].items():
        if task.files.get(split, (path, digest))[1] != digest:
            raise TaskFileError(f"{path}: changed since the sweep read it (sha256 {digest[:12]}…, now "
                                f"{task.files[split][1][:12]}…)")
    return task


def load_task_file(path: str | Path) -> list[DeclaredTask | DeclaredTextTask]:
    """Every task a task file declares, its data read and checked (``TaskFileError`` on a mistake)."""
    path = Path(path).absolute()
    try:
        raw = read_bytes(path, kind="config", follow=True)
    except OSError as exc:
        raise TaskFileError(f"{path}: cannot read the task file ({exc.strerror or exc})") from None
    try:
        doc = yaml.safe_load(raw.decode("utf-8"))
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        raise TaskFileError(f"{path}: not a YAML file in UTF-8 ({str(exc).splitlines()[0]})") from None
    entries = doc.get("tasks") if isinstance(doc, dict) and "tasks" in doc else [doc]
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries) or not entries:
        raise TaskFileError(f"{path}: tasks: expected a task (a mapping) or a list of them under 'tasks'")
    if len(entries) > 1 or "tasks" in doc:  # keys every task of the file shares, each task's own winning
        defaults = doc.get("defaults", {})
        if not isinstance(defaults, dict) or set(doc) - {"tasks", "defaults"}:
            raise TaskFileError(f"{path}: defaults: a file of several tasks has 'tasks' and 'defaults' "
                                "(a mapping of keys every task shares) at its top")
        entries = [{**defaults, **entry} for entry in entries]
    sha = hashlib.sha256(raw).hexdigest()
    tasks = [_Reader(path, i if "tasks" in doc else None).task(entry, sha) for i, entry in enumerate(entries)]
    names = [t.name for t in tasks]
    if dup := sorted({n for n in names if names.count(n) > 1}):
        raise TaskFileError(f"{path}: name: {', '.join(dup)} declared twice")
    return tasks


TASK_FILE_SUFFIXES = (".yaml", ".yml")


def task_in_file(ref: str) -> DeclaredTask | DeclaredTextTask | None:
    """The task ``FILE.yaml[:NAME]`` means (``peftbench trial --task``): task NAME of the file, or the file's
    one task; None where ``ref`` names no task file (a task's name). A file of several tasks without a
    NAME, or a NAME it does not declare, is a ``TaskFileError`` naming the file and its tasks."""
    file, _, name = ref.rpartition(":") if not ref.endswith(TASK_FILE_SUFFIXES) else (ref, "", "")
    if not file.endswith(TASK_FILE_SUFFIXES):
        return None
    tasks = load_task_file(file)
    names = ", ".join(t.name for t in tasks)
    if not name and len(tasks) > 1:
        raise TaskFileError(f"{Path(file).absolute()}: name: the file declares {names}; name one (FILE:NAME)")
    found = [t for t in tasks if t.name == name or not name]
    if not found:
        raise TaskFileError(f"{Path(file).absolute()}: name: no task {name!r} in the file (it declares {names})")
    return found[0]


@dataclass
class _Reader:
    """Reads one task's entry of a task file; ``fail`` names the file and the key."""

    path: Path
    index: int | None

    def fail(self, key: str, what: str) -> TaskFileError:
        where = f"tasks[{self.index}]." if self.index is not None else ""
        return TaskFileError(f"{self.path}: {where}{key}: {what}")

    def need(self, entry: dict, key: str, kind: type | tuple[type, ...], what: str):
        if key not in entry:
            raise self.fail(key, f"missing; expected {what}")
        if not isinstance(entry[key], kind) or (isinstance(entry[key], bool) and kind is not bool):
            raise self.fail(key, f"expected {what}, got {entry[key]!r}")
        return entry[key]

    def task(self, entry: dict, sha: str) -> DeclaredTask | DeclaredTextTask:
        if unknown := sorted(set(entry) - TASK_KEYS):
            raise self.fail(unknown[0], f"unknown key (known: {', '.join(sorted(TASK_KEYS))})")
        name = self.need(entry, "name", str, "the task's name")
        template = Template(self.need(entry, "input", str, 'a template over the fields, "premise: {premise}"'))
        target = self.target(self.need(entry, "target", dict, "{label: FIELD, texts: [...]}, {regression: ...} "
                                                              "or {text: FIELD}"))
        data, split_rule = self.data(self.need(entry, "data", dict, "{train: FILE, validation: FILE}, {file: FILE} "
                                                                     "or {hub: ID[/CONFIG]@REVISION}"), entry)
        free_text = "answers" in target
        metrics = self.metrics(entry.get("metrics", list(TEXT_METRICS) if free_text else ["accuracy"]), target)
        kind = DeclaredTextTask if free_text else DeclaredTask
        task = kind(name=name, version=str(entry.get("version", "1.0.0")), formatter=template,
                    metrics=metrics, epochs=self.positive(entry, "epochs", 3), prefix=entry.get("prefix"),
                    split_rule_name=split_rule, file_sha256=sha, declared_in=str(self.path), declaration=entry,
                    **data, **target)
        rows = self.check_data(task, template)
        # bytes bound tokens from above for T5's vocabulary and equal them for ByT5's
        task = replace(task, max_source_length=self.length(entry, "max_source_length", 128, rows,
                                                           lambda ex: [template(ex)]))
        if free_text:
            task = replace(task, target_length=self.length(entry["target"], "max_length", TEXT_LENGTH, rows,
                                                           task.answers, key="target.max_length"))
        return task

    def length(self, spec: dict, name: str, default: int, rows: dict[str, list[dict]], texts, *,
               key: str | None = None) -> int:
        """A length in tokens as ``spec[name]`` says it: a positive integer, or ``measure``: the longest of
        ``texts(example)`` over the data in bytes, plus the end of the sequence (hub data without
        fixtures has no rows to measure: the default)."""
        value = spec.get(name, default)
        if value == MEASURE:
            found = [len(t.encode()) for split in rows.values() for ex in split for t in texts(ex)]
            return max(found) + 1 if found else default
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise self.fail(key or name, f"expected a positive integer or '{MEASURE}', got {value!r}")
        return value

    def positive(self, entry: dict, key: str, default: int) -> int:
        value = entry.get(key, default)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise self.fail(key, f"expected a positive integer, got {value!r}")
        return value

    def target(self, spec: dict) -> dict:
        """The task's target fields from ``target``: a label field with its texts, a binned number, or a
        field of free text (``answers``)."""
        if "text" in spec:
            if unknown := sorted(set(spec) - {"text", "max_length"}):
                raise self.fail(f"target.{unknown[0]}", "unknown key (known: text, max_length)")
            return {"answers": TextOf(self.need(spec, "text", str, "the field of the target text"))}
        if "label" in spec:
            texts = self.texts(spec, "texts", required=True)
            digits = self.texts(spec, "digits", required=False)
            if digits and len(digits) != len(texts):
                raise self.fail("target.digits", f"{len(digits)} digit texts for {len(texts)} label texts")
            name = self.need(spec, "label", str, "the label's field")
            return {"label": LabelOf(name, texts, digits), "label_texts": texts, "label_digits": digits or None}
        if "regression" in spec:
            name = self.need(spec, "regression", str, "the number's field")
            steps = self.need(spec, "steps_per_unit", int, "how many bins per unit (5: steps of 0.2)")
            bounds = spec.get("range")
            if not (isinstance(bounds, list) and len(bounds) == 2 and all(isinstance(b, (int, float)) for b in bounds)
                    and bounds[0] < bounds[1] and steps >= 1):
                raise self.fail("target.range", f"expected [LOW, HIGH] with LOW < HIGH, got {bounds!r}")
            texts = bin_texts(steps, *bounds)
            return {"label": Binned(name, steps, bounds[0]), "label_texts": texts, "label_digits": texts}
        raise self.fail("target", "expected {label: FIELD, texts: [...]}, {regression: FIELD, steps_per_unit: N, "
                                  "range: [LOW, HIGH]} or {text: FIELD}")

    def texts(self, spec: dict, key: str, *, required: bool) -> tuple[str, ...]:
        value = spec.get(key)
        if value is None and not required:
            return ()
        if not isinstance(value, list) or len(value) < 2 or not all(isinstance(t, str) and t.strip() for t in value):
            raise self.fail(f"target.{key}", f"expected a list of two or more label texts, got {value!r}")
        if len(set(value)) != len(value):
            raise self.fail(f"target.{key}", "a label text appears twice (a prediction could not say which label)")
        return tuple(value)

    def metrics(self, names, target: dict) -> tuple:
        """The registered metrics ``names``, each of a kind the target gives: text metrics for free text,
        label (or number) metrics for a label."""
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            raise self.fail("metrics", f"expected a list of metric names, got {names!r}")
        free_text, out = "answers" in target, []
        for name in names:
            try:
                metric = get_metric(name)
            except KeyError as exc:
                raise self.fail("metrics", exc.args[0]) from None
            if free_text and metric.inputs != TEXTS:
                raise self.fail("metrics", f"{name} reads {metric.inputs}; a free-text target is scored by a text "
                                           f"metric ({', '.join(metrics_reading(TEXTS))})")
            if name == "macro_f1":
                metric = macro_f1_over(len(target["label_texts"]))
            elif not free_text and metric.inputs not in (VALUES, LABELS, NUMBERS):
                raise self.fail("metrics", f"{name} reads {metric.inputs}; a declared label task scores one "
                                           "label per row")
            out.append(metric)
        return tuple(out)

    def data(self, spec: dict, entry: dict) -> tuple[dict, str | dict]:
        """Where the data is (keyword arguments of ``DeclaredTask``) and the split rule."""
        rule = entry.get("split", "paper")
        if not (rule in SPLIT_RULES or isinstance(rule, dict)):
            raise self.fail("split", f"expected {' or '.join(SPLIT_RULES)} or {{validation: F, test: F}}, got {rule!r}")
        if "hub" in spec:
            return self.hub(spec, rule), rule
        if "file" in spec:
            if not isinstance(rule, dict):
                raise self.fail("split", "one data file needs fractions to split by: {validation: 0.1, test: 0.1}")
            bad = {k: v for k, v in rule.items() if k not in ("validation", "test") or not isinstance(v, float)
                   or not 0 < v < 1}
            if bad or sum(rule.values()) >= 1:
                raise self.fail("split", f"expected fractions of validation and test below 1 in all, got {rule!r}")
            return self.local({"all": spec["file"]}), rule
        if unknown := sorted(set(spec) - set(SPLIT_NAMES)):
            raise self.fail(f"data.{unknown[0]}", "unknown key (known: file, hub, splits, train, validation, test)")
        needed = SPLIT_NAMES if rule == "given" else SPLIT_NAMES[:2]
        if isinstance(rule, dict) or any(s not in spec for s in needed):
            raise self.fail("data", f"split {rule!r} needs files for {', '.join(needed)}")
        return self.local({s: spec[s] for s in needed}), rule

    def hub(self, spec: dict, rule) -> dict:
        ref = self.need(spec, "hub", str, "ID[/CONFIG]@REVISION")
        ident, _, revision = ref.partition("@")
        parts = ident.split("/")
        if not revision or len(parts) not in (2, 3) or not all(parts):
            raise self.fail("data.hub", f"expected OWNER/NAME[/CONFIG]@REVISION (a pinned revision), got {ref!r}")
        splits = spec.get("splits", {"train": "train", "validation": "validation"})
        if not isinstance(splits, dict) or not set(splits) <= set(SPLIT_NAMES) or "train" not in splits:
            raise self.fail("data.splits", f"expected a map of {', '.join(SPLIT_NAMES)} to the hub's splits")
        return {"hub_path": "/".join(parts[:2]), "hub_config": parts[2] if len(parts) == 3 else None,
                "revision": revision, "hub_splits": splits}

    def local(self, files: dict) -> dict:
        """Each split's file, resolved against the task file's folder, checked and hashed."""
        out = {}
        for split, name in files.items():
            key = "data.file" if split == "all" else f"data.{split}"
            if not isinstance(name, str):
                raise self.fail(key, f"expected a file name, got {name!r}")
            path = (self.path.parent / name).resolve()
            if path.suffix not in DATA_SUFFIXES:
                raise self.fail(key, f"{name}: expected a {', '.join(DATA_SUFFIXES)} file")
            if not path.is_file():
                raise self.fail(key, f"{name}: no such file ({path})")
            digest = hashlib.sha256(read_bytes(path, kind="data", cap=DATA_CAP, follow=True)).hexdigest()
            out[split] = (str(path), digest)
        return {"files": out, "hub_path": "", "hub_config": "", "revision": ""}

    def check_data(self, task: DeclaredTask | DeclaredTextTask, template: Template) -> dict[str, list[dict]]:
        """The data's rows, after checking every split has some, every row has the template's fields
        and a label the target knows. Hub data is checked on its fixtures where the package has them."""
        if not task.files and not (FIXTURES / task.name).is_dir():
            return {}
        try:
            raw, _ = task.read("fixtures")
        except ValueError as exc:  # not UTF-8
            raise self.fail("data", str(exc)) from None
        for split, rows in raw.items():
            where = Path(task.files[split][0]).name if task.files else f"fixtures {split}"
            if not rows:
                raise self.fail(f"data.{'file' if split == 'all' else split}", f"{where}: no rows")
            for i, row in enumerate(rows):
                if missing := [f for f in template.fields if f not in row]:
                    raise self.fail("input", f"field {missing[0]!r} is not in {where} row {i + 1} "
                                             f"(it has: {', '.join(row)})")
                try:
                    task.check_target(row)
                except KeyError as exc:
                    raise self.fail("target", f"{where} row {i + 1}: no field {exc}") from None
                except (ValueError, TypeError) as exc:
                    raise self.fail("target", f"{where} row {i + 1}: {exc}") from None
        return raw
