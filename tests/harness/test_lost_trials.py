"""A trial whose worker is SIGKILLed with no retries left ends with a ``failed`` record from the
driver and a non-zero exit; a concurrent ``--resume`` is refused meanwhile; ``--resume`` then
reruns it to ``ok`` past a planted checkpoint and planted Ray pickles, none of which runs."""

import os
import signal
import subprocess
import time
from pathlib import Path

from peftbench.harness.spec import load_spec

from testkit.sweeps import records_in, sweep, write_spec


def descends_from(pid: int, ancestor: int) -> bool:
    """Whether process ``pid`` is ``ancestor``'s child, grandchild, …: only our own sweep's worker is killed."""
    while pid > 1:
        if pid == ancestor:
            return True
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            return False
    return False


def trial_workers(driver: int) -> list[int]:
    """The pids of the Ray processes running a trial (``ray::ImplicitFunc``) that descend from ``driver``."""
    def running_a_trial(pid: str) -> bool:
        try:
            return Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"ray::ImplicitFunc")
        except OSError:
            return False

    return [int(pid) for pid in os.listdir("/proc") if pid.isdigit() and running_a_trial(pid)
            and descends_from(int(pid), driver)]


def test_a_killed_worker_is_recorded_failed_and_resume_reruns_it_safely(tmp_path, plant_pickle):
    spec = write_spec(tmp_path / "lost.yaml", learning_rates=[1e-2], seeds=[0], epochs=6, train_size=64,
                      max_failures=0)
    (trial,) = load_spec(spec).trials()
    out = tmp_path / "out"
    checkpoint = out / "checkpoints" / trial.trial_id / "loop.pt"
    driver = sweep(spec, out)
    seen = []
    for line in driver.stdout:
        seen.append(line)
        if "▶ started" in line:  # the first sweep holds the folder: a second is refused in one line
            second = subprocess.run(sweep(spec, out, "--resume").args, capture_output=True, text=True, timeout=300,
                                    check=False)
            assert second.returncode == 2 and "another sweep" in second.stderr, second.stderr[-2000:]
            assert len(second.stderr.strip().splitlines()) == 1
            break
    while not checkpoint.exists() and driver.poll() is None:  # a sweep prints no epoch lines: epoch 1 saved
        time.sleep(0.05)
    (worker,) = trial_workers(driver.pid)
    os.kill(worker, signal.SIGKILL)  # the trial has five epochs to go
    rest, _ = driver.communicate(timeout=600)
    output = "".join(seen) + rest
    assert driver.returncode == 1, output[-3000:]
    (record,) = records_in(out).values()
    assert record["status"] == "failed" and "worker lost, Ray's retries spent (0 allowed)" in record["error"]
    assert "0 ok, 1 failed, 0 missing of 1 grid points" in output
    assert "0 of 1 trials ok, 1 failed" in output  # the report counts it

    marker = tmp_path / "ran"
    assert checkpoint.exists()  # epoch 1's; it would be continued from
    for path in [checkpoint, out / "ray" / "tuner.pkl", *[run / "tuner.pkl" for run in (out / "ray").glob("run-*")]]:
        plant_pickle(path, marker)

    resumed = sweep(spec, out, "--resume")
    output, _ = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, output[-3000:]
    assert not marker.exists()
    assert "unreadable (UnpicklingError" in output and "starting afresh" in output
    (record,) = records_in(out).values()
    assert record["status"] == "ok" and record["trial_id"] == trial.trial_id
    assert "1 ok, 0 failed, 0 missing of 1 grid points" in output
