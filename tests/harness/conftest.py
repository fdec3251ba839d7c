"""Fixtures the harness tests share."""

import pytest
import torch
from transformers import ByT5Tokenizer, T5ForConditionalGeneration

from peftbench.models.load import tiny_t5_config


@pytest.fixture(scope="module")
def dropout_t5(tmp_path_factory) -> str:
    """A local tiny T5 with dropout 0.1: training consumes the torch RNG, so resume must restore it."""
    folder = tmp_path_factory.mktemp("dropout-t5")
    config = tiny_t5_config()
    config.dropout_rate = 0.1
    torch.manual_seed(0)
    T5ForConditionalGeneration(config).save_pretrained(folder)
    ByT5Tokenizer().save_pretrained(folder)
    return str(folder)
