"""The method registry: the single place where a fine-tuning method is declared.

A method is a frozen config dataclass (its options, validated in ``__post_init__``) and an
``apply(model, cfg)`` that injects whatever modules the method needs and returns the names of the
parameters to train. Freezing and counting happen once, here, for every method.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import nn

# The method families and the names each registers (``register`` holds them to it). A family is
# imported, and so registered, on the first look-up of one of its methods: checking a name, or
# listing the names, needs no torch. The order is the listing order: the paper's Table 1, its multi-task
# baseline (Hyperformer), then peft's.
FAMILIES = {
    "full": ("full",),
    "adapter": ("adapter", "pfeiffer-adapter", "adapterdrop", "adapter-lowrank"),
    "prompt": ("prompt-tuning-r", "prompt-tuning-t"),
    "said": ("intrinsic-said",),
    "bitfit": ("bitfit",),
    "compacter": ("phm-adapter", "compacter", "compacter++"),
    "hyperformer": ("hyperformer", "hyperformer++", "vl-hyperformer"),
    "peft_bridge": ("peft", "lora", "ia3"),
}


@dataclass(frozen=True)
class Method:
    """A registered method: its name, option dataclass, and ``apply``.

    ``engine`` names the training engine the loop should use: ``"torch"`` (plain AdamW) or
    ``"deepspeed"`` (a DeepSpeed engine configured by the method's ``deepspeed_config()``).
    ``task_prefix``: whether the original code prepends the task's name to this method's inputs
    (``rte sentence1: …``), i.e. what the prefix setting ``"auto"`` means for it (``resolve_prefix``).
    """

    name: str
    config_cls: type
    apply: Callable[[nn.Module, Any], list[str]]
    task_prefix: bool
    engine: str = "torch"

    def make_config(self, options: dict | None = None) -> Any:
        """Build the method's config from a dict of options, rejecting unknown keys.

        A config class with a ``from_options`` classmethod builds itself (the peft bridge, whose
        options are another library's fields); the others take their dataclass fields.
        """
        options = dict(options or {})
        if hasattr(self.config_cls, "from_options"):
            return self.config_cls.from_options(options)
        known = {f.name for f in dataclasses.fields(self.config_cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise ValueError(unknown_option(self.name, unknown[0], known))
        return self.config_cls(**options)

    @property
    def help(self) -> str:
        """One line on what the method is: the first line of its config's docstring."""
        return (self.config_cls.__doc__ or "").strip().splitlines()[0]

    def options(self) -> list[Option]:
        """The method's options with their defaults and help, read from its config's fields."""
        if hasattr(self.config_cls, "option_list"):
            return self.config_cls.option_list()
        return option_list(self.config_cls)


@dataclass(frozen=True)
class Option:
    """One option of a method, as ``peftbench methods`` lists it."""

    name: str
    default: Any
    help: str


def option_list(config_cls: type) -> list[Option]:
    """The options of a dataclass config: each field's name, default and ``metadata["help"]``."""
    out = []
    for f in dataclasses.fields(config_cls):
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        out.append(Option(f.name, None if default is dataclasses.MISSING else default, f.metadata.get("help", "")))
    return out


def unknown_option(method: str, key: str, known) -> str:
    """The one wording of an option ``method`` does not take (``known``: the ones it does)."""
    return f"method {method!r} has no option {key!r} (options: {', '.join(sorted(known)) or 'none'})"


def takes_option(config_cls: type, key: str) -> bool:
    """Whether a method's config takes option ``key`` (the bridge decides for itself)."""
    if hasattr(config_cls, "takes_option"):
        return config_cls.takes_option(key)
    return key in {f.name for f in dataclasses.fields(config_cls)}


_REGISTRY: dict[str, Method] = {}


def register(name: str, config_cls: type, apply: Callable, *, task_prefix: bool, engine: str = "torch") -> None:
    """Declare a method. ``task_prefix`` has no default: each method states what its inputs look
    like in the original code (adapter-family methods without the task name, the others with it)."""
    if name in _REGISTRY:
        raise ValueError(f"method {name!r} is registered twice")
    if engine not in ("torch", "deepspeed"):
        raise ValueError(f"method {name!r}: unknown engine {engine!r}")
    if not isinstance(task_prefix, bool):
        raise TypeError(f"method {name!r}: task_prefix must be True or False, got {task_prefix!r}")
    if name not in method_names():
        raise ValueError(f"method {name!r} is not listed under its family in methods/registry.py FAMILIES")
    _REGISTRY[name] = Method(name, config_cls, apply, task_prefix, engine)


def check_method_name(name: str) -> None:
    """Reject an unknown method by name alone (no import, no torch): ``KeyError``, one line."""
    if name not in method_names():
        raise KeyError(f"unknown method {name!r} (known: {', '.join(method_names())})")


def get_method(name: str) -> Method:
    check_method_name(name)
    family = next(f for f, names in FAMILIES.items() if name in names)
    importlib.import_module(f"{__package__}.{family}")  # registers the family's methods; a no-op once imported
    return _REGISTRY[name]


def method_names() -> list[str]:
    return [name for names in FAMILIES.values() for name in names]


PREFIX_SETTINGS = ("auto", "always", "never")


def resolve_prefix(setting: str, method: Method | str) -> bool:
    """Whether inputs start with the task's prefix: ``"always"``, ``"never"``, or ``"auto"``, which
    follows the original code per method (``Method.task_prefix``)."""
    if setting not in PREFIX_SETTINGS:
        raise ValueError(f"task prefix setting must be one of {', '.join(PREFIX_SETTINGS)}, got {setting!r}")
    if setting != "auto":
        return setting == "always"
    return (get_method(method) if isinstance(method, str) else method).task_prefix


@dataclass(frozen=True)
class ParamCount:
    """Trainable parameters of a method against the parameters of the base model (``total``, the Compacter
    paper's convention) and against every parameter of the model with the method in it (``overall``,
    VL-Adapter's: ``print_trainable_params_percentage``, ``VL-T5/src/trainer_base.py:226-246``)."""

    trainable: int
    total: int
    overall: int | None = None

    @property
    def pct(self) -> float:
        return 100.0 * self.trainable / self.total

    @property
    def pct_of_overall(self) -> float:
        return 100.0 * self.trainable / (self.overall or self.total)


def apply_method(model: nn.Module, name: str, options: dict | None = None,
                 tasks: Sequence[str] | None = None) -> tuple[Any, ParamCount]:
    """Apply method ``name`` to ``model``: inject its modules, freeze all else, count.

    ``total`` is the base model's parameter count before injection, as in the paper's tables.
    A model's ``trained_by_every_method`` (submodule paths; VL-T5's visual projection) are no
    method's business: the method is applied with them set aside, then they train and count.
    ``tasks``: the member tasks of a mixture trial; the model gets a task switch first
    (methods/multitask.py), so per-task modules are built for each. None for a single task.
    """
    method = get_method(name)
    cfg = method.make_config(options)
    total = sum(p.numel() for p in model.parameters())
    if tasks is not None:
        from peftbench.methods.multitask import attach_tasks

        attach_tasks(model, tasks)
    with set_aside(model, getattr(model, "trained_by_every_method", ())) as kept:
        trainable = set(method.apply(model, cfg))
    trainable |= kept
    params = dict(model.named_parameters())
    missing = sorted(trainable - set(params))
    if missing:
        raise RuntimeError(f"method {name!r} declared unknown parameters: {missing[:3]}")
    for pname, p in params.items():
        p.requires_grad_(pname in trainable)
    count = sum(params[n].numel() for n in trainable)
    return cfg, ParamCount(trainable=count, total=total, overall=sum(p.numel() for p in params.values()))


@contextlib.contextmanager
def set_aside(model: nn.Module, paths: Sequence[str]):
    """Detach the submodules at ``paths`` while the block runs; yields their parameters' names."""
    held = []
    for path in paths:
        parent_path, _, name = path.rpartition(".")
        parent = model.get_submodule(parent_path)
        held.append((parent, name, getattr(parent, name)))
    names = {f"{path}.{n}" for path, (_, _, m) in zip(paths, held, strict=True) for n, _ in m.named_parameters()}
    for parent, name, _ in held:
        delattr(parent, name)
    try:
        yield names
    finally:
        for parent, name, module in held:
            setattr(parent, name, module)


def method_label(name: str, options: dict | None) -> str:
    """A method with its options, unique within a sweep: ``compacter[phm_dim=8]``."""
    if not options:
        return name
    return name + "[" + ",".join(f"{k}={v}" for k, v in sorted(options.items())) + "]"


def options_for(method: str, options: dict) -> dict:
    """The subset of ``options`` that ``method``'s config takes."""
    config_cls = get_method(method).config_cls
    return {k: v for k, v in options.items() if takes_option(config_cls, k)}


def check_options_used(methods: list[str], options: dict) -> None:
    """Reject an option that none of ``methods`` takes (a typo would otherwise be silently ignored)."""
    used = set().union(*(options_for(m, options) for m in methods)) if methods else set()
    unused = sorted(set(options) - used)
    if unused:
        raise ValueError(f"option {unused[0]!r} is taken by none of: {', '.join(methods)}")
