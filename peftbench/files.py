"""Files in folders that someone else could write (output folders, caches, shared storage): one way to
write them and one way to read them.

Writing: a temporary created exclusively in the target's folder (``O_CREAT|O_EXCL|O_NOFOLLOW``, the
process's umask), fsynced, then renamed over the target; the folder is opened once without following
links and every step is relative to it, so a symlink planted where the folder, the file or the
temporary should be never sends bytes elsewhere. A target or folder that is a symlink is refused in
one line naming it. Locks are opened with ``O_NOFOLLOW`` and never truncated or written.

Reading: regular files only (no FIFO, no device, no symlink unless the user named that path on the
command line), with a size cap per kind of file, enforced while reading, so ``/dev/zero`` or a
sparse file of a terabyte costs at most the cap.

The lowest floor: it imports nothing of ours, so every floor can use it.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

MiB = 1 << 20
# The most bytes each kind of file may hold: a few times the largest one a real sweep writes
# (a spec is under 2 KB; a record under 100 KB; a features manifest lists one 24-hex key per image).
CAPS = {
    "spec": 1 * MiB,
    "config": 1 * MiB,  # a task or peft config file (adapter_config.json)
    "record": 16 * MiB,
    "grid": 8 * MiB,
    "manifest": 64 * MiB,
    "cache": 8 * MiB,  # the budget cache
    "figure": 64 * MiB,  # a report's PNG, read back to inline it in HTML
}


class UnsafeFileError(OSError):
    """A path that is not the plain file (or folder) it should be; the message is one line naming it."""

    def __str__(self) -> str:
        return self.args[0]


def _dir_fd(folder: Path) -> int:
    """The folder, opened without following a link at its last component (a symlinked folder refused)."""
    try:
        return os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError as exc:
        if folder.is_symlink():
            raise UnsafeFileError(f"{folder}: is a symlink, not a folder; refusing to write through it") from None
        raise exc


def _check_target(dfd: int, path: Path) -> None:
    """``path`` is absent or a regular file (not a symlink, FIFO, device or folder)."""
    try:
        st = os.stat(path.name, dir_fd=dfd, follow_symlinks=False)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(st.st_mode):
        raise UnsafeFileError(f"{path}: is a symlink; refusing to write through it (remove it first)")
    if not stat.S_ISREG(st.st_mode):
        raise UnsafeFileError(f"{path}: is not a regular file; refusing to replace it")


@contextlib.contextmanager
def writing(path: str | Path) -> Iterator:
    """A binary file to write ``path``'s new content to; on leaving the block it replaces ``path``
    whole (fsync, rename), or, on an error, leaves ``path`` as it was and no temporary behind."""
    path = Path(path)
    dfd = _dir_fd(path.parent)
    try:
        _check_target(dfd, path)
        for n in range(100):
            tmp = f".{path.name}.{os.getpid()}.{n}.tmp"
            try:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o666, dir_fd=dfd)
                break
            except FileExistsError:  # a killed writer's, or a planted one: never reused
                continue
        else:
            raise UnsafeFileError(f"{path}: no free temporary name beside it")
        try:
            with os.fdopen(fd, "wb") as f:
                yield f
                f.flush()
                os.fsync(f.fileno())
            _check_target(dfd, path)
            os.rename(tmp, path.name, src_dir_fd=dfd, dst_dir_fd=dfd)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=dfd)
            raise
    finally:
        os.close(dfd)


def write_bytes(path: str | Path, data: bytes) -> Path:
    """Replace ``path`` with ``data`` (see ``writing``)."""
    with writing(path) as f:
        f.write(data)
    return Path(path)


def write_text(path: str | Path, text: str) -> Path:
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: str | Path, obj, **dump_args) -> Path:
    return write_text(path, json.dumps(obj, **dump_args) + "\n")


def open_lock(path: str | Path) -> int:
    """A descriptor of the lock file ``path`` (created if absent), for ``flock``: opened without
    following a link, in a folder that is not a link, and never truncated, so a planted link or a hard
    link to another file loses nothing. The caller closes it."""
    path = Path(path)
    dfd = _dir_fd(path.parent)
    try:
        fd = os.open(path.name, os.O_RDONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o666, dir_fd=dfd)
    except OSError as exc:
        if os.path.islink(path):
            raise UnsafeFileError(f"{path}: is a symlink; refusing to use it as a lock (remove it first)") from None
        raise exc
    finally:
        os.close(dfd)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise UnsafeFileError(f"{path}: is not a regular file; refusing to use it as a lock")
    return fd


def read_bytes(path: str | Path, *, kind: str, cap: int | None = None, follow: bool = False) -> bytes:
    """The bytes of the regular file ``path``, at most ``cap`` (default: the kind's, ``CAPS``).

    A symlink is refused unless ``follow`` (the user named this path on the command line); a FIFO,
    device or folder always. The cap holds while reading, whatever the file's size claims.
    """
    path = Path(path)
    cap = CAPS[kind] if cap is None else cap
    flags = os.O_RDONLY | os.O_NONBLOCK | (0 if follow else os.O_NOFOLLOW)  # NONBLOCK: a FIFO never hangs open()
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if not follow and os.path.islink(path):
            raise UnsafeFileError(f"{path}: is a symlink; a {kind} file is read only from a regular file") from None
        raise exc
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UnsafeFileError(f"{path}: is not a regular file (a FIFO, device or folder); "
                                  f"a {kind} file is read only from a regular file")
        if st.st_size > cap:
            raise UnsafeFileError(f"{path}: {st.st_size} bytes; a {kind} is at most {cap}")
        chunks, total = [], 0
        while chunk := os.read(fd, min(MiB, cap + 1 - total)):
            chunks.append(chunk)
            total += len(chunk)
            if total > cap:  # grew while read
                raise UnsafeFileError(f"{path}: more than {cap} bytes; a {kind} is at most {cap}")
        return b"".join(chunks)
    finally:
        os.close(fd)


def read_text(path: str | Path, *, kind: str, cap: int | None = None, follow: bool = False) -> str:
    """``read_bytes`` decoded as UTF-8 (a ``UnicodeDecodeError`` for other bytes)."""
    return read_bytes(path, kind=kind, cap=cap, follow=follow).decode("utf-8")


def read_json(path: str | Path, *, kind: str, cap: int | None = None, follow: bool = False):
    """``read_bytes`` parsed as JSON (``ValueError`` for anything else)."""
    return json.loads(read_bytes(path, kind=kind, cap=cap, follow=follow))


def regular_file(path: str | Path, *, kind: str) -> Path:
    """``path`` when it is a regular file, not a link: for readers that open it themselves
    (safetensors, ``torch.load``), which must never meet a FIFO or a device."""
    path = Path(path)
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        raise UnsafeFileError(f"{path}: is a symlink; a {kind} file is read only from a regular file")
    if not stat.S_ISREG(st.st_mode):
        raise UnsafeFileError(f"{path}: is not a regular file; a {kind} file is read only from a regular file")
    return path
