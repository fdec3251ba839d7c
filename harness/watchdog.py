"""A local Ray ends with the sweep's driver, however the driver ends.

Ray ties its head processes (GCS, raylet, monitor, dashboard) to the driver with
``prctl(PR_SET_PDEATHSIG)``, and its workers leave once the raylet is gone, but its dashboard and
runtime-env agents outlive a driver killed with SIGKILL by a minute or more (Ray 2.60). No in-process
hook runs on SIGKILL, so a small process of our own watches instead: started beside a local Ray,
in a session of its own (a terminal's Ctrl-C does not reach it), it blocks on a pipe whose only
writer is the driver. The read ends when the driver closes it after ``ray.shutdown()`` or when the
kernel closes it for a dead driver; the watchdog then kills every process left of that Ray session.

A process belongs to the session when its command line names the session's folder, or when it is a
Ray process (its title ``ray::…``: Ray rewrites its workers' command lines) holding a file of that
folder open. A cluster given by ``--address`` is not ours: no watchdog is started for it.
Standard library only: the watchdog starts in a fraction of a second and imports no torch.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROUNDS = 20  # scans after the driver is gone: a raylet dying as we scan may leave a worker starting
PAUSE_S = 0.25


class Watchdog:
    """The watchdog of one local Ray session, for as long as this process keeps it open."""

    def __init__(self, session_dir: str):
        read_end, self._write_end = os.pipe()  # not inherited by the processes Ray starts (PEP 446)
        self._process = subprocess.Popen([sys.executable, "-m", "peftbench.harness.watchdog", session_dir],
                                         stdin=read_end, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                         start_new_session=True)
        os.close(read_end)

    def close(self) -> None:
        """The session is over (``ray.shutdown()`` returned): the watchdog sweeps up what is left, and we
        wait for it, so no process of the session outlives this call."""
        os.close(self._write_end)
        try:
            self._process.wait(timeout=ROUNDS * PAUSE_S + 10)
        except subprocess.TimeoutExpired:  # a scan slowed by a loaded machine: it finishes on its own
            pass


def session_processes(session_dir: str) -> list[int]:
    """The live processes of this user that belong to the Ray session at ``session_dir`` (none of them
    this process)."""
    folder, found = os.path.realpath(session_dir), []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if entry.stat().st_uid == os.getuid() and _in_session(entry, folder):
                found.append(int(entry.name))
        except OSError:  # gone while we looked, or not ours to read
            continue
    return found


def _in_session(proc: Path, folder: str) -> bool:
    command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    if folder in command:
        return True
    if not command.startswith("ray::"):
        return False
    for fd in (proc / "fd").iterdir():
        try:
            if os.readlink(fd).startswith(folder + os.sep):
                return True
        except OSError:
            continue
    return False


def sweep_up(session_dir: str) -> None:
    """SIGKILL what is left of the session, scanning again until two scans in a row find nothing."""
    quiet = 0
    for _ in range(ROUNDS):
        left = session_processes(session_dir)
        quiet = 0 if left else quiet + 1
        if quiet == 2:
            return
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:  # already gone
                pass
        time.sleep(PAUSE_S)


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the driver's end, not ours, decides when we act
    while sys.stdin.buffer.read(1):  # the driver never writes: only its end closing ends the read
        pass
    sweep_up(sys.argv[1])


if __name__ == "__main__":
    main()
