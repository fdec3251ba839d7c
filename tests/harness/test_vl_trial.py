"""A VL trial end to end on the fixtures: it learns from the pictures, and its features are cached once."""

import json
from collections import Counter

from peftbench.harness.config import TrialConfig
from peftbench.harness.trial import run_trial
from peftbench.models import features
from peftbench.tasks import get_task
from peftbench.tasks.vl_metrics import vqa_accuracy


def test_full_fine_tuning_beats_the_majority_answer_on_vqa(tmp_path):
    """The fixture's answers are a colour or a count read off the picture; the text alone says which
    kind. Validation once, at the end (``eval_every_steps`` past the last step), to stay fast."""
    cfg = TrialConfig(model="tiny-t5", method="full", task="vqa", learning_rate=3e-3, seed=0, epochs=10,
                      batch_size=16, warmup_steps=5, data="fixtures", eval_every_steps=10_000)
    record = run_trial(cfg, tmp_path)
    assert record["status"] == "ok", record["error"]
    test = get_task("vqa").load("fixtures")["test"]
    majority = Counter(ex["multiple_choice_answer"] for ex in test).most_common(1)[0][0]
    baseline = vqa_accuracy([majority] * len(test), [[a["answer"] for a in ex["answers"]] for ex in test])
    assert record["test_metrics"]["vqa_accuracy"] > baseline["vqa_accuracy"] + 15
    assert record["model_source"] == "config:tiny-t5+tiny-clip" and record["trainable_pct"] == 100.0


def test_features_are_computed_by_the_first_trial_and_read_by_the_second(tmp_path, monkeypatch):
    monkeypatch.setenv("PEFTBENCH_FEATURES", str(tmp_path / "features"))
    common = {"model": "tiny-t5", "task": "nlvr2", "method": "adapter", "data": "fixtures", "epochs": 1,
              "batch_size": 32, "warmup_steps": 1, "train_size": 8, "seed": 0}
    before = features.EXTRACTED["tiny-clip"]
    first = run_trial(TrialConfig(learning_rate=1e-3, **common), tmp_path / "a")
    computed = features.EXTRACTED["tiny-clip"] - before
    (manifest,) = (tmp_path / "features").glob("*.json")
    (tensors,) = manifest.with_suffix("").glob("*.safetensors")  # the entry's one shard
    stamp = (tensors.stat().st_mtime_ns, manifest.stat().st_mtime_ns)
    second = run_trial(TrialConfig(learning_rate=3e-4, **common), tmp_path / "b")
    assert first["status"] == second["status"] == "ok", (first["error"], second["error"])
    # NLVR2: two pictures per example; every example of every split, once each
    splits = get_task("nlvr2").load("fixtures", train_size=8, seed=0)  # the trial's rows: its features' images
    assert computed == 2 * len({json.dumps([ex["left_image"], ex["right_image"]]) for rows in splits.values()
                                for ex in rows})
    assert features.EXTRACTED["tiny-clip"] - before == computed  # the second trial encoded nothing
    assert (tensors.stat().st_mtime_ns, manifest.stat().st_mtime_ns) == stamp
    assert json.loads(manifest.read_text())["key"]["source"] == "fixtures/nlvr2"


def test_a_vl_bart_trial_runs_on_the_fixtures_with_their_adapters(tmp_path):
    """VL-BART beside VL-T5: tiny-bart gets the tiny CLIP as tiny-t5 does, adapters after cross-attention too."""
    cfg = TrialConfig(model="tiny-bart", method="adapter",
                      method_options={"reduction_factor": 8, "cross_attention": True},
                      task="nlvr2", learning_rate=1e-3, seed=0, epochs=1, batch_size=32, warmup_steps=1,
                      data="fixtures", train_size=16)
    record = run_trial(cfg, tmp_path)
    assert record["status"] == "ok", record["error"]
    assert record["model_source"] == "config:tiny-bart+tiny-clip"
    assert 0 <= record["test_metrics"]["accuracy"] <= 100
