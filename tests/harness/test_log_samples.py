"""``log_samples``: each test row's input, target, what the model said and its scores, beside the record."""

import json

from peftbench.harness.config import TrialConfig
from peftbench.harness.trial import run_trial, samples_path
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


def test_without_log_samples_nothing_is_kept(tmp_path, tiny_trial_kwargs):
    cfg = TrialConfig(method="bitfit", task="cb", learning_rate=1e-2, **tiny_trial_kwargs)
    assert run_trial(cfg, tmp_path)["status"] == "ok"
    assert not (tmp_path / "samples").exists()
