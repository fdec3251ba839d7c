"""What a trial prints: a line per epoch when run alone (``peftbench trial``); none in a sweep, whose
driver prints each trial's start and end, while the lines that say something happened (a checkpoint
continued) still print. A sweep's trial runs torch on as many threads as the CPUs it holds."""

import torch

from peftbench.harness import sweep as sweep_module
from peftbench.harness.config import TrialConfig
from peftbench.harness.spec import parse_spec
from peftbench.harness.trial import run_trial


def test_epoch_lines_print_for_a_lone_trial_and_not_for_a_sweeps(tmp_path, capsys):
    cfg = TrialConfig(method="lora", task="rte", learning_rate=1e-3, model="tiny-t5", data="fixtures", epochs=2,
                      train_size=16, warmup_steps=0, batch_size=8)
    assert run_trial(cfg, tmp_path / "alone", write=False)["status"] == "ok"
    alone = capsys.readouterr().out
    assert f"[{cfg.trial_id}] epoch 1/2" in alone and f"[{cfg.trial_id}] epoch 2/2" in alone

    def killed(values):  # Ray stopping the trial at its first report, after epoch 1's checkpoint
        raise RuntimeError("stopped")

    assert run_trial(cfg, tmp_path / "swept", write=False, report=killed, epoch_lines=False)["status"] == "failed"
    record = run_trial(cfg, tmp_path / "swept", write=False, epoch_lines=False)
    swept = capsys.readouterr().out
    assert record["status"] == "ok" and len(record["val_metrics"]) == 2
    assert "epoch 1/2" not in swept and "epoch 2/2" not in swept
    assert f"[{cfg.trial_id}] continuing after epoch 1" in swept


def test_the_sweeps_trainable_asks_for_no_epoch_lines_and_one_thread_per_cpu(tmp_path, monkeypatch):
    from ray import tune

    import peftbench.budgets.measure

    spec = parse_spec({"model": "tiny-t5", "data": "fixtures", "methods": ["lora"], "tasks": ["rte"],
                       "learning_rates": [1e-3], "seeds": [0], "epochs": 1, "cpus_per_trial": 1})
    calls, reported = [], []
    monkeypatch.setattr(sweep_module, "run_trial", lambda cfg, out, **kw: calls.append(kw) or
                        {"status": "ok", "test_score": 1.0, "error": None})
    monkeypatch.setattr(tune, "report", reported.append)
    monkeypatch.setattr(peftbench.budgets.measure, "cap_address_space", lambda budget: None)  # not the test process
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        sweep_module.tune_trial({"point": spec.points()[0]}, spec=spec, out_dir=str(tmp_path))
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(threads)
    assert calls[0]["epoch_lines"] is False
    assert reported[-1]["status"] == "ok"


def test_the_suite_runs_torch_on_the_threads_its_conftest_sets():
    import os

    assert torch.get_num_threads() == int(os.environ["OMP_NUM_THREADS"])  # torch was imported after it was set
