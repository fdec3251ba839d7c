"""Trackers: each one's written run read back with its own package's reader (skipped where the package
is absent); the step reporter's rate limit; a failing tracker does not stop the others."""

import json

import pytest

from peftbench.harness.config import TrialConfig
from peftbench.harness.loggers import StepReporter, Trackers, make_trackers, result_values

CONFIG = TrialConfig(method="lora", task="sst2", learning_rate=1e-3, warmup_steps=7)
TRIAL = CONFIG.trial_id
RECORD = {"trial_id": TRIAL, "status": "ok", "error": None, "test_score": 88.5, "val_score": 90.0,
          "test_metrics": {"accuracy": 88.5, "invalid": 2}, "provenance": {"host": "x"}}


def one_trial(trackers: list) -> None:
    """What a sweep sends for one trial: two step results, a validation, the final record."""
    fed = Trackers(trackers, describe=lambda c: (TRIAL, CONFIG))
    config = {"point": {}}
    fed.start(config)
    fed.result(config, {"step": 1, "loss": 2.5, "lr": 1e-4})
    fed.result(config, {"step": 5, "loss": 1.5, "lr": 5e-4})
    fed.result(config, {"epoch": 1, "step": 8, "val_score": 90.0, "loss": 1.25})
    fed.result(config, {"status": "ok", "test_score": 88.5, "error": None, "record": RECORD})
    fed.finish(config, RECORD)


def test_step_reporter_passes_the_first_step_then_at_most_one_per_interval():
    now, sent = [0.0], []
    reporter = StepReporter(sent.append, every_s=10.0, clock=lambda: now[0])
    for step, t in enumerate([0.0, 3.0, 9.9, 10.0, 15.0, 25.0], start=1):
        now[0] = t
        reporter(step, loss=1.0 / step, lr=0.1)
    assert [s["step"] for s in sent] == [1, 4, 6]
    assert sent[1] == {"step": 4, "loss": 0.25, "lr": 0.1}


def test_results_are_told_apart_steps_validation_and_the_record():
    assert result_values({"step": 3, "loss": 1.0, "lr": 0.5}) == (3, {"train/loss": 1.0, "train/lr": 0.5})
    assert result_values({"step": 8, "epoch": 1, "val_score": 70.0}) == (8, {"val/score": 70.0})
    assert result_values({"record": RECORD, "test_score": 1.0}) is None


def test_tensorboard_run_read_back_with_tensorboards_reader(tmp_path):
    pytest.importorskip("tensorboardX")
    accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    one_trial(make_trackers(["tensorboard"], experiment="exp", out_dir=tmp_path))
    runs = list((tmp_path / "tensorboard").iterdir())
    assert [r.name for r in runs] == [TRIAL]  # one folder per trial under OUT/tensorboard
    events = accumulator.EventAccumulator(str(runs[0]))
    events.Reload()
    steps = {tag: [(e.step, round(e.value, 6)) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}
    assert steps["train/loss"] == [(1, 2.5), (5, 1.5), (8, 1.25)]
    assert steps["train/lr"] == [(1, 1e-4), (5, 5e-4)]
    assert steps["val/score"] == [(8, 90.0)]
    assert steps["final/test_score"] == [(8, 88.5)]
    assert steps["final/test_metrics/invalid"] == [(8, 2.0)]


def test_mlflow_run_read_back_from_the_local_database(tmp_path, monkeypatch):
    mlflow_client = pytest.importorskip("mlflow.tracking")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    one_trial(make_trackers(["mlflow"], experiment="exp", out_dir=tmp_path))
    assert (tmp_path / "mlflow.db").is_file()
    client = mlflow_client.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    [run] = client.search_runs([client.get_experiment_by_name("exp").experiment_id])
    assert run.info.run_name == TRIAL and run.info.status == "FINISHED"
    assert run.data.params["warmup_steps"] == "7" and run.data.tags["status"] == "ok"
    history = [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, "train/loss")]
    assert sorted(history) == [(1, 2.5), (5, 1.5), (8, 1.25)]
    assert [m.step for m in client.get_metric_history(run.info.run_id, "train/lr")] == [1, 5]
    assert run.data.metrics["val/score"] == 90.0 and run.data.metrics["final/test_score"] == 88.5
    record = json.loads((tmp_path / "mlartifacts").rglob("record.json").__next__().read_text())
    assert record["trial_id"] == TRIAL


def test_mlflow_follows_MLFLOW_TRACKING_URI(tmp_path, monkeypatch):
    mlflow_client = pytest.importorskip("mlflow.tracking")
    elsewhere = tmp_path / "elsewhere.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{elsewhere}")
    monkeypatch.chdir(tmp_path)  # such a store keeps artifacts where mlflow's default says: ./mlruns
    one_trial(make_trackers(["mlflow"], experiment="exp", out_dir=tmp_path / "out"))
    assert not (tmp_path / "out" / "mlflow.db").exists()
    client = mlflow_client.MlflowClient(f"sqlite:///{elsewhere}")
    [run] = client.search_runs([client.get_experiment_by_name("exp").experiment_id])
    assert run.data.metrics["final/test_score"] == 88.5
    assert not (tmp_path / "out" / "mlartifacts").exists()  # the folder's artifacts go with the folder's database


