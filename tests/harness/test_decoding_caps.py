"""A trial's decoding caps (``num_beams``, ``generation_max_length``): a smoke's untrained tiny model need not
beam-search captions at the paper's width; tasks that decode greedily to their target length are untouched,
and trials that set neither keep their ids."""

import pytest

from peftbench.harness.config import ConfigError, TrialConfig
from peftbench.harness.generation import capped, decoding
from peftbench.harness.setup import setup
from peftbench.tasks import get_task


def test_caps_replace_only_what_they_name_of_a_tasks_own_decoding():
    tvc = get_task("tvc")
    assert decoding(tvc)["num_beams"] == 5  # VL-Adapter's --num_beams 5
    narrow = capped(tvc, num_beams=1, max_length=None)
    assert decoding(narrow) == {**decoding(tvc), "num_beams": 1}
    assert decoding(capped(tvc, num_beams=None, max_length=8))["max_length"] == 8
    assert capped(tvc, num_beams=None, max_length=None) is tvc


def test_a_task_without_its_own_decoding_stays_greedy_to_its_target_length():
    rte = get_task("rte")
    assert capped(rte, num_beams=4, max_length=3) is rte
    assert decoding(rte)["num_beams"] == 1 and "max_length" not in decoding(rte)


def test_the_caps_change_a_trials_id_only_when_set_and_refuse_nonsense():
    base = {"method": "adapter", "task": "tvc", "learning_rate": 1e-3}
    assert TrialConfig(**base).trial_id == TrialConfig(**base, num_beams=None).trial_id
    assert TrialConfig(**base).trial_id != TrialConfig(**base, num_beams=1).trial_id
    with pytest.raises(ConfigError, match="num_beams"):
        TrialConfig(**base, num_beams=0)
    with pytest.raises(ConfigError, match="generation_max_length"):
        TrialConfig(**base, generation_max_length=2.5)


def test_a_trial_decodes_its_members_with_the_caps(monkeypatch):
    """setup() hands the capped tasks to everything after it: the mixture's members decode at beam 1."""
    seen = {}

    def stop(cfg, members, *args, **kwargs):
        seen.update({t.name: decoding(t) for t in members})
        raise StopIteration  # the members are all this test needs; nothing loads after them

    monkeypatch.setattr("peftbench.harness.setup.Mixture", stop)
    cfg = TrialConfig(method="adapter", task="video4", mixture=("tvqa", "tvc"), learning_rate=1e-3,
                      model="tiny-bart+tiny-clip-vit", num_beams=1)
    with pytest.raises(StopIteration):
        setup(cfg, plan=None)
    assert seen["tvc"]["num_beams"] == 1 and seen["tvc"]["max_length"] == decoding(get_task("tvc"))["max_length"]
    assert seen["tvqa"]["num_beams"] == 1
