"""Trials under a budget on tiny T5: gradient accumulation to the effective batch, and the cache."""

import math

import pytest
from torch.optim.optimizer import register_optimizer_step_post_hook

from peftbench.budgets import plan as budget_plan
from peftbench.budgets.estimate import estimate_fit
from peftbench.budgets.plan import MARGIN
from peftbench.budgets.workload import Workload
from peftbench.harness import setup as harness_train
from peftbench.harness.config import TrialConfig
from peftbench.harness.records import read_records, validate
from peftbench.harness.trial import run_trial
from peftbench.tasks import get_task


def budget_for(micro_fit: int, workload: Workload) -> str:
    """A budget whose usable part holds ``micro_fit`` accumulating examples and not one more."""
    peak = estimate_fit(workload, capacity=10**12, batch_size=micro_fit, accumulate=True).peak_bytes
    next_peak = estimate_fit(workload, capacity=10**12, batch_size=micro_fit + 1, accumulate=True).peak_bytes
    n_bytes = math.ceil(peak / (1 - MARGIN))
    assert peak <= int(n_bytes * (1 - MARGIN)) < next_peak
    return f"{n_bytes // 10**9}.{n_bytes % 10**9:09d}GB"


@pytest.fixture
def events(monkeypatch):
    """'m' for each training micro-batch's forward, 'S' for each optimizer step, in order."""
    seen = []
    load_model = harness_train.load_model

    def counting_load_model(name, *, seed):
        model, tokenizer, source = load_model(name, seed=seed)
        model.register_forward_pre_hook(lambda module, args: seen.append("m") if module.training else None)
        return model, tokenizer, source

    monkeypatch.setattr(harness_train, "load_model", counting_load_model)
    handle = register_optimizer_step_post_hook(lambda *a: seen.append("S"))
    yield seen
    handle.remove()


@pytest.mark.parametrize("method", ["adapter", "full"])  # plain torch, and a DeepSpeed engine
def test_batch_100_with_micro_batch_25_steps_every_4_and_caches(method, tmp_path, events, monkeypatch):
    task = get_task("sst2")
    workload = Workload("tiny-t5", method, source_len=task.max_source_length, target_len=task.max_target_length)
    budget = budget_for(30, workload)  # 30 fit: the largest divisor of 100 that does is 25
    estimates = []
    monkeypatch.setattr(budget_plan, "estimate_fit", lambda *a, **kw: estimates.append(kw) or estimate_fit(*a, **kw))
    cfg = TrialConfig(model="tiny-t5", method=method, task="sst2", learning_rate=3e-3, seed=0, epochs=1,
                      batch=100, budget=budget, warmup_steps=0, data="fixtures")
    record = validate(run_trial(cfg, tmp_path))
    assert record["status"] == "ok", record["error"]
    assert (record["micro_batch_size"], record["accumulation_steps"], record["examples_per_step"]) == (25, 4, 100)
    assert (record["budget"], record["batch_chosen_by"]) == (budget, "estimated")
    micro_batches = math.ceil(len(task.load("fixtures")["train"]) / 25)  # 240 rows: 10
    assert events.count("m") == micro_batches
    training = "".join(events).lstrip("S")  # the estimates' and the memory measurement's steps come first
    assert training == "mmmmS" * (micro_batches // 4) + "m" * (micro_batches % 4)
    assert len(estimates) == 2  # without, then with gradients alive during accumulation

    # Same method, another learning rate and seed: the batch comes from the sweep's cache.
    events.clear()
    again = run_trial(TrialConfig(**{**cfg.__dict__, "learning_rate": 1e-3, "seed": 1}), tmp_path)
    assert again["status"] == "ok" and (again["micro_batch_size"], again["accumulation_steps"]) == (25, 4)
    # before training: the CPU memory measurement's one real step (harness/memory.py cpu_tensor_peak)
    assert len(estimates) == 2
    assert "".join(events).lstrip("S") == "mmmmS" * (micro_batches // 4) + "m" * (micro_batches % 4)
    assert (tmp_path / "budget-cache.json").exists() and len(read_records(tmp_path)) == 2
