"""A real Ray Tune sweep on tiny T5, offline: one ok record per grid point, and the report."""

import yaml

from peftbench.cli.main import main
from peftbench.harness.records import read_records
from peftbench.harness.spec import load_spec
from peftbench.reports.summary import summarize


def test_ray_sweep_records_every_grid_point_and_reports(tmp_path, capsys):
    spec_file = tmp_path / "mini.yaml"
    spec_file.write_text(yaml.safe_dump({
        "name": "mini", "model": "tiny-t5", "data": "fixtures",
        "methods": [{"name": "full", "options": {"zero_stage": 1}}, "adapter"],
        "tasks": ["sst2"], "learning_rates": [1e-2, 1e-3], "seeds": [0],
        "epochs": 1, "batch_size": 32, "warmup_steps": 2,
    }))
    out = tmp_path / "out"
    assert main(["sweep", str(spec_file), "--out", str(out)]) == 0

    records = {r["trial_id"]: r for r in read_records(out)}
    expected = {cfg.trial_id for cfg in load_spec(spec_file).trials()}
    assert set(records) == expected
    assert all(r["status"] == "ok" for r in records.values())

    table = capsys.readouterr().out
    assert "| full[zero_stage=1] |" in table and "| adapter |" in table
    summary = summarize(list(records.values()))
    assert sorted(summary["method"]) == ["adapter", "full[zero_stage=1]"]
    assert (summary["n_seeds"] == 1).all()

    assert main(["report", str(out), "--format", "csv"]) == 0
    header = (out / "summary.csv").read_text().splitlines()[0]
    assert header.startswith("method,task,learning_rate,test_score_mean,test_score_std,n_seeds,"
                             "trainable_pct,peak_memory_bytes,time_per_epoch_s")
