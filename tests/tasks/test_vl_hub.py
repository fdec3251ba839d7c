"""A VL dataset whose revision is a branch is loaded at one commit, resolved once, and named by it."""

from types import SimpleNamespace

import pytest

from peftbench.tasks import get_task, vl

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def hub(monkeypatch):
    """The hub, faked: a branch resolves to COMMIT; ``load_dataset`` records the revisions asked for."""
    import datasets
    import huggingface_hub

    asked = {"info": [], "load": []}

    def dataset_info(self, repo, revision=None):
        asked["info"].append((repo, revision))
        return SimpleNamespace(sha=COMMIT)

    def load_dataset(path, config=None, revision=None, **kwargs):
        asked["load"].append(revision)
        raise ConnectionError("no network in this test")  # what happens after the revision is chosen

    monkeypatch.setattr(huggingface_hub.HfApi, "dataset_info", dataset_info)
    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    monkeypatch.setattr(vl, "_HEADS", {})
    monkeypatch.setattr("peftbench.tasks.base.hub_reachable", lambda: True)
    return asked


@pytest.mark.parametrize("name", ["vqa", "gqa", "nlvr2", "coco-caption"])
def test_an_unpinned_vl_dataset_loads_the_commit_its_branch_resolves_to(hub, name):
    task = get_task(name)
    assert task.revision == vl.UNPINNED
    for _ in range(2):  # two loads, one question to the hub
        with pytest.raises(Exception, match="no network"):
            task.load_hub()
    assert hub["load"] and set(hub["load"]) == {COMMIT}
    assert hub["info"] == [(task.hub_path, vl.UNPINNED)]
    assert task.hub_source == f"hub:{task.hub_path}/{task.hub_config}@{COMMIT} (main when loaded)"


def test_a_full_commit_is_loaded_as_it_is(hub):
    assert vl.pinned("some/dataset", COMMIT) == COMMIT and hub["info"] == []
