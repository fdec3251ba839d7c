"""Image features, computed once per dataset and encoder and kept on disk for every later trial.

An entry is keyed by what makes its numbers: the encoder (name, with its pinned revision), how
images were prepared (size, normalisation, pooling), feature shape, and the dataset source
(``fixtures/vqa``, ``hub:<path>/<config>@<revision>``). Images inside an entry are keyed by the
SHA-256 of their bytes, so the same picture is encoded once however many questions ask about it (an
item of several images, NLVR2's pair, by its images' keys in order).

On disk (``$PEFTBENCH_FEATURES``, else ``~/.cache/peftbench/features``): ``<digest>.json``, the
manifest (the key; per shard its file, item keys, shape and SHA-256), and ``<digest>/NNNN.safetensors``,
the shards (one float32 tensor each, items × images × cells × dim, at most ``SHARD_BYTES``; safetensors,
never a pickle). Items the entry lacks are appended as new shards: a shard once written is never
rewritten. Real VQAv2/GQA/COCO on CLIP RN101 is tens of GB, so a shard is never read into memory: it
is checked by streaming it (SHA-256 and finite values, in fixed chunks) and then memory-mapped
(``safetensors.safe_open``, which maps the file lazily: a row's pages are read when a batch touches
them), and only the shards holding the items asked for are opened. A manifest that does not check
out sets the entry aside; a shard that does not (its hash, its size, a link, another shard's bytes)
is moved to ``set-aside/`` alone, dropped from the manifest, and only its items recomputed. Both files
are read as regular files only, under a size cap (peftbench/files.py); writes go through
peftbench/files.py (a temporary and a rename, no link followed), shards first and the manifest last,
under a per-entry lock (never truncated), so concurrent trials see whole shards or none. A cache that
cannot be written still serves: the features are computed, used and not kept (a warning says so);
``check_cache`` refuses it in one line before a sweep starts.

Verified once: hashing 20 GB on every trial's open is minutes of I/O, so a shard that checked out is
recorded in ``<digest>/verified.json`` with its (size, mtime, ctime, inode, device) and SHA-256; a later
open whose ``fstat`` matches all of them, and whose manifest names the same SHA-256, maps it without
hashing. That trusts the filesystem's metadata: editing a file in place or renaming another over it
changes its ctime, which no unprivileged user can set back; only shards whose ctime is at least
``FRESH_S`` old are recorded, since an edit within the same clock tick could keep the same times.

What remains trusted: whoever can write the cache folder. An entry is used only under its own key
(encoder, its revision, preprocessing, source) and only for images whose bytes hash to its keys, so
a corrupted or misplaced entry is never used; but an entry written on purpose with the right key,
features of the writer's choosing and their hash (or a forged ``verified.json``) is indistinguishable
from a real one, short of encoding the images again (not done: it would load the encoder in every
trial). Keep the cache in a folder only trusted users can write. A shard is mapped, not copied: one
edited in place under a running trial changes the rows it reads, and one truncated under it ends that
trial with SIGBUS (the cache itself only ever renames whole new files into place). The mapped shards
count towards a process's address space (a CPU trial's ``RLIMIT_AS`` cap), not its anonymous memory.

``extract_shard`` encodes one list of images, a pure function: ``features_for(map_fn=...)`` maps it
over the shards of missing images, with ``map`` here and Ray's workers on a cluster.
"""

from __future__ import annotations

import bisect
import collections
import contextlib
import fcntl
import functools
import hashlib
import itertools
import json
import logging
import math
import operator
import os
import re
import stat
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy
import torch

from peftbench.files import open_lock, read_json, write_bytes, write_json
from peftbench.models.encoders import encode, spec

log = logging.getLogger(__name__)
SCHEMA = "peftbench.features/2"  # /1 was one file per entry: such entries are another key, recomputed
SHARD = 256  # images per extraction task
SHARD_BYTES = 256 << 20  # the most bytes of features in one shard file (its items: as many as fit, at least one)
CHUNK = 4 << 20  # bytes read at a time when a shard is checked: the check's memory, whatever the shard's size
FRESH_S = 2.0  # a shard changed this recently is not recorded as verified (an edit in the same tick keeps its times)
SET_ASIDE = "set-aside"  # entries and shards that did not check out, kept for a person to look at
VERIFIED = "verified.json"
ITEM_KEY = re.compile(r"[0-9a-f]{24}(\+[0-9a-f]{24})*")  # item_key's form
SHARD_FILE = re.compile(r"[0-9]{4,}\.safetensors")
SHA256 = re.compile(r"[0-9a-f]{64}")
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


