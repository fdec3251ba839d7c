"""Sweep specs: YAML validated into a typed ``SweepSpec`` before anything runs.

Every error names the file, the key and what was expected, in one line (``SpecError``).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import re
import reprlib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import yaml

from peftbench.budgets.cache import PlannedPeaks
from peftbench.budgets.parse import BudgetError, format_bytes, held_bytes, parse_budget
from peftbench.harness.config import MAX_SEED, ConfigError, TrialConfig, setting_names
from peftbench.methods import method_label


class _Loader(yaml.SafeLoader):
    """YAML that reads ``1e-3`` as a number: PyYAML follows YAML 1.1, whose floats need a dot and a
    signed exponent (``1.0e-3``), and reads ``1e-3`` as a string; YAML 1.2 and Python read a number."""


_Loader.add_implicit_resolver("tag:yaml.org,2002:float",
                              re.compile(r"^[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)[eE][-+]?[0-9]+$"),
                              list("-+0123456789."))


def load_yaml(text: str):
    """A YAML document (a spec, or a ``--option`` value) with YAML 1.2's numbers."""
    return yaml.load(text, Loader=_Loader)  # a SafeLoader with one resolver more


class SpecError(ValueError):
    """A sweep spec that cannot run; the message is one line naming file and key."""


@dataclass(frozen=True)
class MethodSpec:
    name: str
    options: dict = field(default_factory=dict)
    display: str | None = None  # the name tables and figures show (default: the label)

    @property
    def label(self) -> str:
        return method_label(self.name, self.options)


