"""A sweep's output folder: checked before anything starts, held by one sweep at a time, and the
files it keeps beside the records (the spec it runs, the trial ids of its grid, records set aside).

The lock is ``fcntl.flock`` on ``OUT/.lock``: the kernel releases it when its holder dies, however
it dies, so a killed sweep never leaves its folder locked. The lock file is never written (a link
planted there loses nothing); the holder's pid goes to ``OUT/.lock.pid``, for the refusal's message.
Every file here is written and read through peftbench/files.py (no symlink followed, sizes capped).
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
import time
from pathlib import Path

from peftbench.files import UnsafeFileError, open_lock, read_json, read_text, write_json, write_text

SPEC_FILE = "spec.json"
GRID_FILE = "grid.json"  # the trial ids of the spec's grid: what a report counts as missing
LOCK_FILE = ".lock"
PID_FILE = ".lock.pid"  # the lock holder's pid
SET_ASIDE = "set-aside"  # under results/: files that were not records, kept for a person to look at


class FolderError(RuntimeError):
    """An output folder a sweep cannot use (one line, for the terminal)."""


def check_writable(out_dir: Path) -> None:
    """``out_dir`` is a folder this user can write, or can create: refused in one line otherwise."""
    if out_dir.exists() and not out_dir.is_dir():
        raise FolderError(f"--out {out_dir}: is a file, not a folder")
    existing = next(p for p in (out_dir, *out_dir.parents) if p.exists())
    try:  # a real write, unlike os.access: read-only mounts and /proc refuse root too
        tempfile.TemporaryFile(dir=existing).close()
    except OSError as exc:
        raise FolderError(f"--out {out_dir}: cannot write in {existing} ({exc.strerror or exc})") from None


AXES = ("methods", "tasks", "learning_rates", "train_size")  # a continuation may take a part of each
PER_TASK = ("epochs", "batch_size", "mixtures")  # mappings (by task) a continuation may take a part of


def continues(saved: dict, new: dict) -> bool:
    """Whether the spec ``new`` (a spec's identity) runs a part of ``saved``'s grid with any seeds, every
    other setting the same: its records then belong beside saved's (``peftbench plan-seeds`` writes one)."""
    for key in {*saved, *new}:
        old, now = saved.get(key, {} if key == "mixtures" else None), new.get(key, {} if key == "mixtures" else None)
        if key in AXES:
            same = isinstance(now, list) and isinstance(old, list) and all(x in old for x in now)
        elif key in PER_TASK and isinstance(now, dict) and isinstance(old, dict):
            same = all(k in old and old[k] == v for k, v in now.items())
        else:
            same = key == "seeds" or old == now
        if not same:
            return False
    return True


def check_spec_file(out_dir: Path, spec_json: str, *, name: str, resume: bool) -> None:
    """Refuse to mix sweeps: a folder holds one spec, continued only with ``--resume`` by that spec or
    by one that adds seeds to a part of its grid (``continues``)."""
    saved = out_dir / SPEC_FILE
    if not saved.exists():
        return
    if not resume:
        raise FolderError(f"{out_dir} already holds sweep {name!r}: add --resume to continue it, "
                          "or choose another --out")
    try:
        text = read_text(saved, kind="spec")
        same = text == spec_json or continues(json.loads(text), json.loads(spec_json))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise FolderError(f"{saved}: cannot read it: {exc}") from None
    if not same:
        raise FolderError(f"{out_dir} holds a different spec than this one: resume it with the "
                          "spec it started with, or choose another --out")


def write_sweep_files(out_dir: Path, spec_json: str, trial_ids: list[str]) -> None:
    """The spec the folder started with (kept: a continuation's is a part of it) and the trial ids of
    every grid run in it, a continuation's new points added."""
    known = grid_trial_ids(out_dir) or []
    seen = set(known)
    spec = out_dir / SPEC_FILE
    if spec.is_symlink():  # kept when there, never written or read through a link
        raise FolderError(f"{spec}: is a symlink, not the sweep's spec; remove it")
    try:
        if not spec.exists():
            write_text(spec, spec_json)
        write_json(out_dir / GRID_FILE, {"trial_ids": [*known, *(t for t in trial_ids if t not in seen)]}, indent=1)
    except UnsafeFileError as exc:
        raise FolderError(str(exc)) from None


def grid_trial_ids(out_dir: Path) -> list[str] | None:
    """The trial ids of the grid the sweep in ``out_dir`` runs; None when unknown (no sweep wrote
    the folder, or the file is not ours)."""
    try:
        ids = read_json(out_dir / GRID_FILE, kind="grid")["trial_ids"]
    except (OSError, ValueError, TypeError, KeyError):
        return None
    return ids if isinstance(ids, list) and all(isinstance(i, str) for i in ids) else None


def set_aside(path: Path) -> Path:
    """Move a file that is not a record out of the way (``results/set-aside/``), so its grid point
    runs again and the file stays for a person to look at."""
    folder = path.parent / SET_ASIDE
    folder.mkdir(exist_ok=True)
    if folder.is_symlink():  # a file moved through it would land wherever it points
        raise FolderError(f"{folder}: is a symlink, not a folder; remove it")
    target = folder / f"{path.stem}.{time.strftime('%Y%m%d-%H%M%S')}{path.suffix}"
    while target.exists() or target.is_symlink():  # never over another file
        target = target.with_name(f"{target.stem}-{os.getpid()}-{time.monotonic_ns()}{target.suffix}")
    os.rename(path, target)
    return target


class FolderLock:
    """One sweep per folder: ``acquire`` refuses (``FolderError``) while another process holds it."""

    def __init__(self, out_dir: Path):
        self.path = out_dir / LOCK_FILE
        self.fd: int | None = None

    def acquire(self) -> FolderLock:
        try:
            fd = open_lock(self.path)
        except UnsafeFileError as exc:
            raise FolderError(str(exc)) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise FolderError(f"{self.path.parent}: another sweep (pid {self._holder()}) is running in this folder; "
                              "wait for it, or stop it first") from None
        self.fd = fd
        try:
            write_text(self.path.parent / PID_FILE, str(os.getpid()))
        except (UnsafeFileError, OSError) as exc:
            self.release()
            raise FolderError(str(exc)) from None
        return self

    def _holder(self) -> str:
        try:
            return read_text(self.path.parent / PID_FILE, kind="grid", cap=64).strip() or "?"
        except (OSError, UnicodeDecodeError):
            return "?"

    @property
    def held(self) -> bool:
        return self.fd is not None

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the descriptor drops the flock
            self.fd = None
