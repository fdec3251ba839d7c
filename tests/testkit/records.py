"""Synthetic result records for the report tests: every schema key, numbers chosen by hand."""

from __future__ import annotations

from pathlib import Path

from peftbench.harness.records import SCHEMA, facts_of, write_record

CUDA = "torch.cuda.max_memory_allocated"
PROVENANCE = {"versions": {"torch": "2.13.0", "pandas": "3.1.1"}, "git_commit": "abc1234",
              "python": "3.11.7", "device": "NVIDIA H100", "host": "node-1"}


def trial_id(method: str, task: str, lr: float, seed: int, extra: dict) -> str:
    """Unique per record: the model and data kind join the id where a record names them."""
    tail = [extra["model"]] if "model" in extra else []
    tail += [extra["data_source"].split(":")[0]] if "data_source" in extra else []
    return "-".join([f"{method}-{task}-lr{lr:g}-s{seed}-n{extra.get('train_size')}", *tail])


def record(method: str, task: str, lr: float, seed: int, *, val: float | None, test: float | None,
           status: str = "ok", options: dict | None = None, memory_mb: float = 1000.0, time_s: float = 10.0,
           pct: float = 1.0, measured_by: str = CUDA, metrics: dict | None = None, **extra) -> dict:
    """A complete record; ``extra`` adds keys (``train_size``, ``budget``) or overrides any."""
    ok = status == "ok"
    rec = {
        "schema": SCHEMA, "trial_id": trial_id(method, task, lr, seed, extra), "status": status,
        "error": None if ok else "FloatingPointError: non-finite loss nan in epoch 2",
        "model": "t5-base", "method": method, "method_options": options or {}, "task": task,
        "learning_rate": lr, "seed": seed, "batch_size": 32, "epochs": 3,
        "val_metrics": [{"accuracy": val}] if ok else [], "best_epoch": 1 if ok else None,
        "val_score": val if ok else None,
        "test_metrics": (metrics or {"accuracy": test, "invalid": 0}) if ok else None,
        "test_score": test if ok else None,
        "trainable_params": None, "total_params": None, "trainable_pct": pct if ok else None,
        "peak_memory_bytes": memory_mb * 1e6 if ok else None, "memory_measured_by": measured_by if ok else None,
        "time_per_epoch_s": time_s if ok else None, "provenance": PROVENANCE,
    }
    rec.update(extra)
    # as a trial's record says them (reports read a task's rank, paper name and metrics here)
    rec.setdefault("task_facts", facts_of(rec.get("mixture") or [task]))
    return rec


def seeds(method: str, task: str, lr: float, vals, tests, **kw) -> list[dict]:
    """One record per seed 0, 1, ... with the given validation and test scores."""
    return [record(method, task, lr, s, val=v, test=t, **kw) for s, (v, t) in enumerate(zip(vals, tests, strict=True))]


def hub(task: str) -> str:
    """A hub ``data_source`` as new records write it: path, config and pinned revision."""
    return f"hub:nyu-mll/glue/{task}@bcdcba79d07bc864c1c254ccfcedcce55bcc9a8c"


def write_bad(folder: Path, name: str, text: str) -> Path:
    """A file under ``results/`` that is not a record (written as is, not through ``write_record``)."""
    path = folder / "results" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def write_all(folder: Path, records: list[dict]) -> Path:
    for r in records:
        write_record(folder, r)
    return folder


def two_method_sweep() -> list[dict]:
    """full and adapter on sst2 and rte, two learning rates, three seeds, one adapter trial failed.

    Hand-computed answers are in the tests that use it.
    """
    return [
        # full, sst2: 3e-4 wins on validation (mean 81 vs 80); test there 70, 71, 72
        *seeds("full", "sst2", 3e-4, [80, 81, 82], [70, 71, 72], memory_mb=1000, time_s=10, pct=100.0),
        *seeds("full", "sst2", 3e-3, [79, 80, 81], [99, 99, 99], memory_mb=1000, time_s=10, pct=100.0),
        # full, rte: one learning rate; test 60, 70, 80
        *seeds("full", "rte", 3e-4, [50, 50, 50], [60, 70, 80], memory_mb=1200, time_s=20, pct=100.0),
        # adapter, sst2: 3e-3 wins on validation (71 vs 62), though 1e-3 has the better test scores
        *seeds("adapter", "sst2", 1e-3, [60, 62, 64], [90, 91, 92], memory_mb=600, time_s=6, pct=0.5),
        *seeds("adapter", "sst2", 3e-3, [70, 70, 73], [80, 82, 84], memory_mb=600, time_s=6, pct=0.5),
        # adapter, rte: seed 2 failed; two metrics each (accuracy, f1), the test score their mean
        record("adapter", "rte", 3e-3, 0, val=55, test=65, memory_mb=900, time_s=9, pct=0.5,
               metrics={"accuracy": 70.0, "f1": 60.0, "invalid": 1}),
        record("adapter", "rte", 3e-3, 1, val=57, test=75, memory_mb=900, time_s=9, pct=0.5,
               metrics={"accuracy": 80.0, "f1": 70.0, "invalid": 0}),
        record("adapter", "rte", 3e-3, 2, val=None, test=None, status="failed"),
    ]


# The paper's twelve methods and four more, with (trainable %, score, peak MB) of the paper's order of
# magnitude (made up, not its values): several sit close together (the adapter variants, the two
# prompt tunings), which is what crowds Figure 2.
PAPER_METHODS = {
    "full": (100.0, 86.5, 9000), "adapter": (0.83, 85.8, 5800), "pfeiffer-adapter": (0.41, 86.3, 5700),
    "adapterdrop": (0.52, 85.5, 5500), "adapter-lowrank": (0.073, 85.6, 5600), "phm-adapter": (0.18, 86.1, 5800),
    "compacter": (0.073, 86.6, 5900), "compacter++": (0.047, 86.2, 5500), "bitfit": (0.13, 85.1, 6300),
    "prompt-tuning-r": (0.03, 75.0, 7400), "prompt-tuning-t": (0.03, 74.4, 7400), "intrinsic-said": (0.009, 81.9, 7900),
    "lora": (0.24, 86.0, 5900), "ia3": (0.02, 84.9, 5400), "prefix-tuning": (0.35, 84.2, 6100),
    "adapter-fusion": (0.9, 85.9, 6000),
}


def many_methods_sweep(n: int = 16, *, tasks=("sst2", "rte"), seeds_=3) -> list[dict]:
    """The first ``n`` of PAPER_METHODS on ``tasks``, ``seeds_`` seeds each (scores spread ±1 by seed)."""
    out = []
    for method, (pct, score, memory) in list(PAPER_METHODS.items())[:n]:
        for k, task in enumerate(tasks):
            tests = [score + k + d for d in (-1, 0, 1)][:seeds_]
            out += seeds(method, task, 1e-3, tests, tests, pct=pct, memory_mb=memory, time_s=memory / 500)
    return out
