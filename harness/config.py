"""One trial's complete configuration, and the id that names it everywhere.

Every default of a trial lives here, with its help text: the sweep spec (a base of these settings
plus grid axes) and ``peftbench trial`` read them from the fields, never retyping them.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
from dataclasses import asdict, dataclass, field, fields

from peftbench.budgets.parse import DEFAULT_BUDGET, BudgetError, parse_budget
from peftbench.engine import PRECISIONS
from peftbench.methods.registry import PREFIX_SETTINGS, resolve_prefix
from peftbench.tasks.base import DATA_SOURCES, LABEL_STYLES, SUBSAMPLES, TextFormat

MAX_SEED = 2**32 - 1  # numpy's and Python's seeding both take this range
MIXTURE_SETTINGS = ("mixture", "sampling", "temperature", "mixture_score", "member_batch_sizes", "row_sampling")
SELECTIONS = ("best", "last")
# Settings added after records existed: hashed into a trial's id only when not at their default, so the
# ids (and resumable records) of earlier trials stand.
LATER_SETTINGS = ("select", "adam_eps", "warmup_ratio", "mixture_score", "label_smoothing", "steps", "num_beams",
                  "generation_max_length", "member_batch_sizes", "row_sampling", "smoothed_loss", "subsample")
SMOOTHED_LOSSES = ("mean", "sum")


class ConfigError(ValueError):
    """A setting out of range; ``key`` names it, the message says what was expected."""

    def __init__(self, key: str, message: str):
        super().__init__(f"{key}: {message}")
        self.key, self.message = key, message


def _help(text: str, **more) -> dict:
    return {"help": text, **more}


@dataclass(frozen=True)
class TrialConfig:
    method: str = field(metadata=_help("a registered method (peftbench params lists them)"))
    task: str = field(metadata=_help("a task (peftbench tasks lists them)"))
    learning_rate: float = field(metadata=_help("peak learning rate of AdamW", flag="--lr"))
    seed: int = field(default=0, metadata=_help("seed of the model's new weights, data order and subsample"))
    model: str = field(default="tiny-t5", metadata=_help("tiny-t5, a hub id (ID@REVISION pins one) or a local path"))
    method_options: dict = field(default_factory=dict, metadata=_help("the method's options", flag="--option"))
    epochs: int | None = field(default=None, metadata=_help("epochs (default: the task's, as in the paper)"))
    steps: int | None = field(default=None, metadata=_help(
        "train for N optimizer steps instead of epochs (Hyperformer's GLUE mixture: 65,536); wins over epochs"))
    batch_size: int = field(default=32, metadata=_help("fixed micro-batch, when no batch is given"))
    batch: int | str | None = field(default=None, metadata=_help(
        "max: the largest batch under the budget; N: N examples per optimizer step, the budget sets the micro-batch"))
    budget: str = field(default=DEFAULT_BUDGET, metadata=_help("GPU memory per trial: 24GB (10^9 B) or 24GiB (2^30 B)"))
    warmup_steps: int = field(default=500, metadata=_help("linear warm-up steps, then linear decay to 0"))
    weight_decay: float = field(default=0.0, metadata=_help("AdamW's decoupled weight decay (the authors': 0)"))
    adam_eps: float = field(default=1e-8, metadata=_help("AdamW's epsilon (torch's and the text papers' 1e-8)"))
    label_smoothing: float = field(default=0.0, metadata=_help(
        "label smoothing ε of the training loss (Hyperformer's: 0.1); 0: none, the text papers'"))
    smoothed_loss: str = field(default="mean", metadata=_help(
        "with label smoothing, the loss over a batch's target tokens: mean (torch's) or sum (Hyperformer's "
        "fairseq loss; the model's own mean loss without smoothing, as theirs)"))
    warmup_ratio: float | None = field(default=None, metadata=_help(
        "warm up for this share of the optimizer steps instead of warmup_steps (VL-Adapter's: 0.1)"))
    max_grad_norm: float | None = field(default=1.0, metadata=_help(
        "clip gradients to this global norm (the authors': 1.0); null: no clipping"))
    max_source_length: int | None = field(default=None, metadata=_help("source tokens kept (default: the task's)"))
    data: str = field(default="auto", metadata=_help("auto (the hub, else the offline fixtures), hub or fixtures"))
    task_prefix: str = field(default="auto", metadata=_help(
        "the task's name before each input: auto (as the authors, by method), always or never"))
    labels: str = field(default="digits", metadata=_help("targets as label digits (the authors') or names (T5's)"))
    eval_every_steps: int | None = field(default=None, metadata=_help(
        "validate every N optimizer steps instead of every epoch (the paper's low-resource runs: 250)"))
    train_size: int | None = field(default=None, metadata=_help("subsample training to N examples (how: subsample)"))
    subsample: str = field(default="per-seed", metadata=_help(
        "how train_size draws its rows: per-seed (other rows for each seed) or seed-42 (the first N of the seed-42 "
        "permutation for every seed, as the Compacter and Hyperformer code)"))
    precision: str = field(default="fp32", metadata=_help(
        "fp32 (the authors') or bf16: the forward pass autocast to bfloat16, weights and AdamW state in fp32"))
    tf32: bool = field(default=False, metadata=_help(
        "let fp32 matmuls round their inputs to TF32 on Ampere and later GPUs (faster; not the authors' fp32)"))
    save_modules: bool = field(default=False, metadata=_help(
        "keep the trained parameters of the best validation in OUT/modules/<trial_id>.safetensors"))
    exclusive_gpu: bool = field(default=False, metadata=_help(
        "a whole GPU per trial, none shared: for times per epoch (Table 3), at the cost of packing"))
    mixture: tuple[str, ...] | None = field(default=None, metadata=_help(
        "member tasks of a mixture trial (task is then the mixture's name): one model trained on all of them"))
    sampling: str = field(default="temperature", metadata=_help(
        "a mixture's batches: temperature (a member drawn with p ∝ n^(1/T)), proportional (p ∝ n) or roundrobin "
        "(every member's batches once an epoch in a shuffled order, VL-Adapter's MultitaskLoader)"))
    temperature: float = field(default=10.0, metadata=_help("T of temperature sampling (Hyperformer's: 10)"))
    log_samples: bool = field(default=False, metadata=_help(
        "keep each test row's input, target, output and scores in OUT/samples/<trial_id>.jsonl"))
    declarations: tuple = field(default=(), metadata=_help(
        "the task files' declarations of the trial's tasks, as the sweep's driver read them (sent by value, "
        "so a worker needs neither the file nor any import)", flag=None))
    mixture_score: str = field(default="per-task", metadata=_help(
        "a mixture's validation score: per-task (the mean of its members' scores) or flat (the mean of all their "
        "metric values, Hyperformer's)"))
    member_batch_sizes: dict | None = field(default=None, metadata=_help(
        "a mixture member's own examples per optimizer step, every member named (VL-Adapter's vqa 300, gqa 500, "
        "nlvr2 100, coco-caption 250 on VL-T5); the budget picks the micro-batch for the largest and each step "
        "accumulates one member's batch; null: batch_size for all"))
    row_sampling: str = field(default="passes", metadata=_help(
        "a drawn member's rows: passes (each row once per pass over the member) or with-replacement "
        "(Hyperformer's sampler)"))
    select: str = field(default="best", metadata=_help(
        "the weights the test split scores: best (the best validation's) or last (after the last epoch, as "
        "VL-Adapter)"))
    num_beams: int | None = field(default=None, metadata=_help(
        "beam width of every task that declares its own decoding (VL captions: beam 5), e.g. 1 in a smoke on an "
        "untrained tiny model; null: each task's own"))
    generation_max_length: int | None = field(default=None, metadata=_help(
        "the decoder length bound of every task that declares its own decoding (VL captions: 40 tokens, video 20); "
        "null: each task's own"))

    def __post_init__(self):
        if isinstance(self.mixture, list):  # from YAML or JSON: one form, so equal configs share an id
            object.__setattr__(self, "mixture", tuple(self.mixture))
        if isinstance(self.declarations, list):
            object.__setattr__(self, "declarations", tuple(self.declarations))
        _check(self)

    @property
    def trial_id(self) -> str:
        """Readable and unique: the grid point, plus a hash of everything else in the config (a single
        task's without the mixture settings, which do nothing there: ids of earlier trials stand)."""
        # a shallow copy gives the same JSON as asdict (no field holds a dataclass) at a tenth of its cost,
        # which a 10,000-point spec's pre-run checks pay per point
        settings = {name: getattr(self, name) for name in _field_names()}
        if self.mixture is None:
            for key in MIXTURE_SETTINGS:
                del settings[key]
        if not self.declarations:  # ids of built-in tasks' trials stand; a changed task file's data: a new id
            del settings["declarations"]
        del settings["log_samples"]  # what is kept beside the record, not what is trained
        for key in LATER_SETTINGS:
            if key in settings and settings[key] == default_of(key):
                del settings[key]
        digest = hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:8]
        size = "" if self.train_size is None else f"-n{self.train_size}"
        return f"{self.method}-{self.task}{size}-lr{self.learning_rate:g}-s{self.seed}-{digest}"

    @property
    def member_tasks(self) -> tuple[str, ...]:
        """The tasks this trial trains on: a mixture's members, or its one task."""
        return self.mixture or (self.task,)

    @property
    def fixed_batch(self) -> int:
        """The micro-batch a trial without ``batch`` runs at: ``batch_size``."""
        return self.batch_size

    @property
    def own_member_batches(self) -> bool:
        """Whether a mixture's members step at their own batches (``member_batch_sizes``)."""
        return bool(self.mixture and self.member_batch_sizes)

    @property
    def step_batch(self) -> int | str | None:
        """What the budget planner searches a micro-batch for: ``batch``, or a mixture's largest member batch
        (examples per step: the one that needs the most memory); None: the fixed ``batch_size``."""
        return max(self.member_batch_sizes.values()) if self.own_member_batches else self.batch

    @property
    def budget_bytes(self) -> int:
        return parse_budget(self.budget)

    def text_format(self) -> TextFormat:
        """The text this trial's model reads and writes (``text_format`` below)."""
        return text_format(method=self.method, task_prefix=self.task_prefix, labels=self.labels,
                           mixture=self.mixture is not None)

    def to_dict(self) -> dict:
        """Plain data, as JSON gives it back (a mixture's members, the declarations, as lists)."""
        out = asdict(self)
        out["mixture"] = list(self.mixture) if self.mixture is not None else None
        out["declarations"] = json.loads(json.dumps(list(self.declarations)))
        return out


