"""One trial's complete configuration, and the id that names it everywhere."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field


def method_label(name: str, options: dict | None) -> str:
    """A method with its options, unique within a sweep: ``compacter[phm_dim=8]``."""
    if not options:
        return name
    return name + "[" + ",".join(f"{k}={v}" for k, v in sorted(options.items())) + "]"


@dataclass(frozen=True)
class TrialConfig:
    model: str
    method: str
    task: str
    learning_rate: float
    seed: int
    method_options: dict = field(default_factory=dict)
    epochs: int = 3
    batch_size: int = 32  # the micro-batch when `batch` is None: fixed, no budget search
    batch: int | str | None = None  # "max": the largest batch under the budget; N: N per optimizer step
    budget: str = "24GB"  # GPU memory per trial (budgets/parse.py)
    warmup_steps: int = 500
    max_source_length: int | None = None  # None: the task's default
    data: str = "auto"  # auto | hub | fixtures
    train_size: int | None = None  # subsample training to this many examples (per seed); None: all

    @property
    def trial_id(self) -> str:
        """Readable and unique: the grid point, plus a hash of everything else in the config."""
        digest = hashlib.sha1(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:8]
        size = "" if self.train_size is None else f"-n{self.train_size}"
        return f"{self.method}-{self.task}{size}-lr{self.learning_rate:g}-s{self.seed}-{digest}"