@dataclass(frozen=True)
class SweepSpec:
    """A grid of method × task × learning rate × seed (× training-set size, when given) over a base
    of trial settings (``settings``: the spec's values for ``TrialConfig`` fields; the rest keep
    TrialConfig's defaults).

    ``tasks`` is the grid's task axis: the spec's single tasks, then the name of each of its
    ``mixtures`` (name -> member tasks), whose point trains one model on all its members.

    ``epochs`` and ``batch_size`` are one number, or a mapping from each task (or from each
    training-set size) to one, as the paper sets them per task and per low-resource size; no
    ``epochs``: each task's own (the paper's).
    """

    name: str
    methods: tuple[MethodSpec, ...]
    tasks: tuple[str, ...]
    learning_rates: tuple[float, ...]
    seeds: tuple[int, ...]
    settings: dict = field(default_factory=dict)
    epochs: int | dict | None = None
    batch_size: int | dict | None = None
    train_size: tuple[int | None, ...] = (None,)  # None: the whole training set
    gpu_memory: str | None = None  # one GPU's memory, when the driver cannot see the cluster's GPUs
    cpus_per_trial: int = 1
    max_failures: int = 2  # Ray retries of a trial whose worker or node died
    loggers: tuple[str, ...] = ()  # experiment trackers (harness/loggers.py); not part of the sweep's identity
    mixtures: dict = field(default_factory=dict)  # mixture name -> its member tasks (a tuple)
    task_files: tuple = ()  # the declarations the driver read from the spec's task files (DeclaredTask.sent)

    def identity(self) -> dict:
        """What makes two specs the same sweep (a folder holds one): all but where results are also sent
        (and no empty ``mixtures`` or ``task_files``, so a folder made before them keeps its identity)."""
        return {k: v for k, v in asdict(self).items()
                if k != "loggers" and not (k in ("mixtures", "task_files") and not v)}

    def method(self, label: str) -> MethodSpec:
        return next(m for m in self.methods if m.label == label)

    def trial(
        self, label: str, task: str, learning_rate: float, seed: int, train_size: int | None = None
    ) -> TrialConfig:
        """The trial at one grid point: the spec's settings with the point's overrides."""
        from peftbench.tasks import get_task, use_declarations

        m = self.method(label)
        members = self.mixtures.get(task)
        declared = [t.sent for t in use_declarations(self.task_files) if t.name in (members or (task,))]
        own_epochs = max(get_task(t).epochs for t in members) if members else get_task(task).epochs  # tasks/mixture.py
        epochs = _at(self.epochs, task, train_size) or own_epochs
        batch_size = {"batch_size": _at(self.batch_size, task, train_size)} if self.batch_size else {}
        return TrialConfig(method=m.name, method_options=dict(m.options), task=task, learning_rate=learning_rate,
                           seed=seed, train_size=train_size, epochs=epochs, mixture=members, **self.settings,
                           declarations=tuple(declared), **batch_size)

    def trial_at(self, point: dict) -> TrialConfig:
        """The trial at a Ray Tune grid point (keys: method, task, learning_rate, seed, train_size)."""
        return self.trial(point["method"], point["task"], point["learning_rate"], point["seed"],
                          point.get("train_size"))

    def points(self) -> list[dict]:
        """Every grid point, as ``trial_at`` takes them."""
        grid = itertools.product(
            [m.label for m in self.methods], self.tasks, self.learning_rates, self.seeds, self.train_size
        )
        keys = ("method", "task", "learning_rate", "seed", "train_size")
        return [dict(zip(keys, point, strict=True)) for point in grid]

    def trials(self) -> list[TrialConfig]:
        return [self.trial_at(point) for point in self.points()]

    def workloads(self) -> dict[tuple[str, str, int | None], list[dict]]:
        """The grid's points by (method, task, train size), in ``points()`` order: learning rates and seeds
        share a workload (its batch, lengths, memory and cost), so what depends on it is found once a key."""
        out: dict[tuple, list[dict]] = {}
        for p in self.points():
            out.setdefault((p["method"], p["task"], p["train_size"]), []).append(p)
        return out

    def describe(self) -> str:
        """The grid's size and axes, for ``--dry-run``."""
        sizes = [s for s in self.train_size if s is not None]
        axes = [(len(self.methods), "methods"), (len(self.tasks), "tasks"),
                (len(self.learning_rates), "learning rates"), (len(self.seeds), "seeds")]
        if sizes:
            axes.append((len(sizes), "train sizes"))
        lines = [f"{self.name}: {len(self.points())} trials = " + " × ".join(f"{n} {what}" for n, what in axes),
                 f"  methods: {', '.join(m.label for m in self.methods)}",
                 f"  tasks: {', '.join(self.tasks)}",
                 *(f"  mixture {name}: {' + '.join(members)}" for name, members in self.mixtures.items()),
                 f"  learning rates: {', '.join(f'{lr:g}' for lr in self.learning_rates)}",
                 f"  seeds: {', '.join(map(str, self.seeds))}"]
        if sizes:
            lines.append(f"  train sizes: {', '.join(map(str, sizes))}")
        for key in ("epochs", "batch_size"):
            value = getattr(self, key)
            if key == "epochs" and value is None:  # each task's own, as the paper sets them
                value = {task: self.trial_at(self.points()[0] | {"task": task}).epochs for task in self.tasks}
            shown = ", ".join(f"{k}: {v}" for k, v in value.items()) if isinstance(value, dict) else value
            lines.append(f"  {key.replace('_', ' ')}: {shown}")
        return "\n".join(lines)


def _at(value: int | dict | None, task: str, train_size: int | None) -> int | None:
    """A per-point setting: the number, or the mapping's entry for this train size or task."""
    if value is None or isinstance(value, int):
        return value
    return value[train_size] if train_size in value else value[task]


# keys of the spec itself (not trial settings) -> (expected type(s), description for errors)
_SCALARS = {
    "name": ((str,), "a string"),
    "gpu_memory": ((str,), "one GPU's memory like 80GB"),
    "cpus_per_trial": ((int,), "a positive integer"),
    "max_failures": ((int,), "a non-negative integer"),
}
_REQUIRED = ("model", "methods", "learning_rates", "seeds")  # and tasks, mixtures or both
# Bounds that keep a mistaken or hostile spec from taking the machine: the paper's largest spec is
# under 2 KB, ~60 YAML nodes and ~1,000 grid points.
MAX_SPEC_BYTES = 1 << 20
MAX_SPEC_NODES = 100_000  # counted with aliases expanded: a 1 KB "billion laughs" has 10^9
MAX_SPEC_DEPTH = 20
MAX_GRID_POINTS = 10_000
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")  # a name, never a path


def load_spec(path: str | Path, *, include_paths: tuple[str, ...] = ()) -> SweepSpec:
    """The spec file at ``path``, with the task files of the folders ``include_paths`` (``--include-path``)."""
    path = Path(path)
    raw = with_include_paths(read_yaml(path), include_paths)
    return parse_spec(raw, source=str(path), default_name=re.sub(r"[^A-Za-z0-9._-]", "-", path.stem) or "sweep")


