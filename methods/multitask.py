"""One model, several tasks: how a method's modules learn which task the current batch belongs to.

A mixture trial trains one model on batches that each come from a single member task (Hyperformer's
sampler does the same). Before every forward (training step, validation, generation) the loop calls
``set_task(model, name)``; a method that keeps a module per task, or generates one from a task
embedding, reads the current task from the model's ``TaskSwitch``:

    switch = task_switch(model)           # None in a single-task trial: build plain modules
    PerTask({t: make() for t in switch.tasks}, switch)   # routes each call to the current task's module

``apply_method(model, name, options, tasks=[...])`` attaches the switch before the method's ``apply``
runs. Single-task trials pass no tasks and get exactly the modules (and parameter names) they always had.

Sharing, declared by each method as its ``sharing`` option (``SHARING``): ``shared`` — one module for
all tasks (VL-Adapter's "single"); ``per-task`` — one per task ("multiple"); ``shared-up`` /
``shared-down`` — adapters whose up (or down) projection is shared and the other per task ("half-shared").
A method's config declares the modes it supports with ``sharing_field`` (default ``shared``) and builds
with ``per_task(make, switch)``: one module without a switch, one per task with it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

from torch import nn

SHARING = ("shared", "per-task", "shared-up", "shared-down")
_ATTR = "peftbench_task_switch"


class TaskSwitch:
    """The member tasks of a mixture and the one the current batch belongs to."""

    def __init__(self, tasks: Sequence[str]):
        tasks = tuple(tasks)
        if not tasks or len(set(tasks)) != len(tasks):
            raise ValueError(f"a mixture needs distinct task names, got {list(tasks)}")
        self.tasks = tasks
        self._current: str | None = None

    @property
    def current(self) -> str:
        if self._current is None:
            raise RuntimeError("no task set: call methods.multitask.set_task(model, task) before the forward")
        return self._current

    @property
    def index(self) -> int:
        """The current task's position in ``tasks`` (task-embedding row, for instance)."""
        return self.tasks.index(self.current)

    def set(self, task: str) -> None:
        if task not in self.tasks:
            raise KeyError(f"task {task!r} is not a member of this mixture ({', '.join(self.tasks)})")
        self._current = task


def attach_tasks(model: nn.Module, tasks: Sequence[str]) -> TaskSwitch:
    """Give ``model`` a task switch over ``tasks`` (before a method's modules are built)."""
    switch = TaskSwitch(tasks)
    object.__setattr__(model, _ATTR, switch)  # a plain attribute: not a submodule, not in the state dict
    return switch


def task_switch(model: nn.Module) -> TaskSwitch | None:
    """The model's task switch, or None in a single-task trial."""
    return getattr(model, _ATTR, None)


def set_task(model: nn.Module, task: str) -> None:
    """Route the next forwards of ``model`` to ``task``'s modules (a no-op for a single-task model)."""
    switch = task_switch(getattr(model, "module", model))  # a DeepSpeed engine holds the model as .module
    if switch is not None:
        switch.set(task)


class PerTask(nn.Module):
    """A module per task; each call goes to the current task's. Parameter names: ``…tasks.<task>.…``."""

    def __init__(self, modules: dict[str, nn.Module], switch: TaskSwitch):
        super().__init__()
        if set(modules) != set(switch.tasks):
            raise ValueError(f"per-task modules for {sorted(modules)} but the mixture has {sorted(switch.tasks)}")
        self.tasks = nn.ModuleDict(modules)
        object.__setattr__(self, "_switch", switch)

    def forward(self, *args, **kwargs):
        return self.tasks[self._switch.current](*args, **kwargs)


def check_sharing(cfg) -> None:
    """A method's ``__post_init__`` check of its ``sharing`` option against the modes its config declares."""
    allowed = sharing_modes(type(cfg))
    if cfg.sharing not in allowed:
        raise ValueError(f"sharing must be one of {', '.join(allowed)}, got {cfg.sharing!r}")


def per_task(make: Callable[[], nn.Module], switch: TaskSwitch | None) -> nn.Module:
    """``make()`` once, or once per task behind ``PerTask`` where there is a switch to follow.

    Without a switch (a single-task trial) the module is exactly what ``make()`` returns: the same
    parameter names and the same draws from the random generator as a method without sharing.
    """
    if switch is None:
        return make()
    return PerTask({task: make() for task in switch.tasks}, switch)


_MEANS = {
    "shared": "shared: one module for all tasks",
    "per-task": "per-task: a module per task",
    "shared-up": "shared-up: the up-projection shared, the down-projection per task",
    "shared-down": "shared-down: the down-projection shared, the up-projection per task",
}


def sharing_field(modes: Sequence[str], *, note: str = ""):
    """The ``sharing`` option of a method's config: ``modes[0]`` by default, its help generated.

    ``shared`` comes first everywhere: a mixture then trains one set of the method's modules, the
    plain multi-task baseline, and ``per-task`` is a choice a spec states. (A single-task trial gets
    one module whatever the mode: a single task is a trivial mixture.)
    """
    modes = tuple(modes)
    if not modes or any(m not in SHARING for m in modes):
        raise ValueError(f"sharing modes must be among {', '.join(SHARING)}, got {list(modes)}")
    text = (" | ".join(modes) + " — in a mixture trial, " + "; ".join(_MEANS[m] for m in modes)
            + (f" ({note})" if note else ""))
    return dataclasses.field(default=modes[0], metadata={"help": text, "modes": modes})


def sharing_modes(config_cls: type) -> tuple[str, ...]:
    """The sharing modes a method's config declares (its ``sharing`` field); () for one without it.

    The first is the default. A mixture grid can pair each method with each of its modes.
    """
    fields = {f.name: f for f in dataclasses.fields(config_cls)} if dataclasses.is_dataclass(config_cls) else {}
    return fields["sharing"].metadata["modes"] if "sharing" in fields else ()
