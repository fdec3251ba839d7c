"""A model of any size built from its configuration alone, with a method applied, on any device:
memory and step time do not depend on the weights' values, so budgets and benchmarks download nothing."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from transformers import T5ForConditionalGeneration

from peftbench.methods import apply_method
from peftbench.methods.multitask import set_task
from peftbench.models.load import DTYPES, default_dtype, model_config, model_from_config
from peftbench.models.spec import ModelSpec


def build_model(name: str | ModelSpec, method: str, options: dict | None = None, *, device: str | torch.device = "cpu",
                dtype: str = "float32", tasks: Sequence[str] | None = None) -> T5ForConditionalGeneration:
    """A model of ``name``'s configuration with random weights, ``method`` applied, in train mode.

    Everything, the method's own modules included, is created on ``device`` in ``dtype``. ``tasks``:
    a mixture's members; every member's modules are built, and forwards go to the first's (a trial's
    every batch, too, runs one task's modules).
    """
    with torch.device(device), default_dtype(DTYPES[dtype]):
        model = model_from_config(model_config(name))
        apply_method(model, method, options, tasks=tasks)
    if tasks:
        set_task(model, tasks[0])
    return model.train()
