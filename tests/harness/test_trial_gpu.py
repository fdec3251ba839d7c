"""A trial on a simulated CUDA device (tests/testkit/cudasim.py), and what a GPU trial leaves behind."""

import weakref

import pytest

from peftbench.harness.config import TrialConfig
from peftbench.harness.trial import run_trial

from testkit.cudasim import NAME, collected, simulated_cuda


def test_a_fixed_batch_trial_runs_end_to_end_on_the_simulated_device(monkeypatch, tmp_path, tiny_trial_kwargs):
    cfg = TrialConfig(method="adapter", task="rte", learning_rate=1e-3, train_size=16, **tiny_trial_kwargs)
    with simulated_cuda(monkeypatch, total=80 * 10**9) as memory:
        record = run_trial(cfg, tmp_path)
    assert record["status"] == "ok", record["error"]
    assert memory.cap == cfg.budget_bytes and record["batch_chosen_by"] == "fixed"
    assert record["memory_measured_by"] == "torch.cuda.max_memory_allocated"
    assert 0 < record["peak_memory_bytes"] <= memory.high
    assert record["provenance"]["device"] == NAME
    assert record["precision"] == {"precision": "fp32", "matmul_fp32": "ieee", "conv_fp32": "ieee"}


def test_a_failing_trial_lets_go_of_its_deepspeed_engine(monkeypatch, tiny_trial_kwargs):
    from peftbench.budgets.plan import BatchPlan
    from peftbench.harness import train as train_module

    setup, models = train_module.setup, []

    def tracked_setup(cfg, plan, **kwargs):
        run = setup(cfg, plan, **kwargs)
        models.append(weakref.ref(run.engine.module))
        return run

    def fail(*args):
        raise RuntimeError("validation broke")

    monkeypatch.setattr(train_module, "setup", tracked_setup)
    monkeypatch.setattr(train_module, "validate", fail)
    # ZeRO stage 0: a DeepSpeed engine without the 2 GB ZeRO-2 bucket, which is slow to fill on a CPU
    cfg = TrialConfig(method="full", task="rte", learning_rate=1e-3, train_size=8, method_options={"zero_stage": 0},
                      **tiny_trial_kwargs)
    with pytest.raises(RuntimeError, match="validation broke"):
        train_module.train(cfg, BatchPlan(8, 1, "fixed"), log=lambda line: None)
    assert models and collected(models)


def test_distributed_workers_ask_for_gpus_when_the_cluster_has_them(monkeypatch):
    import ray
    import torch

    from peftbench.harness.distributed import scaling

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # the coordinating trial holds none
    monkeypatch.setattr(ray, "cluster_resources", lambda: {"CPU": 16.0, "GPU": 2.0})
    assert scaling(2).use_gpu
    monkeypatch.setattr(ray, "cluster_resources", lambda: {"CPU": 16.0})
    assert not scaling(2).use_gpu
