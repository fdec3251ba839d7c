"""Shared fixtures: tiny T5 everywhere, offline, one thread per test process."""

import os
import tempfile

import pytest
from xdist.scheduler import LoadScopeScheduling

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# torch's threads, read when torch is imported (here, in sweeps the tests start, and in their Ray
# workers): the tests' models are tiny, and on a busy machine two threads wait on each other (one
# adapter epoch on SST-2 took 1 CPU second at one thread, 21-23 at two)
os.environ.setdefault("OMP_NUM_THREADS", "1")
# image features of the VL tasks: a cache of this test run's own, never the user's
os.environ.setdefault("PEFTBENCH_FEATURES", tempfile.mkdtemp(prefix="peftbench-features-"))


# The test modules that start Ray (a sweep, in this process or its own, or `ray start`). Under pytest-xdist
# they run one at a time, on one worker: a local Ray takes every CPU of the machine, and on a fresh machine
# two would race to write ~/.ray/auth_token. A new module that starts Ray goes here.
RAY_MODULES = frozenset(f"tests/{m}.py" for m in (
    "cli/test_dry_run_cluster", "harness/test_lost_trials", "harness/test_multitask_sweep", "harness/test_ray_ended",
    "harness/test_resilience", "harness/test_sweep", "harness/test_sweep_interrupt", "harness/test_sweep_narrowing",
    "harness/test_sweep_orphans", "harness/test_task_file_sweep", "harness/test_video_sweep",
    "harness/test_vl_sweep", "harness/test_vl_sweep_bad_cache"))
RAY = "the tests that start Ray"


class ModulesAndRay(LoadScopeScheduling):
    """pytest-xdist's work units (pyproject.toml runs the suite on every core): each test module whole, so
    its module fixtures are built once, and ``RAY_MODULES`` together as one unit, sent first: it is the
    longest, and the last unit sent sets when the suite ends. (xdist's own ``--dist loadgroup`` would group
    by mark, but its grouping is lost on pytest ≥ 9.2: pytest-dev/pytest-xdist#1386.)"""

    def _split_scope(self, nodeid: str) -> str:
        module = nodeid.split("::", 1)[0]
        return RAY if module in RAY_MODULES else module

    def _assign_work_unit(self, node) -> None:
        if RAY in self.workqueue:
            self.workqueue.move_to_end(RAY, last=False)
        super()._assign_work_unit(node)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config):
    """``-n auto`` (pyproject.toml): the whole suite (``pytest`` naming no paths) on every core, xdist's count;
    named tests in this process, which starts them at once (each worker first imports torch and collects)."""
    return None if config.args_source is pytest.Config.ArgsSource.TESTPATHS else 0


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """``--dist loadscope`` (pyproject.toml) as ``ModulesAndRay``."""
    if config.getvalue("dist") != "loadscope":
        return None
    if missing := sorted(m for m in RAY_MODULES if not (config.rootpath / m).is_file()):
        raise pytest.UsageError(f"tests/conftest.py: RAY_MODULES names no such file: {', '.join(missing)}")
    return ModulesAndRay(config, log)


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
