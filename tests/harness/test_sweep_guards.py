"""What a sweep refuses before anything starts, and what ``--resume`` reruns; fast, without a
running Ray (the refusals come before one starts)."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from peftbench.cli.main import main
from peftbench.engine.step import free_port
from peftbench.harness.config import TrialConfig
from peftbench.harness.folder import FolderError, FolderLock
from peftbench.harness.records import new_record, write_record
from peftbench.harness.spec import load_spec
from peftbench.harness.sweep import points_to_run

ROOT = Path(__file__).resolve().parents[2]


def write_spec(path: Path, **changes) -> Path:
    spec = {"name": "guards", "model": "tiny-t5", "data": "fixtures", "methods": ["adapter"], "tasks": ["sst2"],
            "learning_rates": [1e-2, 3e-3], "seeds": [0], "epochs": 1, "batch_size": 32, **changes}
    path.write_text(yaml.safe_dump(spec))
    return path


def refusal(capsys, *argv) -> str:
    """Run the command; it must exit 2 with exactly one line on stderr, which is returned."""
    code = main(list(argv))
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, (code, err)
    return err[0]


def test_cpus_per_trial_beyond_the_machine_is_refused_before_ray_starts(tmp_path, capsys):
    spec = write_spec(tmp_path / "s.yaml", cpus_per_trial=os.cpu_count() + 1)
    line = refusal(capsys, "sweep", str(spec), "--out", str(tmp_path / "out"))
    assert f"cpus_per_trial: {os.cpu_count() + 1} CPUs per trial, but the largest node" in line
    assert not (tmp_path / "out").exists()


def test_more_workers_than_cpus_is_refused_before_ray_starts(tmp_path, capsys):
    workers = os.cpu_count() + 1
    spec = write_spec(tmp_path / "s.yaml", methods=[{"name": "full", "options": {"workers": workers}}])
    line = refusal(capsys, "sweep", str(spec), "--out", str(tmp_path / "out"))
    assert f"methods: full[workers={workers}] asks for {workers} workers, one CPU each" in line
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("out, says", [
    ("file", "is a file, not a folder"),
    ("/proc/peftbench-test/out", "cannot write in /proc"),  # unwritable even for root
])
def test_an_unusable_out_is_one_line(tmp_path, capsys, out, says):
    if out == "file":
        out = tmp_path / "file"
        out.write_text("not a folder")
    spec = write_spec(tmp_path / "s.yaml")
    assert says in refusal(capsys, "sweep", str(spec), "--out", str(out))
    assert says in refusal(capsys, "trial", "--method", "adapter", "--task", "sst2", "--lr", "1e-3",
                           "--out", str(out))


@pytest.mark.parametrize("flag, value", [("--epochs", "0"), ("--batch-size", "0"), ("--lr", "nan"),
                                         ("--seed", str(2**64))])
def test_trial_settings_out_of_range_are_one_line(tmp_path, capsys, flag, value):
    args = {"--method": "adapter", "--task": "sst2", "--lr": "1e-3", flag: value}
    line = refusal(capsys, "trial", *[x for kv in args.items() for x in kv], "--out", str(tmp_path / "t"))
    assert line.startswith(f"peftbench: {flag}: expected ")


def test_a_trial_with_a_model_that_is_nowhere_is_one_line(tmp_path, capsys):
    line = refusal(capsys, "trial", "--method", "adapter", "--task", "sst2", "--lr", "1e-3", "--model",
                   str(tmp_path / "no-model"), "--out", str(tmp_path / "t"))
    assert line == f"peftbench: --model: {tmp_path / 'no-model'} is neither a folder nor a hub id"


RECORDS_RAY_ENV = """
import importlib.abc, os, sys
seen = []
class Watch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "ray" and not seen:
            seen.append(os.environ.get("RAY_DEDUP_LOGS"))
        return None
