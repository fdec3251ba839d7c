"""Shared fixtures: tiny T5 everywhere, offline, one thread per test process."""

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture
def tiny_trial_kwargs():
    """Settings of a quick tiny-T5 trial on the offline fixtures."""
    return {"model": "tiny-t5", "data": "fixtures", "epochs": 1, "batch_size": 32, "warmup_steps": 2}
