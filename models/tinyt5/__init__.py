"""A tiny T5 pretrained by peftbench itself, offline: the smoke sweep's model.

``PRETRAINED`` is the name sweep specs use for it; ``pretrained_path()`` is the directory that
``T5ForConditionalGeneration.from_pretrained`` loads (its tokenizer is ``ByT5Tokenizer()``, which
needs no files). ``python -m peftbench.models.tinyt5.pretrain`` rebuilds the weights;
models/tinyt5/README.md describes the
corpus and why it holds nothing of the tasks' validation or test data.

A bottom-floor package: it imports nothing from harness/, budgets/ or reports/.
"""

from __future__ import annotations

from pathlib import Path

PRETRAINED = "tiny-t5-pretrained"


def pretrained_path() -> Path:
    """The directory of the committed pretrained weights (config.json, model.safetensors)."""
    return Path(__file__).parent / PRETRAINED