def with_include_paths(raw, folders: tuple[str, ...]):
    """The spec's YAML with each folder of ``--include-path`` added to its ``task_files`` as the spec's own
    would be (every ``.yaml`` file in it), named absolute: the spec's are relative to the spec, these to
    where the command runs. A folder that is missing or holds no task file is refused in one line."""
    for folder in folders:
        if not Path(folder).is_dir():
            raise SpecError(f"--include-path {folder}: no such folder")
        if not any(Path(folder).glob("*.y*ml")):
            raise SpecError(f"--include-path {folder}: no task file (*.yaml) in it")
    own = raw.get("task_files", []) if isinstance(raw, dict) else None
    if not folders or not isinstance(own, list):
        return raw  # a spec (or its task_files) of the wrong kind: parse_spec refuses it in its own words
    return {**raw, "task_files": [*own, *(str(Path(f).resolve()) for f in folders)]}


def read_yaml(path: Path):
    """The spec file's YAML, refused (one line) when it is too large, not UTF-8, or expands past
    ``MAX_SPEC_NODES`` through aliases, before anything is built from it."""
    def fail(msg: str):
        raise SpecError(f"{path}: cannot read the spec: {msg}")

    from peftbench.files import UnsafeFileError, read_bytes

    try:  # a regular file (a link the user named is theirs), at most MAX_SPEC_BYTES, however large it claims to be
        text = read_bytes(path, kind="spec", cap=MAX_SPEC_BYTES, follow=True).decode("utf-8")
    except UnsafeFileError as exc:
        fail(str(exc).removeprefix(f"{path}: "))
    except OSError as exc:
        fail(exc.strerror or str(exc))
    except UnicodeDecodeError as exc:
        fail(f"not UTF-8 text (byte {exc.start})")
    return check_yaml(text, fail)


def check_yaml(text: str, fail, *, max_nodes: int = MAX_SPEC_NODES):
    """``text``'s YAML, refused through ``fail(message)`` when nested past ``MAX_SPEC_DEPTH`` or expanding
    past ``max_nodes`` through aliases, before anything is built from it (the message never shows
    a value)."""
    try:
        _check_nesting(text, fail)
        node = yaml.compose(text, Loader=yaml.SafeLoader)  # aliases stay references to one node here
    except yaml.YAMLError as exc:
        fail(str(exc).splitlines()[0])
    try:
        expanded = _expanded_nodes(node, {}, set(), most=max_nodes) if node is not None else 0
    except ValueError:
        fail("a YAML alias refers to a node that contains it")
    if expanded > max_nodes:
        fail(f"its aliases expand to more than {max_nodes} YAML nodes")
    return load_yaml(text)


def _check_nesting(text: str, fail) -> None:
    """Refuse YAML nested deeper than ``MAX_SPEC_DEPTH``, from the parser's events (which, unlike
    composing a node tree, does not recurse)."""
    depth = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_SPEC_DEPTH:
                fail(f"nested more than {MAX_SPEC_DEPTH} levels deep")
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def _expanded_nodes(node: yaml.Node, sizes: dict[int, int], open_: set[int], *, most: int = MAX_SPEC_NODES) -> int:
    """How many nodes ``node`` stands for once every alias is copied out, counted without copying
    (each node once, memoised); a node that contains itself is refused."""
    key = id(node)
    if key in sizes:
        return sizes[key]
    if key in open_:
        raise ValueError("recursive alias")
    open_.add(key)
    children = node.value if isinstance(node, yaml.SequenceNode) else (
        [n for pair in node.value for n in pair] if isinstance(node, yaml.MappingNode) else [])
    sizes[key] = min(1 + sum(_expanded_nodes(c, sizes, open_, most=most) for c in children), most + 1)
    open_.discard(key)
    return sizes[key]