class FeatureRows(Sequence):
    """An entry's rows (item × images × cells × dim) across its shards: ``rows[i]`` is a view of row
    ``i`` in its shard (memory-mapped, or in memory when the cache could not keep it), so only the rows
    a batch stacks are read. Not one tensor: joining the shards would copy them all into memory."""

    def __init__(self, parts: list[torch.Tensor], row_shape: tuple[int, ...]):
        self.parts, self.row_shape = parts, tuple(row_shape)
        self.starts = list(itertools.accumulate((len(p) for p in parts), initial=0))

    def __len__(self) -> int:
        return self.starts[-1]

    @property
    def shape(self) -> torch.Size:
        return torch.Size((len(self), *self.row_shape))

    def __getitem__(self, i) -> torch.Tensor:
        i = operator.index(i)
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(f"row {i} of {len(self)}")
        part = bisect.bisect_right(self.starts, i) - 1
        return self.parts[part][i - self.starts[part]]


def features_for(encoder: str, items: dict[str, list[bytes]], *, source: str, root: Path | None = None,
                 map_fn: Callable[[Callable, Iterable], Iterable] = map) -> tuple[FeatureRows, dict[str, int]]:
    """Features (N, images, cells, dim) of every item (key -> its images, the same number each) and
    each key's row, from the cache entry of (``encoder``, ``source``): only the shards holding these
    items are opened. The items it lacks are encoded (``map_fn`` of ``extract_shard`` over shards of
    their images) and appended to the entry as new shards."""
    s = spec(encoder)
    n_images = len(next(iter(items.values()))) if items else 1
    if any(len(v) != n_images for v in items.values()):
        raise ValueError("every item of a features entry has the same number of images")
    key = {"schema": SCHEMA, "encoder": encoder, "preprocessing": s.preprocessing, "images": n_images,
           "cells": s.cells, "feat_dim": s.feat_dim, "dtype": "float32", "source": source}
    store = FeatureStore(root or cache_root(), key)
    with store.lock() as locked:
        rows, index = store.read(items) or (FeatureRows([], store.row_shape), {})
        missing = [k for k in items if k not in index]
        if not missing:
            return rows, index
        per_image = max(1, SHARD // n_images)
        shards = [[img for k in missing[i : i + per_image] for img in items[k]]
                  for i in range(0, len(missing), per_image)]
        computed = torch.cat([p.view(-1, *store.row_shape)
                              for p in map_fn(functools.partial(extract_shard, encoder), shards)])
        log.info("features: %d images encoded by %s for %s (%s)", len(missing), encoder, source, store.folder)
        # a cache that cannot be written (no lock, a failed write): the computed rows used this once, not kept
        if locked and store.append(missing, computed) and (kept := store.read(items)) and set(items) <= kept[1].keys():
            return kept
        index.update((k, len(rows) + i) for i, k in enumerate(missing))
        return FeatureRows([*rows.parts, computed], store.row_shape), index


class FeatureStore:
    """One cache entry: its manifest and its shards, each checked before use."""

    def __init__(self, root: Path, key: dict):
        self.root, self.key = Path(root), key
        self.digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]
        self.manifest_path = self.root / f"{self.digest}.json"
        self.folder = self.root / self.digest
        self.row_shape = (key["images"], key["cells"], key["feat_dim"])

    @property
    def per_shard(self) -> int:
        """Items per shard: as many as ``SHARD_BYTES`` holds, at least one."""
        return max(1, SHARD_BYTES // (4 * math.prod(self.row_shape)))

    def read(self, wanted: Iterable[str] | None = None) -> tuple[FeatureRows, dict[str, int]] | None:
        """The rows of the shards holding any of ``wanted`` (None: every shard) and each of their items'
        row, or None when the entry is absent or nothing in it checks out. A manifest that does not
        check out sets the entry aside; a shard that does not is set aside alone."""
        manifest = self._manifest()
        if manifest is None:
            return None
        wanted = None if wanted is None else set(wanted)
        stamps = self._stamps()
        parts, index, bad = [], {}, []
        for shard in manifest["shards"]:
            if wanted is not None and wanted.isdisjoint(shard["items"]):
                continue  # not opened at all: a trial reads only the shards of its own items
            opened = self._open_shard(shard, stamps)
            if isinstance(opened, str):
                bad.append((shard, opened))
                continue
            start = len(index)
            index.update((k, start + i) for i, k in enumerate(shard["items"]))
            parts.append(opened)
        if bad:
            self._drop_shards(manifest, bad)
        self._keep_stamps(stamps)
        return (FeatureRows(parts, self.row_shape), index) if parts else None

    def _manifest(self) -> dict | None:
        """The entry's manifest when it checks out; None when absent (or set aside: it did not)."""
        try:
            manifest = read_json(self.manifest_path, kind="manifest")
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            return self._reject(f"manifest unreadable ({exc})")
        if (why := self._manifest_problem(manifest)) is not None:
            return self._reject(why)
        return manifest

    def _manifest_problem(self, manifest) -> str | None:
        """Why ``manifest`` is not this entry's (None: it is, as far as the manifest alone says)."""
        if not isinstance(manifest, dict):
            return "its manifest is not a JSON object"
        if manifest.get("key") != self.key:
            return "its manifest names another key"
        shards = manifest.get("shards")
        if not isinstance(shards, list) or not all(isinstance(s, dict) for s in shards):
            return "its manifest's shards are not a list of objects"
        keys, files = [], []
        for shard in shards:
            items, sha = shard.get("items"), shard.get("sha256")
            if not isinstance(items, list) or not items or not all(isinstance(k, str) and ITEM_KEY.fullmatch(k)
                                                                   for k in items):
                return "a shard's items are not a list of image keys"
            if shard.get("shape") != [len(items), *self.row_shape] or shard.get("dtype") != "float32":
                return f"a shard's shape is not float32 {[len(items), *self.row_shape]}"
            if not isinstance(sha, str) or not SHA256.fullmatch(sha):
                return "a shard has no SHA-256"
            if not isinstance(shard.get("file"), str) or not SHARD_FILE.fullmatch(shard["file"]):
                return "a shard's file is not NNNN.safetensors"
            keys += items
            files.append(shard["file"])
        if len(set(keys)) != len(keys) or len(set(files)) != len(files):
            return "its manifest lists an item or a shard twice"
        return None

    def _open_shard(self, shard: dict, stamps: dict) -> torch.Tensor | str:
        """The shard's features, memory-mapped, or why it does not check out. The file is opened once
        (no link followed), checked through that descriptor and mapped from it, so the bytes hashed are
        the bytes mapped, whatever is renamed over the path meanwhile."""
        from safetensors import SafetensorError, safe_open

        path = self.folder / shard["file"]
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)  # NONBLOCK: a FIFO never hangs open()
        except OSError as exc:
            return f"shard {shard['file']} unreadable ({exc.strerror or exc})"
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                return f"shard {shard['file']} is not a regular file"
            stamp = [shard["sha256"], *file_stamp(st)]
            if stamps.get(shard["file"]) != stamp:
                cap = 4 * math.prod(shard["shape"]) + (1 << 20)  # its float32 values, and room for the header
                if (why := check_stream(fd, shard["sha256"], cap=cap)) is not None:
                    return f"shard {shard['file']}: {why}"
                if file_stamp(os.fstat(fd)) != stamp[1:]:
                    return f"shard {shard['file']} changed while it was checked"
                if time.time() - st.st_ctime > FRESH_S:
                    stamps[shard["file"]] = stamp
            try:
                with safe_open(f"/proc/self/fd/{fd}", framework="pt") as f:  # maps the descriptor's file
                    feats = f.get_tensor("features") if list(f.keys()) == ["features"] else None
            except (SafetensorError, OSError, ValueError) as exc:
                return f"shard {shard['file']} is not a features file ({exc})"
        finally:
            os.close(fd)  # the mapping outlives the descriptor
        if feats is None or feats.dtype != torch.float32 or list(feats.shape) != shard["shape"]:
            return f"shard {shard['file']} does not hold float32 {shard['shape']}"
        return feats

    def _stamps(self) -> dict:
        """The shards verified earlier (file -> [SHA-256, size, mtime, ctime, inode, device]); {} when
        none or unreadable (then every shard is hashed)."""
        try:
            stamps = read_json(self.folder / VERIFIED, kind="manifest")
        except (OSError, ValueError):
            return {}
        return stamps if isinstance(stamps, dict) else {}

    def _keep_stamps(self, stamps: dict) -> None:
        """Record ``stamps`` when they changed (best effort: a read-only cache hashes again next time)."""
        if stamps != self._stamps():
            with contextlib.suppress(OSError):
                write_json(self.folder / VERIFIED, stamps)

    def _drop_shards(self, manifest: dict, bad: list[tuple[dict, str]]) -> None:
        """Set the shards that did not check out aside and drop them from the manifest, so their items
        are recomputed (now, when asked for, else when next asked for) and the rest stays."""
        for shard, why in bad:
            log.warning("features cache %s: %s; set aside and its items recomputed", self.folder, why)
            self._set_aside(self.folder / shard["file"], f"{self.digest}-{shard['file']}")
        files = {shard["file"] for shard, _ in bad}
        kept = [s for s in manifest["shards"] if s["file"] not in files]
        with contextlib.suppress(OSError):  # a read-only cache: checked (and refused) again next time
            write_json(self.manifest_path, {**manifest, "shards": kept})

    def append(self, keys: list[str], feats: torch.Tensor) -> bool:
        """Add ``keys``' rows as new shards (shards first, the manifest last: it commits them); True
        when kept, else warn and keep nothing (a cache that cannot be written)."""
        from safetensors.torch import save

        manifest = self._manifest() or {"key": self.key, "shards": []}
        with contextlib.suppress(OSError):
            self.folder.mkdir(parents=True, exist_ok=True)
        on_disk = [p.name for p in self.folder.glob("*.safetensors")] if self.folder.is_dir() else []
        number = 1 + max((int(f.split(".")[0]) for f in on_disk + [s["file"] for s in manifest["shards"]]), default=-1)
        shards = []
        try:
            for i in range(0, len(keys), self.per_shard):
                data = save({"features": feats[i : i + self.per_shard].contiguous()})
                name = f"{number:04d}.safetensors"
                write_bytes(self.folder / name, data)
                shards.append({"file": name, "items": keys[i : i + self.per_shard],
                               "shape": [len(keys[i : i + self.per_shard]), *self.row_shape], "dtype": "float32",
                               "sha256": hashlib.sha256(data).hexdigest()})
                number += 1
            write_json(self.manifest_path, {**manifest, "shards": manifest["shards"] + shards})
        except OSError as exc:
            log.warning("features cache %s: cannot keep this entry (%s); its features are used once", self.root, exc)
            return False
        return True

    def _reject(self, why: str) -> None:
        """Warn, and move the entry (manifest and shards) to ``set-aside/`` (where the cache can be written)."""
        log.warning("features cache %s: %s; set aside and recomputed", self.manifest_path, why)
        stamp = f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
        self._set_aside(self.manifest_path, f"{self.digest}.{stamp}.json")
        self._set_aside(self.folder, f"{self.digest}.{stamp}")

    def _set_aside(self, path: Path, name: str) -> None:
        folder = self.root / SET_ASIDE
        try:
            folder.mkdir(exist_ok=True)
            if not folder.is_symlink():
                os.rename(path, folder / name)
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
            fd = open_lock(locks / f"{self.digest}.lock")
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


