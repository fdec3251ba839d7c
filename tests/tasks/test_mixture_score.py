"""A mixture's score: the mean of its members' scores (per-task, the default) or Hyperformer's flat mean of
every metric value (t5_trainer.py:262-263), where a task with two metrics counts twice."""

import pytest

from peftbench.harness.config import ConfigError, TrialConfig
from peftbench.tasks import get_task
from peftbench.tasks.mixture import Mixture

METRICS = {"rte": {"accuracy": 60.0, "invalid": 3, "examples": 40},
           "mrpc": {"f1": 90.0, "accuracy": 80.0, "invalid": 0, "examples": 40}}


def test_the_flat_mean_counts_a_two_metric_task_twice_and_never_the_counts():
    members = (get_task("rte"), get_task("mrpc"))
    assert Mixture("pair", members).score(METRICS) == pytest.approx((60 + 85) / 2)
    assert Mixture("pair", members, scoring="flat").score(METRICS) == pytest.approx((60 + 90 + 80) / 3)


def test_a_single_task_scores_the_same_either_way():
    (only,) = [get_task("mrpc")]
    assert Mixture("mrpc", (only,), scoring="flat").score(METRICS["mrpc"]) == Mixture("mrpc", (only,)).score(
        METRICS["mrpc"]) == 85.0


def test_mixture_score_is_per_task_or_flat_and_its_default_keeps_earlier_ids():
    def config(**kw):
        return TrialConfig(method="adapter", task="pair", mixture=("rte", "mrpc"), learning_rate=1e-3, **kw)

    with pytest.raises(ConfigError, match="mixture_score: expected one of per-task, flat"):
        config(mixture_score="mean")
    assert config(mixture_score="per-task").trial_id == config().trial_id != config(mixture_score="flat").trial_id


def test_a_mixture_trial_is_scored_as_its_config_says():
    from peftbench.budgets.plan import BatchPlan
    from peftbench.harness.setup import setup

    cfg = TrialConfig(method="adapter", task="pair", mixture=("rte", "mrpc"), learning_rate=1e-3, data="fixtures",
                      epochs=1, mixture_score="flat")
    trial = setup(cfg, BatchPlan(micro_batch=8, accumulation=1, chosen_by="fixed"))
    try:
        assert trial.task.score(METRICS) == pytest.approx(230 / 3)
    finally:
        trial.engine.close()
