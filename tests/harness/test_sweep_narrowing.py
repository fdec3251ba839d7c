"""A sweep narrowed on the command line, resumed, filled in; lora beside compacter in one report; the
TensorBoard logger's event files hold each epoch's validation score."""

import struct

import yaml
from tensorboardX.proto import event_pb2

from peftbench.cli.main import main
from peftbench.harness.records import read_records
from peftbench.harness.spec import load_spec


def scalars(event_file) -> dict[str, list[float]]:
    """tag -> values of a TensorBoard event file (TFRecord framing: length, crc, data, crc)."""
    data, out, at = event_file.read_bytes(), {}, 0
    while at < len(data):
        (length,) = struct.unpack("<Q", data[at:at + 8])
        event = event_pb2.Event.FromString(data[at + 12:at + 12 + length])
        at += 12 + length + 4
        for value in event.summary.value:
            out.setdefault(value.tag, []).append(value.simple_value)
    return out


def test_narrowed_sweep_resumes_fills_in_and_logs_to_tensorboard(tmp_path, capsys):
    spec_file = tmp_path / "mix.yaml"
    spec_file.write_text(yaml.safe_dump({
        "name": "mix", "model": "tiny-t5", "data": "fixtures", "train_size": 32,
        "methods": ["lora", {"name": "compacter", "options": {"phm_dim": 4}}, "adapter"],
        "tasks": ["sst2"], "learning_rates": [1e-2], "seeds": [0], "epochs": 2, "batch_size": 16,
        "warmup_steps": 0, "loggers": ["tensorboard"],
    }))
    out = tmp_path / "out"
    assert main(["sweep", str(spec_file), "--out", str(out), "--methods", "lora,compacter"]) == 0
    records = read_records(out)
    assert sorted(r["method"] for r in records) == ["compacter", "lora"]
    assert all(r["status"] == "ok" for r in records)
    printed = capsys.readouterr().out
    assert "| lora |" in printed and "| compacter[phm_dim=4] |" in printed  # one report, both methods
    assert printed.count("tensorboard --logdir") == 1  # Ray's own line too was printed before
    assert f"tensorboard --logdir {out / 'tensorboard'}" in printed

    events = list((out / "tensorboard").rglob("events.out.tfevents.*"))
    assert sorted(e.parent.name for e in events) == sorted(r["trial_id"] for r in records)
    for event_file in events:
        logged = scalars(event_file)
        assert "final/test_score" in logged  # the final result, with the record
        assert len(logged["val/score"]) == 2  # one per epoch
    best_logged = sorted(round(max(scalars(e)["val/score"]), 3) for e in events)
    assert best_logged == sorted(round(r["val_score"], 3) for r in records)

    # the narrowed sweep again: nothing left to run, same folder, same spec
    assert main(["sweep", str(spec_file), "--out", str(out), "--resume", "--methods", "lora,compacter"]) == 0
    assert "2 trials already done" in capsys.readouterr().out
    # the rest of the grid, in the same folder
    assert main(["sweep", str(spec_file), "--out", str(out), "--resume", "--methods", "adapter"]) == 0
    expected = {cfg.trial_id for cfg in load_spec(spec_file).trials()}
    assert {r["trial_id"] for r in read_records(out)} == expected
