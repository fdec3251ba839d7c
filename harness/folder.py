"""A sweep's output folder: checked before anything starts, held by one sweep at a time, and the
files it keeps beside the records (the spec it runs, the trial ids of its grid, records set aside).

The lock is ``fcntl.flock`` on ``OUT/.lock``: the kernel releases it when its holder dies, however
it dies, so a killed sweep never leaves its folder locked.
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
import time
from pathlib import Path

SPEC_FILE = "spec.json"
GRID_FILE = "grid.json"  # the trial ids of the spec's grid: what a report counts as missing
LOCK_FILE = ".lock"
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


def check_spec_file(out_dir: Path, spec_json: str, *, name: str, resume: bool) -> None:
    """Refuse to mix sweeps: a folder holds one spec, continued only with ``--resume``."""
    saved = out_dir / SPEC_FILE
    if not saved.exists():
        return
    if not resume:
        raise FolderError(f"{out_dir} already holds sweep {name!r}: add --resume to continue it, "
                          "or choose another --out")
    try:
        same = saved.read_text() == spec_json
    except (OSError, UnicodeDecodeError) as exc:
        raise FolderError(f"{saved}: cannot read it: {exc}") from None
    if not same:
        raise FolderError(f"{out_dir} holds a different spec than this one: resume it with the "
                          "spec it started with, or choose another --out")


def write_sweep_files(out_dir: Path, spec_json: str, trial_ids: list[str]) -> None:
    (out_dir / SPEC_FILE).write_text(spec_json)
    (out_dir / GRID_FILE).write_text(json.dumps({"trial_ids": trial_ids}, indent=1) + "\n")


def grid_trial_ids(out_dir: Path) -> list[str] | None:
    """The trial ids of the grid the sweep in ``out_dir`` runs; None when unknown (no sweep wrote
    the folder, or the file is not ours)."""
    try:
        ids = json.loads((out_dir / GRID_FILE).read_text())["trial_ids"]
    except (OSError, ValueError, TypeError, KeyError):
        return None
    return ids if isinstance(ids, list) and all(isinstance(i, str) for i in ids) else None


def set_aside(path: Path) -> Path:
    """Move a file that is not a record out of the way (``results/set-aside/``), so its grid point
    runs again and the file stays for a person to look at."""
    folder = path.parent / SET_ASIDE
    folder.mkdir(exist_ok=True)
    target = folder / f"{path.stem}.{time.strftime('%Y%m%d-%H%M%S')}{path.suffix}"
    os.replace(path, target)
    return target


class FolderLock:
    """One sweep per folder: ``acquire`` refuses (``FolderError``) while another process holds it."""

    def __init__(self, out_dir: Path):
        self.path = out_dir / LOCK_FILE
        self.fd: int | None = None

    def acquire(self) -> FolderLock:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise FolderError(f"{self.path.parent}: another sweep (pid {holder}) is running in this folder; "
                              "wait for it, or stop it first") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self.fd = fd
        return self

    @property
    def held(self) -> bool:
        return self.fd is not None

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the descriptor drops the flock
            self.fd = None
