"""Sweeps that survive crashes, on CPU, offline, with a real Ray: a killed driver resumed, a failing
trial among good ones, a lost worker node, and a two-worker DeepSpeed trial through Ray Train."""

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from peftbench.harness.spec import load_spec

from testkit.sweeps import records_in, sweep, write_spec


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def test_a_killed_sweep_resumes_without_rerunning_finished_trials(tmp_path):
    spec = write_spec(tmp_path / "killed.yaml", epochs=3)
    out = tmp_path / "out"
    driver = sweep(spec, out)
    wait_for(lambda: len(records_in(out)) >= 1, 300, "a first record")
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    time.sleep(5)  # let workers of the dead driver's Ray wind down or finish their record
    before = {p.name: (p.stat().st_mtime_ns, p.read_text()) for p in (out / "results").glob("*.json")}
    assert 1 <= len(before) < 4

    resumed = sweep(spec, out, "--resume")
    output, _ = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, output[-3000:]

    expected = {cfg.trial_id for cfg in load_spec(spec).trials()}
    files = sorted(p.stem for p in (out / "results").glob("*.json"))
    assert files == sorted(expected)  # one record per grid point, none duplicated
    assert all(r["status"] == "ok" for r in records_in(out).values())
    for name, (mtime, text) in before.items():
        path = out / "results" / name
        assert (path.stat().st_mtime_ns, path.read_text()) == (mtime, text), f"{name} was rerun"
    assert "sweep wall time" in output


def test_a_sweep_refuses_to_reuse_a_folder_without_resume(tmp_path):
    spec = write_spec(tmp_path / "s.yaml")
    out = tmp_path / "out"
    out.mkdir()
    (out / "spec.json").write_text("{}")
    proc = sweep(spec, out)
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 2 and "--resume" in output.strip().splitlines()[-1]


def test_a_failing_trial_is_recorded_while_the_others_finish(tmp_path):
    # learning rate 1e9 drives the loss to NaN within a few steps: a real, runtime failure
    spec = write_spec(tmp_path / "mixed.yaml", learning_rates=[1e9, 1e-2], seeds=[0], epochs=1)
    out = tmp_path / "out"
    proc = sweep(spec, out)
    output, _ = proc.communicate(timeout=600)
    assert proc.returncode == 1  # the sweep says some trials failed
    records = list(records_in(out).values())
    assert sorted(r["status"] for r in records) == ["failed", "ok"]
    failed = next(r for r in records if r["status"] == "failed")
    assert failed["learning_rate"] == 1e9 and "non-finite loss" in failed["error"]
    assert "failed: FloatingPointError" in output


def test_two_worker_deepspeed_trial_through_torch_trainer_inside_tune(tmp_path):
    spec = write_spec(tmp_path / "dp.yaml", methods=[{"name": "full", "options": {"workers": 2}}],
                      learning_rates=[1e-2], seeds=[0], epochs=1, batch_size=16)
    # Ray's "(RayTrainWorker pid=…)" line prefix, hidden by default, says where the loop ran
    proc = sweep(spec, tmp_path / "out", env={"RAY_DISABLE_WORKER_LOG_PREFIX": "0"})
    output, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, output[-3000:]
    (record,) = records_in(tmp_path / "out").values()
    assert record["status"] == "ok" and record["workers"] == 2
    assert record["examples_per_step"] == 2 * record["micro_batch_size"] == 32  # each worker takes 16 rows
    assert "RayTrainWorker" in output  # the loop ran in Ray Train's workers, not the Tune trial


def ray_node(*args: str) -> subprocess.Popen:
    """A Ray node in the foreground (``--block``) in its own process group, so a test can stop it alone."""
    ray_bin = str(Path(sys.executable).with_name("ray"))
    return subprocess.Popen([ray_bin, "start", "--num-cpus=1", "--block", "--disable-usage-stats", *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def stop(node: subprocess.Popen) -> None:
    if node.poll() is None:
        os.killpg(node.pid, signal.SIGTERM)
        node.wait(timeout=60)


@pytest.fixture
def two_node_cluster(monkeypatch):
    """A head node and a worker node on this machine, one CPU each."""
    from peftbench.engine.step import free_port

    # `ray start` clusters want a token; one of the test's own, given to every process through the
    # environment, so no node races another for ~/.ray/auth_token (absent on a fresh CI machine)
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    monkeypatch.setenv("RAY_AUTH_TOKEN", secrets.token_hex(16))
    monkeypatch.delenv("RAY_AUTH_TOKEN_PATH", raising=False)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    for name in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):  # left by in-process DeepSpeed
        monkeypatch.delenv(name, raising=False)
    port = free_port()
    head = ray_node("--head", f"--port={port}", "--include-dashboard=false")
    worker = None
    try:
        address = f"127.0.0.1:{port}"
        worker = ray_node(f"--address={address}")
        yield address, worker
    finally:
        for node in (worker, head):
            if node is not None:
                stop(node)


LIVE_NODES = """
import sys, ray
ray.init(address=sys.argv[1], logging_level="ERROR")
print(len([n for n in ray.nodes() if n["Alive"]]))
"""


def live_nodes(address: str) -> int:
    """The cluster's live nodes, asked from a fresh process: Ray caches the auth token a process
    first loads, and earlier tests' local clusters have already loaded one in this process."""
    proc = subprocess.run([sys.executable, "-c", LIVE_NODES, address], check=False, capture_output=True,
                          text=True, timeout=60)
    return int(proc.stdout.split()[-1]) if proc.returncode == 0 and proc.stdout.split() else 0


def test_sweep_on_a_two_node_cluster_survives_losing_a_node(tmp_path, two_node_cluster):
    address, worker = two_node_cluster
    wait_for(lambda: live_nodes(address) == 2, 120, "two live nodes")

    spread = write_spec(tmp_path / "spread.yaml", learning_rates=[1e-2], epochs=1)
    proc = sweep(spread, tmp_path / "spread", "--address", address)
    output, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, output[-3000:]
    nodes = {r["provenance"]["ray_node"] for r in records_in(tmp_path / "spread").values()}
    assert len(nodes) == 2  # the two trials ran on both nodes

    lost = write_spec(tmp_path / "lost.yaml", learning_rates=[1e-2], epochs=8)
    proc = sweep(lost, tmp_path / "lost", "--address", address)
    started = []
    for line in proc.stdout:
        started += ["▶ started" in line]
        if sum(started) == 2:
            break
    time.sleep(3)
    stop(worker)  # the worker node goes away mid-trial
    rest, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, rest[-3000:]
    assert "↻ retrying" in rest
    records = records_in(tmp_path / "lost")
    assert len(records) == 2 and all(r["status"] == "ok" for r in records.values())
