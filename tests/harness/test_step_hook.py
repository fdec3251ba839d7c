"""The trial loop's step hook: called after every optimizer step with the loss left a tensor (reading it
would wait for the device), and in a sweep a rate-limited progress line inside long epochs."""

import math

import torch

from peftbench.budgets.plan import BatchPlan
from peftbench.harness.config import TrialConfig
from peftbench.harness.sweep import step_hook
from peftbench.harness.train import train


def test_the_loop_calls_the_hook_after_every_optimizer_step_with_the_loss_unread(tmp_path):
    calls = []
    cfg = TrialConfig(method="lora", task="rte", learning_rate=1e-3, model="tiny-t5", data="fixtures", epochs=1,
                      train_size=16, warmup_steps=2)
    train(cfg, BatchPlan(micro_batch=4, accumulation=2, chosen_by="fixed"), log=lambda line: None,
          step_hook=lambda step, loss, lr: calls.append((step, loss, lr)))
    assert [step for step, _, _ in calls] == [1, 2]  # 16 rows, 4 per micro-batch, 2 micro-batches a step
    assert all(isinstance(loss, torch.Tensor) and math.isfinite(loss.item()) for _, loss, _ in calls)
    assert calls[0][2] == 1e-3 / 2  # half-way through the two warm-up steps


def test_a_sweeps_progress_line_comes_every_few_seconds_after_the_first_step_and_reports_each():
    now, lines, reported = [0.0], [], []
    hook = step_hook("lora-rte", report=reported.append, show=lines.append, clock=lambda: now[0])
    hook(1, torch.tensor(0.7), 1e-4)  # the first step: to the trackers, no line (a short trial shows none)
    now[0] = 3.0
    hook(2, torch.tensor(0.6), 2e-4)  # too soon: nothing
    now[0] = 11.0
    hook(3, torch.tensor(0.5), 3e-4)
    assert [r["step"] for r in reported] == [1, 3]
    assert lines == ["[lora-rte] step 3 loss 0.5000 lr 3.00e-04"]


def test_without_trackers_nothing_is_reported_and_the_line_still_shows():
    now, lines = [0.0], []
    hook = step_hook("t", report=None, show=lines.append, clock=lambda: now[0])
    hook(1, 0.5, 1e-4)
    now[0] = 20.0
    hook(9, 0.25, 1e-4)
    assert lines == ["[t] step 9 loss 0.2500 lr 1.00e-04"]