def file_stamp(st: os.stat_result) -> list[int]:
    """What changes when a file is edited or replaced: size, mtime, ctime, inode, device."""
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev]


def check_stream(fd: int, sha256: str, *, cap: int) -> str | None:
    """Why the open file ``fd`` is not a safetensors file of finite float32 values with this SHA-256
    (None: it is), read once in ``CHUNK``-sized pieces, so the memory is a chunk's whatever the file's size."""
    if os.fstat(fd).st_size > cap:
        return f"{os.fstat(fd).st_size} bytes, more than its shape allows ({cap})"
    digest, buf, total = hashlib.sha256(), bytearray(CHUNK), 0
    head = os.pread(fd, 8, 0)
    start = 8 + int.from_bytes(head, "little") if len(head) == 8 else 0  # where the float32 values begin
    view = memoryview(buf)
    while (n := os.preadv(fd, [view], total)) > 0:
        digest.update(view[:n])
        first = max(start, total)
        first += -(first - start) % 4  # whole float32s (ours start 8-aligned and every chunk is whole ones)
        values = numpy.frombuffer(buf, dtype=numpy.float32, offset=first - total, count=max(0, total + n - first) // 4)
        # min and max carry a NaN or an infinity through (and are ~50× faster here than torch.isfinite per chunk)
        if values.size and not (numpy.isfinite(values.min()) and numpy.isfinite(values.max())):
            return "non-finite features"
        total += n
        if total > cap:
            return f"more than {cap} bytes"
    if digest.hexdigest() != sha256:
        return "does not match the manifest's SHA-256"
    return None


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