def parse_spec(raw, *, source: str = "<spec>", default_name: str = "sweep") -> SweepSpec:
    def fail(key: str, msg: str):
        raise SpecError(f"{source}: {key}: {msg}")

    if not isinstance(raw, dict):
        fail("(top)", "expected a mapping of keys")
    settings = set(setting_names())
    known = {f.name for f in fields(SweepSpec)} - {"settings"} | settings
    for key in raw:
        if key not in known:
            fail(key, f"unknown key (known: {', '.join(sorted(known, key=str))})")
    for key in _REQUIRED:
        if key not in raw:
            fail(key, "missing")
    if "tasks" not in raw and "mixtures" not in raw:
        fail("tasks", "missing (a spec names tasks, mixtures or both)")
    values = {"name": default_name, "settings": {k: raw[k] for k in settings if k in raw}}
    for key, (types, what) in _SCALARS.items():
        if key in raw:
            value = raw[key]
            if not isinstance(value, types) or isinstance(value, bool):
                fail(key, f"expected {what}, got {value!r}")
            if isinstance(value, int) and value < (0 if key == "max_failures" else 1):
                fail(key, f"expected {what}, got {value!r}")
            values[key] = value
    if not NAME.fullmatch(values["name"]):
        fail("name", f"expected a name of letters, digits, '.', '_' and '-' (not a path), got {values['name']!r}")
    values["methods"] = _methods(raw["methods"], fail)
    base = Path(source).parent if source != "<spec>" else Path.cwd()
    if "task_files" in raw:
        values["task_files"] = _task_files(raw["task_files"], base, fail)
    if isinstance(values["settings"].get("model"), str) and (base / values["settings"]["model"]).exists():
        # a local model named relative to the spec: absolute here, so no worker reads it as a hub id
        values["settings"]["model"] = str((base / values["settings"]["model"]).resolve())
    values["mixtures"] = _mixtures(raw["mixtures"], fail) if "mixtures" in raw else {}
    singles = _tasks(raw["tasks"], fail) if "tasks" in raw else ()
    values["tasks"] = singles + tuple(values["mixtures"])
    values["learning_rates"] = _numbers(raw["learning_rates"], "learning_rates", float, fail)
    values["seeds"] = _numbers(raw["seeds"], "seeds", int, fail, most=MAX_SEED)
    if raw.get("train_size") is not None:
        sizes = raw["train_size"] if isinstance(raw["train_size"], list) else [raw["train_size"]]
        values["train_size"] = _numbers(sizes, "train_size", int, fail)
        if 0 in values["train_size"]:
            fail("train_size", "expected positive integers, got 0")
    for key in ("epochs", "batch_size"):
        if key in raw:
            values[key] = _per_point(raw[key], key, fail, tasks=values["tasks"], sizes=values.get("train_size", ()))
    if "loggers" in raw:
        values["loggers"] = _loggers(raw["loggers"], fail)
    _batching(raw, fail)
    _method_options(values["methods"], fail)
    spec = SweepSpec(**values)
    _check_trials(spec, fail)
    return spec


def _check_trials(spec: SweepSpec, fail) -> None:
    """Every trial's settings through TrialConfig's own checks, the grid's size, its model, and no
    two points that are one trial."""
    from peftbench.models.names import model_problem
    from peftbench.tasks.hub import hub_reachable

    size = math.prod(map(len, (spec.methods, spec.tasks, spec.learning_rates, spec.seeds, spec.train_size)))
    if size > MAX_GRID_POINTS:
        fail("(grid)", f"{size} trials; a spec runs at most {MAX_GRID_POINTS}")
    seen = {}
    try:
        for point, cfg in _point_configs(spec):
            trial_id = cfg.trial_id
            if trial_id in seen:
                fail("(grid)", f"two grid points are one trial: {seen[trial_id]} and {point}")
            seen[trial_id] = point
    except ConfigError as exc:
        fail(exc.key, exc.message)
    model = spec.trial_at(spec.points()[0]).model
    if problem := model_problem(model, probe=hub_reachable):
        fail("model", problem)
    _check_mixtures(spec, fail)
    _check_builds(spec, fail)


def _point_configs(spec: SweepSpec):
    """Each grid point with its trial config, built once per method, task and train size (the task's
    lookups, epochs and batch) and only given each learning rate and seed, as a 10,000-point grid has
    a few dozen of those: ``(point, config)`` in ``points()`` order."""
    bases = {}
    for point in spec.points():
        where = (point["method"], point["task"], point["train_size"])
        if where not in bases:
            bases[where] = spec.trial_at(point)
        yield point, dataclasses.replace(bases[where], learning_rate=point["learning_rate"], seed=point["seed"])


