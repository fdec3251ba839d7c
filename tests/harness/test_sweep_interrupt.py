"""Ctrl-C or SIGTERM on a running sweep: the driver stops at once, trials that never ended have no record
(they are missing, to run on ``--resume``, not failed), the ``--resume`` command is printed, Ray's own
advice is not, and the exit code is a shell's for the signal (SIGINT 130, SIGTERM 143)."""

import signal

import pytest

from testkit.sweeps import records_in, sweep, write_spec


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_leaves_unstarted_trials_missing_and_prints_the_resume_command(tmp_path, sig, code):
    spec = write_spec(tmp_path / "interrupted.yaml", epochs=200)  # 4 trials, none ends before the signal
    out = tmp_path / "out"
    driver = sweep(spec, out)
    seen = []
    for line in driver.stdout:  # until a trial runs: Ray is up, the others are pending
        seen.append(line)
        if "started" in line:
            break
    driver.send_signal(sig)
    rest, _ = driver.communicate(timeout=120)
    output = "".join(seen) + rest
    assert driver.returncode == code, output[-3000:]
    assert records_in(out) == {}, output[-3000:]  # no trial ended: none recorded, failed or otherwise
    assert f"peftbench sweep {spec} --out {out} --resume" in output
    assert "Tuner.restore" not in output
