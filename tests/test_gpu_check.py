"""scripts/gpu-check against the simulated CUDA device (tests/testkit/cudasim.py): it never ran on a card."""

import importlib.machinery
import importlib.util
from pathlib import Path

from peftbench.budgets.parse import parse_budget
from peftbench.harness.spec import parse_spec
from peftbench.harness.sweep import gpu_share

from testkit.cudasim import simulated_cuda


def gpu_check():
    path = Path(__file__).parent.parent / "scripts" / "gpu-check"
    loader = importlib.machinery.SourceFileLoader("gpu_check", str(path))
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader("gpu_check", loader))
    loader.exec_module(module)
    return module


def test_gpu_check_measures_each_methods_batch(monkeypatch, capsys):
    with simulated_cuda(monkeypatch):
        rows = gpu_check().check_budgets("tiny-t5", "0.02GB", methods=("adapter", "bitfit"), seq_len=16, target_len=4)
    assert [r["method"] for r in rows] == ["adapter", "bitfit"]
    assert all(not r["estimated"] and r["batch_size"] > 1 for r in rows)
    assert "adapter    batch" in capsys.readouterr().out


def test_the_packed_sweep_puts_three_trials_on_one_card():
    raw = gpu_check().packed_spec(int(80e9))
    budget = parse_budget(raw["budget"])
    assert len(parse_spec(raw).trials()) == 3 and gpu_share(budget, int(80e9)) == 0.3333
