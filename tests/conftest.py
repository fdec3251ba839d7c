"""Shared fixtures: tiny T5 everywhere, offline, one thread per test process."""

import os
import tempfile

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# torch's threads, read when torch is imported (here, in sweeps the tests start, and in their Ray
# workers): the tests' models are tiny, and on a busy machine two threads wait on each other (one
# adapter epoch on SST-2 took 1 CPU second at one thread, 21-23 at two)
os.environ.setdefault("OMP_NUM_THREADS", "1")
# image features of the VL tasks: a cache of this test run's own, never the user's
os.environ.setdefault("PEFTBENCH_FEATURES", tempfile.mkdtemp(prefix="peftbench-features-"))


@pytest.fixture
def tiny_trial_kwargs():
    """Settings of a quick tiny-T5 trial on the offline fixtures."""
    return {"model": "tiny-t5", "data": "fixtures", "epochs": 1, "batch_size": 32, "warmup_steps": 2}


class _Payload:
    """Unpickling this writes ``marker``: what a file planted in an output folder would do."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return exec, (f"open({str(self.marker)!r}, 'w').write('code ran')",)


@pytest.fixture
def plant_pickle():
    """``plant(path, marker)``: a torch file at ``path`` whose unpickling would write ``marker``."""
    import torch

    def plant(path, marker):
        torch.save({"epoch": 1, "payload": _Payload(marker)}, path)

    return plant


@pytest.fixture(autouse=True)
def _task_registry_restored():
    """Tasks a test registers from task files (a spec's, a trial's declarations) end with the test."""
    from peftbench import tasks

    before = dict(tasks._REGISTRY)
    yield
    tasks._REGISTRY.clear()
    tasks._REGISTRY.update(before)
