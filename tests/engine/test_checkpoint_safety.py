"""A checkpoint planted in the output folder runs no code: plain-torch and DeepSpeed checkpoints are
read as tensors and plain data only, and a trial whose checkpoint cannot be read starts afresh."""

import pytest
import torch

from peftbench.budgets.plan import BatchPlan
from peftbench.engine.state import LOOP_STATE, load_checkpoint, save_checkpoint
from peftbench.engine.step import Engine, Optimization, deepspeed_config_of
from peftbench.harness.config import TrialConfig
from peftbench.harness.train import resume
from peftbench.methods import apply_method
from peftbench.models.load import load_model


def test_the_payload_is_live_when_unpickled(tmp_path, plant_pickle):
    plant_pickle(tmp_path / "evil.pt", tmp_path / "ran")
    torch.load(tmp_path / "evil.pt", weights_only=False)  # what the checkpoints must never do
    assert (tmp_path / "ran").read_text() == "code ran"


def test_a_planted_loop_checkpoint_runs_nothing_and_the_trial_starts_afresh(tmp_path, tiny_trial_kwargs,
                                                                             plant_pickle):
    cfg = TrialConfig(method="bitfit", task="sst2", learning_rate=1e-3, **tiny_trial_kwargs)
    checkpoint = tmp_path / "checkpoints" / cfg.trial_id
    checkpoint.mkdir(parents=True)
    plant_pickle(checkpoint / LOOP_STATE, tmp_path / "ran")
    lines = []
    run, state = resume(cfg, BatchPlan(micro_batch=8, accumulation=1, chosen_by="fixed"), checkpoint, lines.append)
    assert state is None and run.engine.micro_steps == 0
    assert not (tmp_path / "ran").exists() and not checkpoint.exists()
    assert len(lines) == 1 and "unreadable (UnpicklingError" in lines[0] and lines[0].endswith("starting afresh")


def deepspeed_engine(seed: int) -> Engine:
    options = {"zero_stage": 1}
    model, _, _ = load_model("tiny-t5", seed=seed)
    apply_method(model, "full", options)
    opt = Optimization(learning_rate=1e-3, warmup_steps=1, total_steps=10, max_grad_norm=1.0)
    return Engine(model, opt, deepspeed=deepspeed_config_of("full", options), micro_batch=2)


def test_a_deepspeed_checkpoint_loads_weights_only_and_a_planted_one_runs_nothing(tmp_path, plant_pickle):
    pytest.importorskip("deepspeed")
    engine = deepspeed_engine(seed=0)
    batch = {"input_ids": torch.randint(2, 300, (2, 8)), "labels": torch.randint(2, 300, (2, 4))}
    engine.micro_step(batch)
    save_checkpoint(tmp_path, engine, {"epoch": 1}, rank=0)
    saved = {n: p.detach().clone() for n, p in engine.module.named_parameters()}
    engine.close()

    fresh = deepspeed_engine(seed=1)
    assert load_checkpoint(tmp_path, fresh)["epoch"] == 1  # DeepSpeed's own state, read weights-only
    assert all(torch.equal(saved[n], p) for n, p in fresh.module.named_parameters())
    assert fresh.micro_steps == 1

    (optim,) = tmp_path.glob("last/*optim_states.pt")
    plant_pickle(optim, tmp_path / "ran")
    with pytest.raises(Exception, match="Weights only load failed"):
        load_checkpoint(tmp_path, fresh)
    fresh.close()
    assert not (tmp_path / "ran").exists()