def test_wandb_offline_run_read_back_from_its_files(tmp_path, monkeypatch):
    wandb = pytest.importorskip("wandb")
    monkeypatch.delenv("WANDB_MODE", raising=False)  # offline is the default
    monkeypatch.setenv("WANDB_SILENT", "true")
    one_trial(make_trackers(["wandb"], experiment="exp", out_dir=tmp_path))
    wandb.teardown()  # the service process has written everything
    [run_file] = (tmp_path / "wandb").glob("offline-run-*/run-*.wandb")
    records = wandb_records(run_file)
    history = [rows(r.history.item) for r in records if r.WhichOneof("record_type") == "history"]
    assert [(h["_step"], h["train/loss"]) for h in history if "train/loss" in h] == [(1, 2.5), (5, 1.5), (8, 1.25)]
    assert [(h["_step"], h["val/score"]) for h in history if "val/score" in h] == [(8, 90.0)]
    summary = {}
    for r in records:
        if r.WhichOneof("record_type") == "summary":
            summary.update(rows(r.summary.update))
    assert summary["final/test_score"] == 88.5 and summary["status"] == "ok"
    [run] = [r.run for r in records if r.WhichOneof("record_type") == "run"]
    assert run.display_name == TRIAL and rows(run.config.update)["warmup_steps"] == "7"


def rows(items) -> dict:
    """A W&B record's items (key, JSON value) as a dict."""
    return {item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in items}


def wandb_records(path) -> list:
    """The records of an offline W&B run file: wandb's protobuf ``Record``s in LevelDB-log framing
    (a 7-byte file header, then 32 KiB blocks of chunks: crc32 4 bytes, length 2, type 1 = whole,
    2 = first, 3 = middle, 4 = last). wandb 0.31 has no Python reader of its own left."""
    from wandb.proto import wandb_internal_pb2

    data, at, out, pending = path.read_bytes(), 7, [], b""
    while at + 7 <= len(data):
        left_in_block = 32768 - at % 32768
        if left_in_block < 7:  # a block's tail too short for a header is padding
            at += left_in_block
            continue
        length, kind = int.from_bytes(data[at + 4:at + 6], "little"), data[at + 6]
        if length == 0 and kind == 0:
            break
        pending += data[at + 7:at + 7 + length]
        at += 7 + length
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            out.append(record)
            pending = b""
    return out


def test_a_failing_tracker_is_dropped_with_one_line_and_the_others_go_on():
    class Broken:
        def start(self, *a):
            raise OSError("disk full\nsecond line")

    class Kept:
        def __init__(self):
            self.calls = []

        def __getattr__(self, name):
            return lambda *a: self.calls.append(name)

    kept, lines = Kept(), []
    fed = Trackers([Broken(), kept], describe=lambda c: (TRIAL, CONFIG), log=lines.append)
    fed.start({})
    fed.result({}, {"step": 1, "loss": 1.0, "lr": 0.1})
    fed.finish({}, RECORD)
    assert lines == ["tracker Broken stopped: OSError: disk full"]
    assert kept.calls == ["start", "log", "finish"]


def test_where_each_tracker_wrote_is_one_line_each(tmp_path, monkeypatch):
    from peftbench.harness.loggers import where_lines

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    assert where_lines(["tensorboard", "mlflow", "wandb"], tmp_path) == [
        f"TensorBoard: tensorboard --logdir {tmp_path / 'tensorboard'}",
        f"MLflow: mlflow ui --backend-store-uri sqlite:///{tmp_path / 'mlflow.db'}",
        f"W&B: offline runs in {tmp_path / 'wandb'}; wandb sync {tmp_path / 'wandb'}/offline-run-* uploads them"]
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://tracker:5000")
    assert where_lines(["mlflow"], tmp_path) == ["MLflow: runs at http://tracker:5000"]


def test_the_ray_callback_pickles_without_its_open_trackers(tmp_path):
    """Ray saves its callbacks with the experiment's state: open event files must not go with them."""
    pytest.importorskip("tensorboardX")
    import pickle

    from ray import cloudpickle

    from peftbench.harness.loggers import tracker_callback

    (callback,) = tracker_callback(["tensorboard"], experiment="exp", out_dir=tmp_path,
                                   describe=lambda c: (TRIAL, CONFIG))

    class Trial:
        config, last_result = {"point": {}}, {"record": RECORD}

    callback.on_trial_start(0, [], Trial())
    callback.on_trial_result(0, [], Trial(), {"step": 1, "loss": 2.0, "lr": 0.1})
    copy = pickle.loads(cloudpickle.dumps(callback))
    assert copy.fed is None and callback.fed is not None
    callback.on_trial_complete(0, [], Trial())
    assert [p.name for p in (tmp_path / "tensorboard").iterdir()] == [TRIAL]