def _check_mixtures(spec: SweepSpec, fail) -> None:
    """Each mixture's members can share one model (not text and image-text tasks together), as the
    trial would find out only once it runs (``tasks.base.trial_model``)."""
    from peftbench.tasks import get_task
    from peftbench.tasks.base import FIXTURES_SOURCE, trial_model

    first = spec.trial_at(spec.points()[0])
    for name, members in spec.mixtures.items():
        try:
            trial_model(first.model, [get_task(t) for t in members],
                        lambda t: FIXTURES_SOURCE if first.data == "fixtures" else t.hub_source)
        except ValueError as exc:
            fail(f"mixtures.{name}", str(exc))


def _check_builds(spec: SweepSpec, fail) -> None:
    """Each distinct method config applied to the spec's model on the meta device (no weights, no data):
    a peft rank that is no rank, target modules that match nothing, an option of the wrong type fail
    here, in one line, instead of in every trial."""
    from peftbench.engine.accounting import count_params
    from peftbench.models.load import model_config

    seen = set()
    origin = spec.points()[0]
    for label, task in itertools.product([m.label for m in spec.methods], spec.tasks):
        cfg = spec.trial_at({**origin, "method": label, "task": task})
        key = (cfg.model, label, cfg.mixture)
        if key in seen:
            continue
        seen.add(key)
        try:
            config = model_config(cfg.model)
        except Exception:  # noqa: BLE001 - a model the meta device cannot build (checked above as far as it can be)
            return
        index = [m.label for m in spec.methods].index(label)
        try:
            count = count_params(config, cfg.method, cfg.method_options, list(cfg.mixture) if cfg.mixture else None)
        except Exception as exc:  # noqa: BLE001 - whatever the method raises, it would raise in each trial
            first = (str(exc).strip().splitlines() or [""])[0][:300]
            fail(f"methods[{index}].options", f"cannot apply {label} to {cfg.model}: "
                 f"{type(exc).__name__}: {first}")
        if (held := held_bytes(count.total, count.trainable)) > cfg.budget_bytes:
            fail(f"methods[{index}].options", f"{label} on {cfg.model} holds {format_bytes(held)} before "
                 f"its first batch (weights, gradients, AdamW's moments), over its budget of {cfg.budget}")


def check_fixed_batches(spec: SweepSpec, source: str, *, peaks: PlannedPeaks | None = None) -> None:
    """A fixed batch's planned peak (held bytes and the activations its forward keeps) within the budget,
    or a ``SpecError`` (one line): the budget planner only searches a ``batch``; a fixed ``batch_size`` over
    it would run until the address-space cap (CPU) or the allocator (GPU) stops it, in every trial. For
    ``sweep`` and its ``--dry-run``, not every load of a spec: it runs a fake forward per method (seconds
    on T5-base), none for a peak ``peaks`` (``OUT/planned-peaks.json``) holds. A batch and its workload
    do not change with the learning rate or seed: each is found once per method, task and train size."""
    from peftbench.budgets.plan import fixed_batch_over_budget
    from peftbench.harness.trial import trial_workload
    from peftbench.models.load import model_config

    try:
        model_config(spec.trial_at(spec.points()[0]).model)
    except Exception:  # noqa: BLE001 - a model the meta device cannot build: the trial finds out
        return

    by_budget: dict[tuple[int, int], list] = {}
    labels = [m.label for m in spec.methods]
    for point, *_ in spec.workloads().values():
        cfg = spec.trial_at(point)
        if cfg.step_batch is None:  # a searched batch fits by construction
            by_budget.setdefault((cfg.budget_bytes, labels.index(point["method"])), []).append(
                (trial_workload(cfg), cfg.fixed_batch))
    for (budget_bytes, index), trials in by_budget.items():
        if problem := fixed_batch_over_budget(trials, budget_bytes, peaks=peaks):
            raise SpecError(f"{source}: methods[{index}].options: {problem}")


