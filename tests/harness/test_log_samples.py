"""``log_samples``: each test row's input, target, what the model said and its scores, beside the record."""

import json

from peftbench.harness.config import TrialConfig
from peftbench.harness.trial import run_trial, samples_path
from peftbench.reports.summary import build
from peftbench.tasks import TextFormat, get_task


def test_a_trial_keeps_its_test_outputs_with_targets_and_scores(tmp_path, tiny_trial_kwargs):
    cfg = TrialConfig(method="bitfit", task="cb", learning_rate=1e-2, log_samples=True, **tiny_trial_kwargs)
    assert cfg.trial_id == TrialConfig(method="bitfit", task="cb", learning_rate=1e-2, **tiny_trial_kwargs).trial_id
    record = run_trial(cfg, tmp_path)
    assert record["status"] == "ok", record["error"]
    path = samples_path(tmp_path, cfg.trial_id)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    task, fmt = get_task("cb"), TextFormat(**record["text_format"])
    test = task.load("fixtures")["test"]
    assert [r["source"] for r in rows] == [task.source(ex, fmt) for ex in test]
    assert [r["target"] for r in rows] == [task.target(ex, fmt) for ex in test]
    assert sum(r["invalid"] for r in rows) == record["test_metrics"]["invalid"]
    correct = sum(r["scores"]["correct"] for r in rows)
    assert abs(100 * correct / len(rows) - record["test_metrics"]["accuracy"]) < 1e-9
    assert all(r["invalid"] == (r["output"].strip() not in task.texts(fmt)) for r in rows)
    invalid = [r for r in rows if r["invalid"]]
    [table] = [t for t in build(tmp_path).tables if t.key == "invalid-outputs"]  # the report shows a few
    assert [row[2] for row in table.rows] == [repr(r["output"]) for r in invalid[:3]]
    assert {row[4] for row in table.rows} <= {f"samples/{cfg.trial_id}.jsonl"}


def test_without_log_samples_nothing_is_kept(tmp_path, tiny_trial_kwargs):
    cfg = TrialConfig(method="bitfit", task="cb", learning_rate=1e-2, **tiny_trial_kwargs)
    record = run_trial(cfg, tmp_path)
    assert record["status"] == "ok" and not (tmp_path / "samples").exists()
    tables = [t for t in build(tmp_path).tables if t.key == "invalid-outputs"]
    if record["test_metrics"]["invalid"]:  # the report says how to keep them
        assert tables[0].rows == [] and "log_samples: true" in tables[0].notes[-1]
    else:
        assert tables == []