@functools.cache
def _field_names() -> tuple[str, ...]:
    return tuple(f.name for f in fields(TrialConfig))


def text_format(*, method: str, task_prefix: str, labels: str, mixture: bool = False) -> TextFormat:
    """How a trial's examples become text, the one rule the trial and ``peftbench tasks show`` share:
    ``auto`` follows the authors per method for a single task and is on for a mixture (Hyperformer's
    inputs: the model must tell its tasks apart)."""
    prefix = True if mixture and task_prefix == "auto" else resolve_prefix(task_prefix, method)
    return TextFormat(prefix=prefix, labels=labels)


@functools.cache  # every trial id asks for a few of them: a 10,000-point spec's checks ask 50,000 times
def default_of(name: str):
    """A ``TrialConfig`` field's default, for the commands that show what a default trial does."""
    return next(f.default for f in fields(TrialConfig) if f.name == name)


def check_known(cfg: TrialConfig) -> None:
    """Every name the trial uses (method, its options, task) known, before anything loads: one line
    (``ConfigError``). An unknown method is caught by name alone, without importing torch."""
    from peftbench.methods import check_method_name, get_method
    from peftbench.tasks import get_task, task_names, use_declarations
    from peftbench.tasks.mixture import check_mixture

    def task():
        use_declarations(cfg.declarations)
        if cfg.mixture is None:
            get_task(cfg.task)
        else:
            check_mixture(cfg.task, cfg.mixture, task_names())

    checks = (("method", lambda: check_method_name(cfg.method)), ("mixture" if cfg.mixture else "task", task),
              ("method_options", lambda: get_method(cfg.method).make_config(cfg.method_options)))
    for key, check in checks:
        try:
            check()
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(key, exc.args[0] if isinstance(exc, KeyError) else str(exc)) from None


