"""The SST-2 fixture can be learned: full fine-tuning of tiny T5 beats the majority class on it,
so the smoke sweep can tell a working training loop from a broken one (about 20 s on CPU)."""

from collections import Counter

from harness.config import TrialConfig
from harness.train import train
from tasks import get_task


def test_full_fine_tuning_beats_the_majority_class_on_the_sst2_fixture():
    split = get_task("sst2").load("fixtures")
    majority = 100 * max(Counter(r["label"] for r in split["validation"]).values()) / len(split["validation"])
    cfg = TrialConfig(model="tiny-t5", method="full", task="sst2", learning_rate=3e-3, seed=0, epochs=6,
                      batch_size=16, warmup_steps=5, data="fixtures")
    result = train(cfg, log=lambda *_: None)
    assert result["val_score"] > majority + 10
