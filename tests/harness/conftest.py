"""Fixtures the harness tests share."""

import pytest
from transformers import ByT5Tokenizer

from testkit.models import tiny_model


@pytest.fixture(scope="module")
def dropout_t5(tmp_path_factory) -> str:
    """A local tiny T5 with dropout 0.1: training consumes the torch RNG, so resume must restore it."""
    folder = tmp_path_factory.mktemp("dropout-t5")
    tiny_model(dropout=0.1).save_pretrained(folder)
    ByT5Tokenizer().save_pretrained(folder)
    return str(folder)
