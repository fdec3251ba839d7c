"""Image features, computed once per dataset and encoder and kept on disk for every later trial.

An entry is keyed by what makes its numbers: the encoder (name, with its pinned revision), how
images were prepared (size, normalisation, pooling), feature shape, and the dataset source
(``fixtures/vqa``, ``hub:<path>/<config>@<revision>``). Images inside an entry are keyed by the
SHA-256 of their bytes, so the same picture is encoded once however many questions ask about it (an
item of several images, NLVR2's pair, by its images' keys in order).

On disk (``$PEFTBENCH_FEATURES``, else ``~/.cache/peftbench/features``): ``<digest>.safetensors``
(one float32 tensor, items × images × cells × dim; safetensors, never a pickle) and ``<digest>.json`` (the
key, the image keys in row order, shape, dtype, the file's SHA-256). A read checks all of these
against the file (both read as regular files only, under a size cap: peftbench/files.py); an entry
that does not check out (not a manifest, truncated, another key, edited) is moved to ``set-aside/``
and recomputed, never used, so a bad entry costs its own recomputation and nothing else. Writes go
through peftbench/files.py (a temporary and a rename, no link followed), the manifest last, under a
per-entry lock (never truncated), so concurrent trials see a whole entry or none and the second waits
for the first's features. A cache that cannot be written still serves: the features are computed,
used and not kept (a warning says so); ``check_cache`` refuses it in one line before a sweep starts.

What remains trusted: whoever can write the cache folder. An entry is used only under its own key
(encoder, its revision, preprocessing, source) and only for images whose bytes hash to its keys, so
a corrupted or misplaced entry is never used; but an entry written on purpose with the right key,
features of the writer's choosing and their hash is indistinguishable from a real one, short of
encoding the images again (not done: it would load the encoder in every trial). Keep the cache in a
folder only trusted users can write.

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
import math
import os
import re
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import torch

from peftbench.files import open_lock, read_bytes, read_json, write_bytes, write_json
from peftbench.models.encoders import encode, spec

log = logging.getLogger(__name__)
SCHEMA = "peftbench.features/1"
SHARD = 256  # images per extraction task
SET_ASIDE = "set-aside"  # entries that did not check out, kept for a person to look at
ITEM_KEY = re.compile(r"[0-9a-f]{24}(\+[0-9a-f]{24})*")  # item_key's form
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
    with store.lock() as locked:
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
            if locked:  # a cache that cannot be written: used this once, not kept
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
        """The entry's image keys and features, or None when absent or not what its manifest says
        (then set aside, so the caller's recomputation replaces it)."""
        try:
            manifest = read_json(self.manifest_path, kind="manifest")
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            return self._reject(f"manifest unreadable ({exc})")
        if (why := self._manifest_problem(manifest)) is not None:
            return self._reject(why)
        keys = manifest["images"]
        expected = (len(keys), self.key["images"], self.key["cells"], self.key["feat_dim"])
        try:  # the cap: the manifest's rows of float32, and room for safetensors' header
            data = read_bytes(self.tensor_path, kind="features", cap=4 * math.prod(expected) + (1 << 20))
        except (OSError, ValueError) as exc:
            return self._reject(f"features file unreadable ({exc})")
        return self._checked(data, manifest["sha256"], expected, keys)

    def _manifest_problem(self, manifest) -> str | None:
        """Why ``manifest`` is not this entry's (None: it is, as far as the manifest alone says)."""
        if not isinstance(manifest, dict):
            return "its manifest is not a JSON object"
        if manifest.get("key") != self.key:
            return "its manifest names another key"
        keys = manifest.get("images")
        if not isinstance(keys, list) or not all(isinstance(k, str) and ITEM_KEY.fullmatch(k) for k in keys):
            return "its manifest's images are not a list of image keys"
        if len(set(keys)) != len(keys):
            return "its manifest lists an image twice"
        if not isinstance(manifest.get("sha256"), str):
            return "its manifest has no SHA-256"
        return None

    def _checked(self, data: bytes, sha256: str, expected: tuple, keys: list[str]):
        from safetensors import SafetensorError
        from safetensors.torch import load

        if hashlib.sha256(data).hexdigest() != sha256:
            return self._reject("its features file does not match the manifest's SHA-256")
        try:
            feats = load(data)["features"]
        except (SafetensorError, KeyError, ValueError) as exc:
            return self._reject(f"not a features file ({exc})")
        if feats.dtype != torch.float32 or tuple(feats.shape) != expected or not torch.isfinite(feats).all():
            return self._reject(f"features {feats.dtype} {tuple(feats.shape)}, expected float32 {expected}, finite")
        return keys, feats

    def write(self, keys: list[str], feats: torch.Tensor) -> bool:
        """Keep the entry (True), or warn and keep nothing when the cache cannot be written."""
        from safetensors.torch import save

        data = save({"features": feats.contiguous()})
        manifest = {"key": self.key, "images": keys, "shape": list(feats.shape), "dtype": "float32",
                    "sha256": hashlib.sha256(data).hexdigest()}
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            write_bytes(self.tensor_path, data)
            write_json(self.manifest_path, manifest)  # last: it commits the entry
        except OSError as exc:
            log.warning("features cache %s: cannot keep this entry (%s); its features are used once", self.root, exc)
            return False
        return True

    def _reject(self, why: str) -> None:
        """Warn, and move the entry's files to ``set-aside/`` (where the cache can be written)."""
        log.warning("features cache %s: %s; set aside and recomputed", self.tensor_path, why)
        folder = self.root / SET_ASIDE
        stamp = f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
        for path in (self.manifest_path, self.tensor_path):
            try:
                folder.mkdir(exist_ok=True)
                if not folder.is_symlink():
                    os.rename(path, folder / f"{path.stem}.{stamp}{path.suffix}")
            except OSError:  # absent, or the cache is read-only: the recomputation is then not kept either
                pass

    @contextlib.contextmanager
    def lock(self):
        """Exclusive across processes sharing the cache folder (``flock``), per entry; yields whether
        it holds the lock. Without it (a cache that cannot be written, a link planted at the lock) the
        caller computes the features and keeps nothing, with a warning."""
        try:
            locks = self.root / ".locks"
            locks.mkdir(parents=True, exist_ok=True)
            fd = open_lock(locks / f"{self.tensor_path.stem}.lock")
        except OSError as exc:
            log.warning("features cache %s: cannot lock (%s); computing without the cache", self.root, exc)
            fd = None
        try:
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            yield fd is not None
        finally:
            if fd is not None:
                os.close(fd)  # closing drops the flock


def check_cache(root: Path | None = None) -> str | None:
    """Why the feature cache cannot be used (None: it can): a folder this user can create and write,
    not a symlink. For a sweep's checks, before anything starts."""
    root = Path(root or cache_root())
    try:
        root.mkdir(parents=True, exist_ok=True)
        (root / ".locks").mkdir(exist_ok=True)
        write_bytes(root / ".locks" / ".probe", b"")
        os.unlink(root / ".locks" / ".probe")
    except OSError as exc:
        return (f"features cache {root}: cannot write it ({exc.strerror or exc}); "
                "set PEFTBENCH_FEATURES to a writable folder")
    return None
