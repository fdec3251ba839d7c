"""Resident memory of a trial reading a large feature-cache entry: a benchmark, not a test.

``write ROOT --gib 20`` writes a synthetic entry (items of 36 × 2048 float32, CLIP RN101's 6×6 grid, a
cheap deterministic fill) through ``FeatureStore.append``, a shard at a time. ``read ROOT`` opens it as
a trial does (``FeatureStore.read`` of every item: each shard checked, then memory-mapped), then stacks
``--batches`` batches of ``--batch`` random rows, and prints the seconds of the open, of the batches, and
the process's peak resident memory (``getrusage``'s ``ru_maxrss``) with its anonymous and file-backed
parts (``/proc/self/status``). Run ``read`` twice: the first open hashes every shard and records it as
verified; the second maps them on their stamps. ``--old FILE`` reads with another features.py (one file
per entry: the module before shards) for the before/after comparison. Run each read in its own process
(``/usr/bin/time -v`` around it gives the same peak).
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import importlib.util
import json
import resource
import sys
import time
from pathlib import Path

import torch

torch.set_num_threads(1)  # a shared machine: one thread, as a trial worker of a CPU sweep

ROW = (1, 36, 2048)  # one image, 36 cells, 2048 dims: 288 KiB a row


def key(schema: str) -> dict:
    return {"schema": schema, "encoder": "synthetic", "preprocessing": "none", "images": ROW[0], "cells": ROW[1],
            "feat_dim": ROW[2], "dtype": "float32", "source": "synthetic"}


def module(path: str | None):
    if path is None:
        from peftbench.models import features

        return features
    spec = importlib.util.spec_from_file_location("old_features", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def status() -> dict[str, int]:
    """This process's resident memory now, in MiB: anonymous and file-backed."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    return {k: int(fields[k].split()[0]) // 1024 for k in ("VmRSS", "RssAnon", "RssFile", "VmHWM")}


def sparse_shard(path: Path, n: int) -> str:
    """A shard of ``n`` zero rows written as a safetensors header and a hole (seconds, not minutes, for
    20 GB on a slow disk; reads return zeros); its SHA-256."""
    nbytes = 4 * n * torch.Size(ROW).numel()
    header = json.dumps({"features": {"dtype": "F32", "shape": [n, *ROW], "data_offsets": [0, nbytes]}}).encode()
    header += b" " * (-len(header) % 8)  # safetensors pads its header to 8 bytes
    with path.open("wb") as f:
        f.write(len(header).to_bytes(8, "little") + header)
        f.truncate(8 + len(header) + nbytes)
    return zero_sha(header, nbytes)


@functools.cache
def zero_sha(header: bytes, nbytes: int) -> str:
    """The SHA-256 of a sparse shard: every full shard has the same, so it is computed once."""
    digest, zeros = hashlib.sha256(len(header).to_bytes(8, "little") + header), bytes(1 << 20)
    for start in range(0, nbytes, len(zeros)):
        digest.update(zeros[: min(len(zeros), nbytes - start)])
    return digest.hexdigest()


def write_sparse(root: Path, rows: int, mod) -> None:
    """The entry ``write`` makes, its shards sparse files of zeros and its manifest written directly."""
    store = mod.FeatureStore(root, key(mod.SCHEMA))
    store.folder.mkdir(parents=True)
    shards = []
    for number, start in enumerate(range(0, rows, store.per_shard)):
        n = min(store.per_shard, rows - start)
        name = f"{number:04d}.safetensors"
        sha = sparse_shard(store.folder / name, n)
        shards.append({"file": name, "items": [f"{i:024x}" for i in range(start, start + n)], "shape": [n, *ROW],
                       "dtype": "float32", "sha256": sha})
    store.manifest_path.write_text(json.dumps({"key": store.key, "shards": shards}))


def write(root: Path, gib: float, mod, *, sparse: bool) -> None:
    rows = int(gib * (1 << 30) // (4 * torch.Size(ROW).numel()))
    if sparse:
        write_sparse(root, rows, mod)
        return
    store = mod.FeatureStore(root, key(mod.SCHEMA))
    keys = [f"{i:024x}" for i in range(rows)]
    step = store.per_shard if hasattr(store, "per_shard") else rows
    for start in range(0, rows, step):
        n = min(step, rows - start)
        feats = torch.arange(start, start + n, dtype=torch.float32).view(n, 1, 1, 1).expand(n, *ROW) / rows
        if hasattr(store, "append"):
            store.append(keys[start : start + n], feats)
        else:
            store.write(keys[start : start + n], feats)
    print(json.dumps({"rows": rows, "bytes": rows * 4 * torch.Size(ROW).numel()}))


def read(root: Path, batches: int, batch: int, mod) -> None:
    store = mod.FeatureStore(root, key(mod.SCHEMA))
    t0 = time.perf_counter()
    got = store.read()
    opened = time.perf_counter() - t0
    rows = got[0] if hasattr(store, "append") else got[1]  # new: (rows, index); old: (keys, tensor)
    after_open = status()
    gen, peak_anon, total = torch.Generator().manual_seed(0), 0, 0.0
    t1 = time.perf_counter()
    for _ in range(batches):
        idx = torch.randint(len(rows), (batch,), generator=gen).tolist()
        stacked = torch.stack([rows[i] for i in idx])  # what engine/batches.collate does with a batch's rows
        total += float(stacked[:, 0, 0, 0].sum())
        peak_anon = max(peak_anon, status()["RssAnon"])
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024  # KiB on Linux
    print(json.dumps({"open_s": round(opened, 1), "batches_s": round(time.perf_counter() - t1, 1),
                      "rows": len(rows), "after_open_mib": after_open, "end_mib": status(),
                      "peak_anon_mib": peak_anon, "ru_maxrss_mib": peak, "checksum": total}))


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["write", "read"])
    parser.add_argument("root", type=Path)
    parser.add_argument("--gib", type=float, default=20.0)
    parser.add_argument("--batches", type=int, default=100)
    parser.add_argument("--batch", type=int, default=300)
    parser.add_argument("--sparse", action="store_true", help="write shards as sparse files of zeros (fast)")
    parser.add_argument("--old", help="another features.py to use (the one-file module, for before/after)")
    args = parser.parse_args(argv)
    mod = module(args.old)
    if args.what == "write":
        write(args.root, args.gib, mod, sparse=args.sparse)
    else:
        read(args.root, args.batches, args.batch, mod)


if __name__ == "__main__":
    main(sys.argv[1:])
