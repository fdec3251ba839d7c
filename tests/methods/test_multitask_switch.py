"""The task switch routes each forward to the current task's module, and a single-task model has none."""

import pytest
import torch
from torch import nn

from peftbench.methods.multitask import PerTask, attach_tasks, set_task, task_switch


def test_per_task_module_follows_the_switch_and_gradients_stay_in_the_current_task():
    holder = nn.Module()
    switch = attach_tasks(holder, ["rte", "sst2"])
    holder.route = PerTask({t: nn.Linear(3, 3) for t in switch.tasks}, switch)
    x = torch.randn(2, 3)
    set_task(holder, "sst2")
    holder.route(x).sum().backward()
    grads = {n: p.grad for n, p in holder.named_parameters()}
    assert grads["route.tasks.sst2.weight"] is not None and grads["route.tasks.rte.weight"] is None
    assert switch.index == 1
    set_task(holder, "rte")
    assert torch.equal(holder.route(x), holder.route.tasks["rte"](x))
    assert "peftbench_task_switch" not in str(holder.state_dict().keys())


def test_switch_refuses_unknown_tasks_and_forwards_before_a_task_is_set():
    holder = nn.Module()
    switch = attach_tasks(holder, ["rte", "sst2"])
    holder.route = PerTask({t: nn.Identity() for t in switch.tasks}, switch)
    with pytest.raises(RuntimeError, match="set_task"):
        holder.route(torch.zeros(1))
    with pytest.raises(KeyError, match="not a member"):
        set_task(holder, "mnli")
    with pytest.raises(ValueError, match="distinct"):
        attach_tasks(nn.Module(), ["rte", "rte"])
    assert task_switch(nn.Linear(1, 1)) is None
    set_task(nn.Linear(1, 1), "rte")  # single-task model: nothing to route, no error