def _per_point(value, key, fail, *, tasks, sizes) -> int | dict:
    """A positive integer, or a mapping giving one to every task (or every train size) of the spec."""
    def positive(v) -> bool:
        return isinstance(v, int) and not isinstance(v, bool) and v >= 1

    if positive(value):
        return value
    if not isinstance(value, dict) or not value or not all(positive(v) for v in value.values()):
        fail(key, f"expected a positive integer or a mapping of task (or train size) to one, got {value!r}")
    by_size = all(isinstance(k, int) for k in value)
    if not by_size and not all(isinstance(k, str) for k in value):
        fail(key, f"keys must be all task names or all train sizes, got {list(value)!r}")
    wanted = {s for s in sizes if s is not None} if by_size else set(tasks)
    missing, extra = sorted(wanted - set(value), key=str), sorted(set(value) - wanted, key=str)
    if missing:
        fail(key, f"no value for {', '.join(map(str, missing))}")
    if extra:
        what = "train sizes" if by_size else "tasks"
        fail(key, f"{', '.join(map(str, extra))} are not {what} of this spec")
    return dict(value)


def _batching(raw: dict, fail) -> None:
    """``batch`` (max or N, under ``budget``) and a fixed ``batch_size`` are two ways to batch: one only."""
    if "batch" in raw and "batch_size" in raw:
        fail("batch", "give batch (the budget picks the micro-batch) or batch_size (fixed), not both")
    for key in ("budget", "gpu_memory"):
        if key in raw and not isinstance(raw[key], str):
            fail(key, f"expected GPU memory like 24GB, got {raw[key]!r}")
    for key in ("budget", "gpu_memory"):  # here, before any check that loads torch
        if key in raw:
            try:
                parse_budget(raw[key])
            except BudgetError as exc:
                fail(key, str(exc))


def _list(value, key, fail) -> list:
    if not isinstance(value, list) or not value:
        fail(key, f"expected a non-empty list, got {reprlib.repr(value)}")
    return value


def _numbers(value, key, kind, fail, *, most: int | None = None) -> tuple:
    """Positive finite numbers (``kind`` float) or non-negative integers up to ``most``, no value twice
    (``1`` and ``1.0`` are one learning rate)."""
    out = []
    for i, v in enumerate(_list(value, key, fail)):
        ok = isinstance(v, (int, float)) and not isinstance(v, bool) and (kind is float or isinstance(v, int))
        if kind is float:
            ok = ok and math.isfinite(v) and v > 0
            expected = "a positive finite number"
        else:
            ok = ok and 0 <= v <= (most if most is not None else v)
            expected = "a non-negative integer" + (f" up to {most}" if most is not None else "")
        if not ok:
            fail(f"{key}[{i}]", f"expected {expected}, got {reprlib.repr(v)}")
        if kind(v) in out:
            fail(f"{key}[{i}]", f"{v!r} is already in the list")
        out.append(kind(v))
    return tuple(out)


def _loggers(value, fail) -> tuple[str, ...]:
    from peftbench.harness.loggers import check_loggers

    for i, name in enumerate(_list(value, "loggers", fail)):
        if not isinstance(name, str):
            fail(f"loggers[{i}]", f"expected a tracker's name, got {reprlib.repr(name)}")
    try:
        check_loggers(value)
    except ValueError as exc:
        fail("loggers", str(exc))
    return tuple(value)


def _task_files(value, base: Path, fail) -> tuple[dict, ...]:
    """The declarations of the task files (``.yaml`` files, or folders of them) the spec names, resolved
    against the spec's folder, read and checked, and registered in this process."""
    from peftbench.tasks import use_declarations
    from peftbench.tasks.declared import load_task_file

    sent = []
    for i, name in enumerate(_list(value, "task_files", fail)):
        path = base / str(name)
        files = sorted(path.glob("*.y*ml")) if path.is_dir() else [path]
        if not files or not all(p.is_file() for p in files):
            fail(f"task_files[{i}]", f"{name}: no such task file or folder of them ({path})")
        try:
            sent += [task.sent for file in files for task in load_task_file(file)]
        except ValueError as exc:  # TaskFileError: already names the file and the key
            fail(f"task_files[{i}]", str(exc))
    try:
        use_declarations(sent)
    except ValueError as exc:
        fail("task_files", str(exc))
    return tuple(sent)


