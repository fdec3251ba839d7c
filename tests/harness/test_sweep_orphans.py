"""A sweep's local Ray ends with its driver: after a SIGKILL of the driver mid-trial, no process of
that sweep's Ray session is left (Ray's own fate-sharing left its dashboard and runtime-env agents
running for a minute or more)."""

import signal
import time
from pathlib import Path

from peftbench.harness.watchdog import session_processes

from testkit.sweeps import sweep, write_spec

# a wait, not a timing claim: the watchdog acts within a second; Ray's agents alone outlived a dead
# driver by 50-90 s on a 2-core machine
GONE_WITHIN_S = 30


def poll(find, timeout: float, what: str):
    """``find()``'s first truthy answer, polled every half second for at most ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := find():
            return found
        time.sleep(0.5)
    raise AssertionError(f"no {what} after {timeout}s")


def session_of(driver_pid: int) -> str | None:
    """The session folder of the Ray that ``driver_pid`` started: its child GCS server names it."""
    for proc in Path("/proc").iterdir():
        try:
            if not proc.name.isdigit() or int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1]) != driver_pid:
                continue
            args = (proc / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        for arg in args:
            if arg.startswith("--session-dir="):
                return arg.removeprefix("--session-dir=")
    return None


def titles(pids: list[int]) -> set[str]:
    out = set()
    for pid in pids:
        try:
            out.add(Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode(errors="replace").strip())
        except OSError:
            continue
    return out


def test_a_killed_drivers_local_ray_ends_with_it(tmp_path):
    spec = write_spec(tmp_path / "orphans.yaml", learning_rates=[1e-2], seeds=[0], epochs=50)
    driver = sweep(spec, tmp_path / "out")
    try:
        session = poll(lambda: session_of(driver.pid), 300, "Ray session of the sweep")
        # once a trial runs: Ray's agents (the processes orphaned before) and the trial's worker are up
        seen = poll(lambda: (t := titles(session_processes(session)))
                    >= {"ray::DashboardAgent", "ray::RuntimeEnvAgent", "ray::ImplicitFunc.train"} and t,
                    300, "running trial")
    finally:
        driver.send_signal(signal.SIGKILL)
        driver.wait()
    assert "ray::ImplicitFunc.train" in seen
    try:
        poll(lambda: not session_processes(session), GONE_WITHIN_S, "end of the session's processes")
    except AssertionError:
        raise AssertionError(f"left {GONE_WITHIN_S}s after the driver: {titles(session_processes(session))}") from None
