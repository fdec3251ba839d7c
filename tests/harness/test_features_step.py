"""The sweep's feature step (harness/features.py): each VL task of the grid, once, every split's images
encoded into the cache, so a trial after it encodes nothing whatever its subsample."""

from peftbench.harness.config import TrialConfig
from peftbench.harness.features import extract_features, feature_jobs
from peftbench.models import features
from peftbench.tasks import get_task


def trials():
    common = {"model": "tiny-t5", "method": "adapter", "learning_rate": 1e-3, "data": "fixtures"}
    return [TrialConfig(task="rte", **common), TrialConfig(task="nlvr2", train_size=8, **common),
            TrialConfig(task="vl2", mixture=("vqa", "nlvr2"), **common),
            TrialConfig(task="vqa", seed=1, **common)]


def test_each_vl_task_is_one_job_and_text_tasks_none():
    assert feature_jobs(trials()) == [("nlvr2", "fixtures", "tiny-t5"), ("vqa", "fixtures", "tiny-t5")]


def test_after_the_feature_step_a_trial_encodes_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("PEFTBENCH_FEATURES", str(tmp_path))
    shards, lines = [], []

    def map_for(what):
        def map_fn(fn, items):
            items = list(items)
            shards.append((what, len(items)))
            return map(fn, items)
        return map_fn

    before = features.EXTRACTED["tiny-clip"]
    assert extract_features(trials(), map_for=map_for, log=lines.append) == 2
    images = {t: {tuple(get_task(t).images(ex)) for rows in get_task(t).load("fixtures").values() for ex in rows}
              for t in ("nlvr2", "vqa")}
    assert features.EXTRACTED["tiny-clip"] - before == 2 * len(images["nlvr2"]) + len(images["vqa"])
    assert [what for what, _ in shards] == ["nlvr2 (tiny-clip, fixtures)", "vqa (tiny-clip, fixtures)"]
    assert lines[-1].startswith("[features] vqa (tiny-clip, fixtures): ready")

    # what a trial does with its subsample: every row's features read from the cache, none encoded
    after = features.EXTRACTED["tiny-clip"]
    for name in ("nlvr2", "vqa"):
        task = get_task(name)
        loaded = task.load_with_source("fixtures", train_size=8, seed=3)
        inputs = task.model_inputs(loaded.splits, model="tiny-t5+tiny-clip", data_source=loaded.source)
        assert len(inputs["train"]) == 8 and inputs["train"][0]["visual_features"].shape[0] == task.images_per_example
    assert features.EXTRACTED["tiny-clip"] == after
