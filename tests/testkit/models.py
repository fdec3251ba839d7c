"""The random tiny T5 the unit tests build in memory (models/load.py's configuration, no files), a
batch for it, and the method options it can take."""

from __future__ import annotations

import torch
from transformers import T5ForConditionalGeneration

from peftbench.models.load import model_config, model_from_config

# tiny-t5 (d_model 128, bottleneck 4, 2 blocks) cannot take some paper defaults
TINY_OPTIONS = {
    "adapterdrop": {"dropped_layers": 1},
    "phm-adapter": {"phm_dim": 4},
    "prompt-tuning-r": {"prompt_length": 7},
    "prompt-tuning-t": {"prompt_length": 7},
    "intrinsic-said": {"said_dim": 300},
}


def tiny_model(seed: int = 0, *, name: str = "tiny-t5", layers: int | None = None,
               dropout: float | None = None) -> T5ForConditionalGeneration:
    """A tiny random model of ``name`` (tiny-t5, tiny-bart, …+tiny-clip) in eval mode, the same weights for the
    same arguments: ``layers`` blocks in each T5 stack (default: the configuration's 2), ``dropout`` its rate
    (default: the configuration's 0)."""
    torch.manual_seed(seed)
    config = model_config(name)
    if layers is not None:
        config.num_layers = config.num_decoder_layers = layers
    if dropout is not None:
        config.dropout_rate = dropout
    return model_from_config(config).eval()


def tiny_batch(seed: int = 1) -> dict:
    """Three rows of random ids for ``tiny_model``, one of them padded, with labels."""
    g = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(2, 384, (3, 9), generator=g)
    mask = torch.ones_like(input_ids)
    mask[0, 6:] = 0  # one padded row
    return {"input_ids": input_ids, "attention_mask": mask, "labels": torch.randint(2, 384, (3, 4), generator=g)}
