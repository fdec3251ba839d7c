"""The method registry: the single place where a fine-tuning method is declared.

A method is a frozen config dataclass (its options, validated in ``__post_init__``) and an
``apply(model, cfg)`` that injects whatever modules the method needs and returns the names of the
parameters to train. Freezing and counting happen once, here, for every method.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import nn

# The method families, imported (and so registered) on the first look-up: naming a method, or
# listing them, needs no torch. Registration order is the listing order: the paper's Table 1.
FAMILIES = ("full", "adapter", "prompt", "said", "bitfit", "compacter")


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
        """Build the method's config from a dict of options, rejecting unknown keys."""
        options = dict(options or {})
        known = {f.name for f in dataclasses.fields(self.config_cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise ValueError(
                f"method {self.name!r} has no option {unknown[0]!r} "
                f"(options: {', '.join(sorted(known)) or 'none'})"
            )
        return self.config_cls(**options)


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
    _REGISTRY[name] = Method(name, config_cls, apply, task_prefix, engine)


def _registry() -> dict[str, Method]:
    for family in FAMILIES:
        importlib.import_module(f"methods.{family}")  # a no-op once imported
    return _REGISTRY


def get_method(name: str) -> Method:
    try:
        return _registry()[name]
    except KeyError:
        raise KeyError(f"unknown method {name!r} (known: {', '.join(method_names())})") from None


def method_names() -> list[str]:
    return list(_registry())


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
    """Trainable parameters of a method against the parameters of the base model."""

    trainable: int
    total: int

    @property
    def pct(self) -> float:
        return 100.0 * self.trainable / self.total


def apply_method(model: nn.Module, name: str, options: dict | None = None) -> tuple[Any, ParamCount]:
    """Apply method ``name`` to ``model``: inject its modules, freeze all else, count.

    ``total`` is the base model's parameter count before injection, as in the paper's tables.
    """
    method = get_method(name)
    cfg = method.make_config(options)
    total = sum(p.numel() for p in model.parameters())
    trainable = set(method.apply(model, cfg))
    params = dict(model.named_parameters())
    missing = sorted(trainable - set(params))
    if missing:
        raise RuntimeError(f"method {name!r} declared unknown parameters: {missing[:3]}")
    for pname, p in params.items():
        p.requires_grad_(pname in trainable)
    count = sum(params[n].numel() for n in trainable)
    return cfg, ParamCount(trainable=count, total=total)


def method_label(name: str, options: dict | None) -> str:
    """A method with its options, unique within a sweep: ``compacter[phm_dim=8]``."""
    if not options:
        return name
    return name + "[" + ",".join(f"{k}={v}" for k, v in sorted(options.items())) + "]"


def options_for(method: str, options: dict) -> dict:
    """The subset of ``options`` that ``method``'s config takes."""
    fields = {f.name for f in dataclasses.fields(get_method(method).config_cls)}
    return {k: v for k, v in options.items() if k in fields}


def check_options_used(methods: list[str], options: dict) -> None:
    """Reject an option that none of ``methods`` takes (a typo would otherwise be silently ignored)."""
    used = set().union(*(options_for(m, options) for m in methods)) if methods else set()
    unused = sorted(set(options) - used)
    if unused:
        raise ValueError(f"option {unused[0]!r} is taken by none of: {', '.join(methods)}")
