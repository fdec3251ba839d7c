"""The optimiser's settings as options: AdamW's epsilon, warm-up as a share of the steps (VL-Adapter's 1e-6
and 0.1, param.py:127 and their --warmup_ratio), reaching the optimizer and its schedule."""

import pytest
import torch

from peftbench.budgets.plan import BatchPlan
from peftbench.harness.config import ConfigError, TrialConfig
from peftbench.harness.setup import optimization, setup

PLAN = BatchPlan(micro_batch=8, accumulation=2, chosen_by="fixed")


def config(**kw) -> TrialConfig:
    return TrialConfig(**{"method": "bitfit", "task": "rte", "learning_rate": 1e-3, "data": "fixtures", "epochs": 3,
                          "batch_size": 8, **kw})


def test_a_warmup_ratio_is_that_share_of_the_optimizer_steps_rounded_down():
    # 3 epochs × ceil(100 / 8) = 39 micro-batches = 19 optimizer steps; 10 % of 19 = 1.9 -> 1
    opt = optimization(config(warmup_ratio=0.1), PLAN, train_rows=100, epochs=3, world=1)
    assert (opt.total_steps, opt.warmup_steps) == (19, 1)
    opt = optimization(config(warmup_ratio=0.5, warmup_steps=7), PLAN, train_rows=100, epochs=3, world=1)
    assert opt.warmup_steps == 9  # the ratio wins over the steps
    assert optimization(config(warmup_steps=7), PLAN, train_rows=100, epochs=3, world=1).warmup_steps == 7


def test_adamw_gets_the_trials_epsilon_and_weight_decay():
    trial = setup(config(adam_eps=1e-6, weight_decay=0.01, warmup_ratio=0.1), PLAN)
    try:
        group = trial.engine.optimizer.param_groups[0]
        assert (group["eps"], group["weight_decay"]) == (1e-6, 0.01)
        assert trial.engine.opt.warmup_steps == int(trial.engine.opt.total_steps * 0.1)
    finally:
        trial.engine.close()
    default = setup(config(), PLAN)
    try:
        assert default.engine.optimizer.param_groups[0]["eps"] == 1e-8
    finally:
        default.engine.close()


@pytest.mark.parametrize(("key", "value"), [("adam_eps", 0.0), ("warmup_ratio", 1.5), ("warmup_ratio", -0.1),
                                          ("label_smoothing", 1.0), ("smoothed_loss", "total")])
def test_out_of_range_optimiser_settings_fail_before_anything_loads(key, value):
    with pytest.raises(ConfigError, match=f"{key}: expected"):
        config(**{key: value})


def test_the_new_settings_at_their_defaults_keep_earlier_trial_ids():
    assert config(adam_eps=1e-8, warmup_ratio=None).trial_id == config().trial_id != config(adam_eps=1e-6).trial_id


def test_label_smoothing_trains_on_the_smoothed_token_loss():
    """ε = 0.1: (1-ε)·NLL + ε·mean(-log p) over the vocabulary, padding left out; 0 leaves the model's loss."""
    trial = setup(config(label_smoothing=0.1), PLAN)
    plain = setup(config(), PLAN)
    try:
        batch = next(trial.train_batches(trial.new_order()))[1]
        batch["labels"][0, -2:] = -100  # padding is not scored
        out = trial.engine.module(**batch)
        logp = out.logits.log_softmax(-1)
        kept = batch["labels"] != -100
        nll = -logp.gather(-1, batch["labels"].clamp(min=0)[..., None])[..., 0]
        expected = (0.9 * nll - 0.1 * logp.mean(-1))[kept].mean()
        torch.testing.assert_close(trial.engine.loss(out, batch["labels"]), expected)
        torch.testing.assert_close(plain.engine.loss(out, batch["labels"]), out.loss)
        assert not torch.allclose(expected, out.loss)
    finally:
        trial.engine.close()
        plain.engine.close()


def test_hyperformers_smoothed_loss_sums_over_the_target_tokens():
    """Their fairseq loss sums (1-ε)·NLL + ε/V·Σ(-log p) over the batch's target tokens (utils.py:64-65), padding
    left out; without smoothing they keep the model's mean loss, and so does ``smoothed_loss: sum``."""
    summed = setup(config(label_smoothing=0.1, smoothed_loss="sum"), PLAN)
    unsmoothed = setup(config(smoothed_loss="sum"), PLAN)
    try:
        batch = next(summed.train_batches(summed.new_order()))[1]
        batch["labels"][0, -2:] = -100
        out = summed.engine.module(**batch)
        logp = out.logits.log_softmax(-1)
        kept = batch["labels"] != -100
        nll = -logp.gather(-1, batch["labels"].clamp(min=0)[..., None])[..., 0]
        expected = (0.9 * nll - 0.1 * logp.mean(-1))[kept].sum()
        torch.testing.assert_close(summed.engine.loss(out, batch["labels"]), expected)
        torch.testing.assert_close(unsmoothed.engine.loss(out, batch["labels"]), out.loss)
        assert kept.sum() > 1 and not torch.allclose(expected, expected / kept.sum())
    finally:
        summed.engine.close()
        unsmoothed.engine.close()