def setting_names() -> tuple[str, ...]:
    """The fields a sweep spec may set for all its trials (the grid sets the others)."""
    grid = {"method", "task", "learning_rate", "seed", "method_options", "epochs", "batch_size", "train_size",
            "mixture", "declarations"}  # declarations: from the spec's task_files
    return tuple(f.name for f in fields(TrialConfig) if f.name not in grid)


def _positive_int(value, *, allow_none: bool = False) -> bool:
    if value is None:
        return allow_none
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _finite(value, *, least: float, strict: bool) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return False
    return value > least if strict else value >= least


def _check(cfg: TrialConfig) -> None:
    """Every setting in range, so a bad value fails before anything loads (``ConfigError``)."""
    from peftbench.tasks.mixture import MIXTURE_SCORES, ROW_SAMPLINGS, SAMPLINGS
    checks = {
        "learning_rate": (_finite(cfg.learning_rate, least=0, strict=True), "a positive finite number"),
        "seed": (isinstance(cfg.seed, int) and not isinstance(cfg.seed, bool) and 0 <= cfg.seed <= MAX_SEED,
                 f"an integer from 0 to {MAX_SEED}"),
        "epochs": (_positive_int(cfg.epochs, allow_none=True), "a positive integer"),
        "steps": (_positive_int(cfg.steps, allow_none=True), "a positive integer or null"),
        "batch_size": (_positive_int(cfg.batch_size), "a positive integer"),
        "batch": (cfg.batch in (None, "max") or _positive_int(cfg.batch), "max or a positive integer"),
        "warmup_steps": (isinstance(cfg.warmup_steps, int) and not isinstance(cfg.warmup_steps, bool)
                         and cfg.warmup_steps >= 0, "a non-negative integer"),
        "weight_decay": (_finite(cfg.weight_decay, least=0, strict=False), "a non-negative finite number"),
        "adam_eps": (_finite(cfg.adam_eps, least=0, strict=True), "a positive finite number"),
        "label_smoothing": (_finite(cfg.label_smoothing, least=0, strict=False) and cfg.label_smoothing < 1,
                            "a number from 0 to below 1"),
        "smoothed_loss": (cfg.smoothed_loss in SMOOTHED_LOSSES, f"one of {', '.join(SMOOTHED_LOSSES)}"),
        "warmup_ratio": (cfg.warmup_ratio is None or (_finite(cfg.warmup_ratio, least=0, strict=False)
                                                      and cfg.warmup_ratio <= 1), "a number from 0 to 1 or null"),
        "max_grad_norm": (cfg.max_grad_norm is None or _finite(cfg.max_grad_norm, least=0, strict=True),
                          "a positive finite number or null"),
        "max_source_length": (_positive_int(cfg.max_source_length, allow_none=True), "a positive integer or null"),
        "train_size": (_positive_int(cfg.train_size, allow_none=True), "a positive integer or null"),
        "subsample": (cfg.subsample in SUBSAMPLES, f"one of {', '.join(SUBSAMPLES)}"),
        "data": (cfg.data in DATA_SOURCES, f"one of {', '.join(DATA_SOURCES)}"),
        "task_prefix": (cfg.task_prefix in PREFIX_SETTINGS, f"one of {', '.join(PREFIX_SETTINGS)}"),
        "labels": (cfg.labels in LABEL_STYLES, f"one of {', '.join(LABEL_STYLES)}"),
        "eval_every_steps": (_positive_int(cfg.eval_every_steps, allow_none=True), "a positive integer or null"),
        "model": (isinstance(cfg.model, str) and cfg.model != "", "a model name, hub id or path"),
        "method_options": (isinstance(cfg.method_options, dict), "a mapping of option to value"),
        "precision": (cfg.precision in PRECISIONS, f"one of {', '.join(PRECISIONS)}"),
        "tf32": (isinstance(cfg.tf32, bool), "true or false"),
        "exclusive_gpu": (isinstance(cfg.exclusive_gpu, bool), "true or false"),
        "log_samples": (isinstance(cfg.log_samples, bool), "true or false"),
        "save_modules": (isinstance(cfg.save_modules, bool), "true or false"),
        "mixture": (cfg.mixture is None or (isinstance(cfg.mixture, tuple) and len(cfg.mixture) >= 2
                                            and all(isinstance(t, str) for t in cfg.mixture)),
                    "two or more task names, or null"),
        "sampling": (cfg.sampling in SAMPLINGS, f"one of {', '.join(SAMPLINGS)}"),
        "temperature": (_finite(cfg.temperature, least=0, strict=True), "a positive finite number"),
        "mixture_score": (cfg.mixture_score in MIXTURE_SCORES, f"one of {', '.join(MIXTURE_SCORES)}"),
        "select": (cfg.select in SELECTIONS, f"one of {', '.join(SELECTIONS)}"),
        "num_beams": (_positive_int(cfg.num_beams, allow_none=True), "a positive integer or null"),
        "generation_max_length": (_positive_int(cfg.generation_max_length, allow_none=True),
                                  "a positive integer or null"),
        "row_sampling": (cfg.row_sampling in ROW_SAMPLINGS, f"one of {', '.join(ROW_SAMPLINGS)}"),
        "member_batch_sizes": (cfg.member_batch_sizes is None or (
            isinstance(cfg.member_batch_sizes, dict) and cfg.member_batch_sizes
            and all(isinstance(k, str) and _positive_int(v) for k, v in cfg.member_batch_sizes.items())),
            "a mapping of member task to a positive integer, or null"),
    }
    for key, (ok, expected) in checks.items():
        if not ok:
            raise ConfigError(key, f"expected {expected}, got {getattr(cfg, key)!r}")
    _check_member_batches(cfg)
    try:
        parse_budget(cfg.budget)
    except BudgetError as exc:
        raise ConfigError("budget", str(exc)) from None


def _check_member_batches(cfg: TrialConfig) -> None:
    """``member_batch_sizes`` names a mixture's members exactly, and fixes the batch (no ``batch``). A single
    task's trial of a spec with mixtures ignores it (as it ignores the other mixture settings)."""
    own = cfg.member_batch_sizes
    if not own or cfg.mixture is None:
        return
    if set(own) != set(cfg.mixture):
        missing, unknown = sorted(set(cfg.mixture) - set(own)), sorted(set(own) - set(cfg.mixture))
        said = "; ".join(([f"no batch for {', '.join(missing)}"] if missing else [])
                         + ([f"{', '.join(unknown)} not in the mixture"] if unknown else []))
        raise ConfigError("member_batch_sizes", f"expected a batch for each of {', '.join(cfg.mixture)}: {said}")
    if cfg.batch is not None:
        raise ConfigError("member_batch_sizes", "fixes each member's batch; give no batch (the budget's) with it")
