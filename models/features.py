"""Image features, computed once per dataset and encoder and kept on disk for every later trial.

An entry is keyed by what makes its numbers: the encoder (name, with its pinned revision), how
images were prepared (size, normalisation, pooling), feature shape, and the dataset source
(``fixtures/vqa``, ``hub:<path>/<config>@<revision>``). Images inside an entry are keyed by the
SHA-256 of their bytes, so the same picture is encoded once however many questions ask about it (an
item of several images, NLVR2's pair, by its images' keys in order).

On disk (``$PEFTBENCH_FEATURES``, else ``~/.cache/peftbench/features``): ``<digest>.safetensors``
(one float32 tensor, items × images × cells × dim; safetensors, never a pickle) and ``<digest>.json`` (the
key, the image keys in row order, shape, dtype, the file's SHA-256). A read checks all of these
against the file; anything that does not match (truncated, another key, edited) is recomputed, never
used. Writes go through a temporary file and a rename, the manifest last, under a per-entry lock, so
concurrent trials see a whole entry or none and the second waits for the first's features.

``extract_shard`` encodes one list of images, a pure function: ``features_for(map_fn=...)`` maps it
over the shards of missing images, with ``map`` here and Ray's workers on a cluster.
"""

from __future__ import annotations

import collections
import contextlib
import fcntl
import functools
import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

import torch

from peftbench.models.encoders import encode, spec

log = logging.getLogger(__name__)
SCHEMA = "peftbench.features/1"
SHARD = 256  # images per extraction task
# Images encoded by this process, per encoder: how tests tell features read from features computed.
EXTRACTED: collections.Counter[str] = collections.Counter()


def cache_root() -> Path:
    return Path(os.environ.get("PEFTBENCH_FEATURES", "~/.cache/peftbench/features")).expanduser()


def image_key(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:24]


def extract_shard(encoder: str, images: list[bytes], *, batch_size: int = 64, device: str = "cpu") -> torch.Tensor:
    """Features (N, cells, dim) of one shard of encoded images: the unit of work a cluster maps."""
    parts = [encode(encoder, images[i : i + batch_size], device=device) for i in range(0, len(images), batch_size)]
    EXTRACTED[encoder] += len(images)
    return torch.cat(parts)


def item_key(images: list[bytes]) -> str:
    """The key of an item of one or more images (NLVR2's pair): its images' keys, in order."""
    return "+".join(image_key(data) for data in images)


def features_for(encoder: str, items: dict[str, list[bytes]], *, source: str, root: Path | None = None,
                 map_fn: Callable[[Callable, Iterable], Iterable] = map) -> tuple[torch.Tensor, dict[str, int]]:
    """Features (N, images, cells, dim) of every item (key -> its images, the same number each) and
    each key's row, from the cache entry of (``encoder``, ``source``); the items it lacks are encoded
    (``map_fn`` of ``extract_shard`` over shards of their images) and added to the entry."""
    s = spec(encoder)
    n_images = len(next(iter(items.values()))) if items else 1
    if any(len(v) != n_images for v in items.values()):
        raise ValueError("every item of a features entry has the same number of images")
    key = {"schema": SCHEMA, "encoder": encoder, "preprocessing": s.preprocessing, "images": n_images,
           "cells": s.cells, "feat_dim": s.feat_dim, "dtype": "float32", "source": source}
    store = FeatureStore(root or cache_root(), key)
    with store.lock():
        keys, feats = store.read() or ([], torch.empty(0, n_images, s.cells, s.feat_dim))
        have = set(keys)
        missing = [k for k in items if k not in have]
        if missing:
            per_shard = max(1, SHARD // n_images)
            shards = [[img for k in missing[i : i + per_shard] for img in items[k]]
                      for i in range(0, len(missing), per_shard)]
            parts = [p.view(-1, n_images, s.cells, s.feat_dim)
                     for p in map_fn(functools.partial(extract_shard, encoder), shards)]
            keys, feats = keys + missing, torch.cat([feats, *parts])
            store.write(keys, feats)
            log.info("features: %d images encoded by %s for %s (%s)", len(missing), encoder, source, store.tensor_path)
    return feats, {k: i for i, k in enumerate(keys)}


class FeatureStore:
    """One cache entry: a safetensors file and its manifest, checked before use."""

    def __init__(self, root: Path, key: dict):
        self.root, self.key = Path(root), key
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]
        self.tensor_path = self.root / f"{digest}.safetensors"
        self.manifest_path = self.root / f"{digest}.json"

    def read(self) -> tuple[list[str], torch.Tensor] | None:
        """The entry's image keys and features, or None when absent or not what its manifest says."""
        try:
            manifest = json.loads(self.manifest_path.read_text())
            data = self.tensor_path.read_bytes()
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            return self._reject(f"unreadable ({exc})")
        from safetensors import SafetensorError
        from safetensors.torch import load

        if manifest.get("key") != self.key:
            return self._reject("its manifest names another key")
        if hashlib.sha256(data).hexdigest() != manifest.get("sha256"):
            return self._reject("its features file does not match the manifest's SHA-256")
        try:
            feats = load(data)["features"]
        except (SafetensorError, KeyError) as exc:
            return self._reject(f"not a features file ({exc})")
        keys = manifest.get("images")
        shape = (len(keys) if isinstance(keys, list) else -1, self.key["images"], self.key["cells"],
                 self.key["feat_dim"])
        if feats.dtype != torch.float32 or tuple(feats.shape) != shape or not torch.isfinite(feats).all():
            return self._reject(f"features {feats.dtype} {tuple(feats.shape)}, expected float32 {shape}, finite")
        return keys, feats

    def write(self, keys: list[str], feats: torch.Tensor) -> None:
        from safetensors.torch import save

        data = save({"features": feats.contiguous()})
        manifest = {"key": self.key, "images": keys, "shape": list(feats.shape), "dtype": "float32",
                    "sha256": hashlib.sha256(data).hexdigest()}
        self.root.mkdir(parents=True, exist_ok=True)
        _atomic_write(self.tensor_path, data)
        _atomic_write(self.manifest_path, json.dumps(manifest).encode())  # last: it commits the entry

    def _reject(self, why: str) -> None:
        log.warning("features cache %s: %s; recomputing", self.tensor_path, why)

    @contextlib.contextmanager
    def lock(self):
        """Exclusive across processes sharing the cache folder (``flock``), per entry."""
        locks = self.root / ".locks"
        locks.mkdir(parents=True, exist_ok=True)
        with open(locks / f"{self.tensor_path.stem}.lock", "w") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