def _tasks(value, fail) -> tuple[str, ...]:
    from peftbench.tasks import get_task

    for i, name in enumerate(_list(value, "tasks", fail)):
        try:
            get_task(name)
        except (KeyError, TypeError) as exc:
            fail(f"tasks[{i}]", str(exc).strip("'\""))
        if name in value[:i]:
            fail(f"tasks[{i}]", f"{name} is already in the list")
    return tuple(value)


def _mixtures(value, fail) -> dict[str, tuple[str, ...]]:
    """Mixture name -> two or more distinct known tasks; a name that is no task's name (nor a path)."""
    from peftbench.tasks import task_names
    from peftbench.tasks.mixture import check_mixture

    if not isinstance(value, dict) or not value:
        fail("mixtures", f"expected a mapping of mixture name to its tasks, got {reprlib.repr(value)}")
    for name, members in value.items():
        if not isinstance(name, str) or not NAME.fullmatch(name):
            fail("mixtures", f"expected a name of letters, digits, '.', '_' and '-', got {name!r}")
        try:
            check_mixture(name, members, task_names())
        except ValueError as exc:
            fail(f"mixtures.{name}", str(exc))
    return {name: tuple(members) for name, members in value.items()}


def _methods(value, fail) -> tuple[MethodSpec, ...]:
    from peftbench.methods import check_method_name

    out = []
    for i, entry in enumerate(_list(value, "methods", fail)):
        key = f"methods[{i}]"
        if isinstance(entry, str):
            entry = {"name": entry}
        if not isinstance(entry, dict) or set(entry) - {"name", "options", "display"} or "name" not in entry:
            fail(key, f"expected a method name or {{name: ..., options: {{...}}, display: ...}}, got {entry!r}")
        if not isinstance(entry.get("display", ""), str):
            fail(f"{key}.display", f"expected a string, got {entry['display']!r}")
        options = entry.get("options") or {}
        if not isinstance(options, dict):
            fail(f"{key}.options", f"expected a mapping, got {options!r}")
        try:
            check_method_name(entry["name"])  # by name alone: no torch yet
        except (KeyError, TypeError, ValueError) as exc:
            fail(f"{key}.name", str(exc).strip("'\""))
        method = MethodSpec(entry["name"], options, entry.get("display"))
        if any(m.label == method.label for m in out):
            fail(key, f"{method.label} is already in the list")
        out.append(method)
    return tuple(out)


def _method_options(methods: tuple[MethodSpec, ...], fail) -> None:
    """Each method's options through its config's own checks: the first check that loads the methods
    (and torch), so it runs after every check that does not."""
    from peftbench.methods import get_method

    for i, m in enumerate(methods):
        try:
            get_method(m.name).make_config(m.options)
        except (KeyError, TypeError, ValueError) as exc:
            fail(f"methods[{i}].options", str(exc).strip("'\""))


@dataclass(frozen=True)
class Narrowing:
    """A part of a sweep's grid picked on the command line (``--methods a,b --tasks x --seeds 0``).

    The folder still holds the whole sweep (its spec, unchanged), so a narrowed run resumes like any
    other and a later run, narrowed otherwise or not at all, fills in the rest. A method is picked
    by name (all its option sets) or by label (``compacter[phm_dim=8]``).
    """

    methods: tuple[str, ...] = ()
    tasks: tuple[str, ...] = ()
    seeds: tuple[int, ...] = ()

    def points(self, spec: SweepSpec) -> list[dict]:
        """The spec's grid points this narrowing keeps (all of them when it names nothing)."""
        self.check(spec)
        return [p for p in spec.points()
                if (not self.methods or {p["method"], spec.method(p["method"]).name} & set(self.methods))
                and (not self.tasks or p["task"] in self.tasks) and (not self.seeds or p["seed"] in self.seeds)]

    def check(self, spec: SweepSpec) -> None:
        """Every name picked is in the spec, or a one-line ``SpecError``."""
        axes = (("--methods", self.methods, [m.label for m in spec.methods] + [m.name for m in spec.methods]),
                ("--tasks", self.tasks, spec.tasks), ("--seeds", self.seeds, spec.seeds))
        for flag, picked, present in axes:
            missing = [p for p in picked if p not in present]
            if missing:
                shown = ", ".join(dict.fromkeys(map(str, present)))
                raise SpecError(f"{flag}: {missing[0]!r} is not in sweep {spec.name!r} (it has: {shown})")
