"""The batch found for a workload under a budget (and a CPU trial's measured memory, harness/memory.py),
kept in the sweep's folder and reused.

Every learning rate and seed of a method shares its memory, so only the first of them probes.
The file (``OUT/budget-cache.json``) is rewritten whole under a lock, via a temporary file and a
rename, so concurrent trials never see half a file; a per-entry lock held while computing makes
a second trial of the same method wait for the first one's answer instead of probing again.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

from peftbench.budgets.fit import Fit
from peftbench.files import open_lock, read_json, write_json

SCHEMA = "peftbench.budget-cache/1"
FILENAME = "budget-cache.json"


def read_entries(path: Path, schema: str) -> dict:
    """The entries of a cache file of ``schema`` (``{"schema": …, "entries": {digest: entry}}``); none when
    the file is not there; ValueError when it is something else."""
    try:
        data = read_json(path, kind="cache")
    except FileNotFoundError:
        return {}
    if not isinstance(data, dict) or data.get("schema") != schema or not isinstance(data.get("entries"), dict):
        raise ValueError(f"{path}: not a {schema} file")
    return data["entries"]


def cache_key(key: dict) -> str:
    return hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


class BudgetCache:
    """``OUT/budget-cache.json``: key digest -> {"key": ..., "fit": ...}."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def get(self, key: dict) -> Fit | None:
        """The fit stored for ``key``; None when there is none, or when the entry under its digest is for
        another key (the folder may be shared: an entry is trusted only for the key it states)."""
        entry = self._read().get(cache_key(key))
        if not isinstance(entry, dict) or entry.get("key") != json.loads(json.dumps(key)):
            return None
        try:
            return Fit.from_dict(entry.get("fit"))
        except ValueError:
            return None  # computed again, and the entry replaced

    def get_or_compute(self, key: dict, compute: Callable[[], Fit]) -> tuple[Fit, bool]:
        """The cached fit for ``key`` (True: it was cached), else ``compute()``'s, stored."""
        with self._lock(f"{cache_key(key)}.lock"):
            fit = self.get(key)
            if fit is not None:
                return fit, True
            fit = compute()
            self.put(key, fit)
            return fit, False

    def put(self, key: dict, fit: Fit) -> None:
        with self._lock("file.lock"):
            entries = self._read()
            entries[cache_key(key)] = {"key": key, "fit": fit.to_dict()}
            self._write(entries)

    def _read(self) -> dict:
        return read_entries(self.path, SCHEMA)

    def _write(self, entries: dict) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_json(self.path, {"schema": SCHEMA, "entries": entries}, indent=2, sort_keys=True)

    @contextlib.contextmanager
    def _lock(self, name: str):
        """An exclusive lock shared by every process using this cache (``flock`` on a lock file)."""
        lock_dir = self.path.parent / f".{self.path.name}.locks"
        lock_dir.mkdir(parents=True, exist_ok=True)
        fd = open_lock(lock_dir / name)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing drops the flock


PEAKS_SCHEMA = "peftbench.planned-peaks/1"
PEAKS_FILE = "planned-peaks.json"


class PlannedPeaks:
    """``OUT/planned-peaks.json``: the planned peak of a workload at a fixed micro-batch (key digest ->
    {"key": ..., "peak": bytes}), so that a second check of a spec runs no fake forward (a third of a
    CPU second each on tiny T5, seconds on T5-base). Peaks found here wait in memory until ``save``, which writes them
    only into a folder that is there: a check never makes the output folder."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._found: dict | None = None
        self._new: dict = {}

    def get(self, key: dict) -> int | None:
        if self._found is None:
            try:  # no folder (or a file where it should be: the sweep's own check says so) holds no peaks
                self._found = read_entries(self.path, PEAKS_SCHEMA) if self.path.parent.is_dir() else {}
            except OSError as exc:  # a link or a folder planted there: refused by name, in one line
                raise ValueError(str(exc)) from None
        entry = self._new.get(cache_key(key)) or self._found.get(cache_key(key))
        peak = entry.get("peak") if isinstance(entry, dict) else None
        return peak if type(peak) is int and peak >= 0 else None  # a hand-edited entry is planned again

    def put(self, key: dict, peak: int) -> None:
        self._new[cache_key(key)] = {"key": key, "peak": peak}

    def save(self) -> None:
        """The peaks planned since the file was read, added to it, when its folder exists."""
        if not self._new or not self.path.parent.is_dir():
            return
        with contextlib.suppress(OSError, ValueError):  # a cache not kept only costs the next check its forwards
            entries = {**read_entries(self.path, PEAKS_SCHEMA), **self._new}
            write_json(self.path, {"schema": PEAKS_SCHEMA, "entries": entries}, indent=1, sort_keys=True)
            self._new = {}