sys.meta_path.insert(0, Watch())
from peftbench.cli.main import main
code = main(sys.argv[1:])
print("RAY_DEDUP_LOGS at import:", seen)
sys.exit(code)
"""


def test_an_unreachable_cluster_fails_in_seconds_leaving_nothing(tmp_path):
    spec = write_spec(tmp_path / "s.yaml")
    out = tmp_path / "out"
    address = f"127.0.0.1:{free_port()}"  # a port nothing listens on
    env = {k: v for k, v in os.environ.items() if k != "RAY_DEDUP_LOGS"}
    proc = subprocess.run([sys.executable, "-c", RECORDS_RAY_ENV, "sweep", str(spec), "--out", str(out),
                           "--address", address], capture_output=True, text=True, env=env, cwd=ROOT, timeout=120,
                          check=False)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines() == [
        f"peftbench: --address {address}: no Ray cluster answers there (Connection refused)"]
    # the refusal is our socket check's line, before ray.init (whose own join would wait and retry)
    assert not out.exists()  # no spec.json left behind: a retry needs no --resume
    assert "RAY_DEDUP_LOGS at import: ['0']" in proc.stdout  # set before Ray read it


def test_the_folder_lock_refuses_a_second_holder_and_dies_with_its_holder(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from pathlib import Path; from harness.folder import FolderLock; "
        "FolderLock(Path(sys.argv[1])).acquire(); print('held', flush=True); time.sleep(600)"), str(tmp_path)],
        cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(FolderError, match=f"another sweep \\(pid {holder.pid}\\) is running in this folder"):
            FolderLock(tmp_path).acquire()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    lock = FolderLock(tmp_path).acquire()  # the kernel let go of the dead holder's lock
    assert lock.held
    lock.release()


def test_a_resume_while_another_sweep_holds_the_folder_is_one_line(tmp_path, capsys):
    spec = write_spec(tmp_path / "s.yaml")
    out = tmp_path / "out"
    out.mkdir()
    lock = FolderLock(out).acquire()
    try:
        line = refusal(capsys, "sweep", str(spec), "--out", str(out), "--resume")
    finally:
        lock.release()
    assert line == (f"peftbench: {out}: another sweep (pid {os.getpid()}) is running in this folder; wait for it, "
                    "or stop it first")


def test_resume_reruns_failed_missing_and_unreadable_points(tmp_path, capsys):
    spec = load_spec(write_spec(tmp_path / "s.yaml", learning_rates=[1e-2, 3e-3, 1e-3, 3e-4]))
    ok, failed, bad, missing = spec.points()
    out = tmp_path / "out"
    write_record(out, new_record(spec.trial_at(ok), status="ok"))
    write_record(out, new_record(spec.trial_at(failed), status="failed", error="RuntimeError: boom"))
    truncated = out / "results" / f"{spec.trial_at(bad).trial_id}.json"
    truncated.write_text('{"schema": "peftbench.result/1", "tri')

    points, set_aside = points_to_run(spec, spec.points(), out, retry_failed=True)
    assert points == [failed, bad, missing] and set_aside == [truncated]
    points, _ = points_to_run(spec, spec.points(), out, retry_failed=False)
    assert points == [bad, missing]
    assert "2 trials already done" in capsys.readouterr().out


def test_a_trial_runs_over_a_file_that_is_not_a_record(tmp_path, tiny_trial_kwargs):
    from peftbench.harness.records import read_record, record_path
    from peftbench.harness.trial import ok_record

    cfg = TrialConfig(method="bitfit", task="sst2", learning_rate=1e-3, **tiny_trial_kwargs)
    path = record_path(tmp_path, cfg.trial_id)
    path.parent.mkdir(parents=True)
    path.write_text("[1, 2")
    assert ok_record(path) is None
    write_record(tmp_path, new_record(cfg, status="ok"))
    assert ok_record(path) == read_record(path)


def test_the_report_counts_grid_points_without_a_record(tmp_path):
    from peftbench.harness.folder import write_sweep_files
    from peftbench.reports.summary import report

    spec = load_spec(write_spec(tmp_path / "s.yaml"))
    first, second = spec.trials()
    out = tmp_path / "out"
    write_record(out, new_record(first, status="failed", error="worker lost, Ray's retries spent (0 allowed): …"))
    write_sweep_files(out, "{}", [first.trial_id, second.trial_id])
    text = report(out)
    assert text.splitlines()[0] == "**0 of 1 trials ok, 1 failed (listed under Failed trials).**"
    line = (f"**1 of 2 grid points have no record (never ran, were lost or set aside), e.g. {second.trial_id}: "
            f"peftbench sweep SPEC --out {out} --resume runs them.**")
    assert line in text.splitlines()
