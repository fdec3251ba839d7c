"""One trial without Ray: it learns, records, fails cleanly and never runs twice."""

from collections import Counter

from peftbench.harness.config import TrialConfig
from peftbench.harness.records import read_records
from peftbench.harness.trial import run_trial
from peftbench.tasks import get_task


def test_full_fine_tuning_beats_the_majority_class_on_sst2(tmp_path):
    # 4 epochs: 80.0 against a majority class of 53.3 (10 epochs took 1.6x the CPU time for 88.3)
    cfg = TrialConfig(model="tiny-t5", method="full", task="sst2", learning_rate=3e-3, seed=0,
                      epochs=4, batch_size=16, warmup_steps=5, data="fixtures")
    record = run_trial(cfg, tmp_path)
    labels = [ex["label"] for ex in get_task("sst2").load("fixtures")["test"]]
    majority = 100 * Counter(labels).most_common(1)[0][1] / len(labels)
    assert record["status"] == "ok", record["error"]
    assert record["test_score"] > majority + 10
    assert len(record["val_metrics"]) == 4
    assert record["val_score"] == max(get_task("sst2").score(m) for m in record["val_metrics"])
    assert record["trainable_pct"] == 100.0
    assert record["peak_memory_bytes"] > 0 and record["time_per_epoch_s"] > 0


def test_adapter_trains_only_adapters_and_layer_norms(tmp_path, tiny_trial_kwargs):
    cfg = TrialConfig(method="adapter", task="rte", learning_rate=1e-3, seed=0, **tiny_trial_kwargs)
    record = run_trial(cfg, tmp_path)
    assert record["status"] == "ok", record["error"]
    assert 0 < record["trainable_params"] < record["total_params"]
    assert record["best_epoch"] == 1 and set(record["test_metrics"]) == {"accuracy", "invalid", "examples"}


def test_a_failing_trial_is_recorded_with_its_reason(tmp_path, tiny_trial_kwargs):
    cfg = TrialConfig(method="adapter", method_options={"reduction_factor": -4}, task="sst2",
                      learning_rate=1e-3, seed=0, **tiny_trial_kwargs)
    record = run_trial(cfg, tmp_path)
    assert record["status"] == "failed"
    assert "reduction_factor" in record["error"]
    assert read_records(tmp_path) == [record]


def test_a_finished_trial_is_not_run_again(tmp_path, tiny_trial_kwargs):
    cfg = TrialConfig(method="adapter", task="sst2", learning_rate=1e-3, seed=0, **tiny_trial_kwargs)
    first = run_trial(cfg, tmp_path)
    path = tmp_path / "results" / f"{cfg.trial_id}.json"
    stamp = path.stat().st_mtime_ns
    assert run_trial(cfg, tmp_path) == first
    assert path.stat().st_mtime_ns == stamp


def test_a_killed_trial_continues_from_its_last_epoch(tmp_path, tiny_trial_kwargs):
    cfg = TrialConfig(method="adapter", task="sst2", learning_rate=1e-3, seed=0,
                      **{**tiny_trial_kwargs, "epochs": 3})
    seen = []

    def die_after_epoch_2(metrics):
        seen.append(metrics)
        if metrics["epoch"] == 2:
            raise RuntimeError("simulated kill")

    killed = run_trial(cfg, tmp_path, report=die_after_epoch_2)
    assert killed["status"] == "failed" and "simulated kill" in killed["error"]
    assert (tmp_path / "checkpoints" / cfg.trial_id / "loop.pt").exists()

    resumed_epochs = []
    record = run_trial(cfg, tmp_path, report=resumed_epochs.append)
    assert record["status"] == "ok"
    assert [m["epoch"] for m in resumed_epochs] == [3]  # epochs 1-2 were not trained again
    assert [get_task("sst2").score(m) for m in record["val_metrics"][:2]] == [m["val_score"] for m in seen]
    assert not (tmp_path / "checkpoints" / cfg.trial_id).exists()
    # each epoch's times, the two before the kill from the checkpoint: wall and the process's CPU
    assert len(record["epochs_s"]) == len(record["epochs_cpu_s"]) == 3
    assert record["time_per_epoch_s"] == sum(record["epochs_s"]) / 3
    assert record["cpu_time_per_epoch_s"] == sum(record["epochs_cpu_s"]) / 3 and all(record["epochs_cpu_s"])
    # the trial's CPU time is this run's alone (start-up and evaluation included): it covers epoch 3
    assert record["cpu_time_s"] >= record["epochs_cpu_s"][2]
