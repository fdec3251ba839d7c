"""A run that Ray itself ends is not the sweep's end: the points without a record run again, and a
local Ray does not kill our trials for other processes' memory."""

from __future__ import annotations

import pytest
import ray

from peftbench.harness import sweep
from peftbench.harness.records import new_record, read_records, write_record
from peftbench.harness.spec import parse_spec

from testkit.sweeps import records_in, write_spec
from testkit.sweeps import sweep as run_sweep_process

SPEC = {"name": "s", "model": "tiny-t5", "data": "fixtures", "methods": ["adapter"], "tasks": ["sst2"],
        "learning_rates": [1e-3], "seeds": [0, 1, 2], "epochs": 1}
OOM = "1 worker(s) were killed due to the node running low on memory.\nMemory on the node was 22.5GB used"


class Tuner:
    """What ``fit`` sees of a Ray Tune tuner: ``fit()`` raising as Tune's controller does."""

    def __init__(self, cause: BaseException | None):
        self.cause = cause

    def fit(self):
        raise RuntimeError(f"Caught unexpected exception: {self.cause}") from self.cause


def test_a_ray_error_out_of_tune_is_ray_ended_in_one_line_and_others_pass():
    with pytest.raises(sweep.RayEnded, match=r"^OutOfMemoryError: 1 worker\(s\) were killed .*memory\.$") as info:
        sweep.fit(Tuner(ray.exceptions.OutOfMemoryError(OOM)), slots=2)
    assert info.value.slots == 2
    with pytest.raises(RuntimeError, match="Caught unexpected") as info:
        sweep.fit(Tuner(ValueError("ours")), slots=2)
    assert not isinstance(info.value, sweep.RayEnded)


def rounds(tmp_path, ended_rounds: int, recorded: int = 1):
    """``run_rounds`` over a 3-point grid whose first ``ended_rounds`` runs record ``recorded`` trials
    each and then end as Ray would; the points each run was given."""
    spec = parse_spec(SPEC)
    points = spec.points()
    given = []

    def run_grid(spec_, todo, out_dir, **_):
        given.append([spec.trial_at(p).trial_id for p in todo])
        for p in todo[: recorded if len(given) <= ended_rounds else None]:
            write_record(out_dir, new_record(spec.trial_at(p), status="ok"))
        if len(given) <= ended_rounds:
            raise sweep.RayEnded("OutOfMemoryError: killed", slots=2)
        return 2

    return spec, points, given, run_grid


def test_after_ray_ends_a_run_only_the_points_without_a_record_run_again(tmp_path, monkeypatch):
    spec, points, given, run_grid = rounds(tmp_path, ended_rounds=2)
    monkeypatch.setattr(sweep, "run_grid", run_grid)
    assert sweep.run_rounds(spec, points, points, tmp_path, address=None, storage="", prepare=None) == 2
    assert [len(g) for g in given] == [3, 2, 1]  # each round: the points still without a record
    assert len({g[0] for g in given}) == 3
    assert {r["trial_id"] for r in read_records(tmp_path)} == {spec.trial_at(p).trial_id for p in points}


def test_a_run_ray_ends_every_time_stops_in_one_line_naming_resume(tmp_path, monkeypatch):
    spec, points, given, run_grid = rounds(tmp_path, ended_rounds=9, recorded=0)
    monkeypatch.setattr(sweep, "run_grid", run_grid)
    with pytest.raises(sweep.SweepError) as info:
        sweep.run_rounds(spec, points, points, tmp_path, address=None, storage="", prepare=None)
    assert len(given) == sweep.RAY_ENDED_ROUNDS + 1
    message = str(info.value)
    assert "\n" not in message and "--resume" in message and "killed" in message
    assert message.count("trials have no record") == 1


def test_a_local_ray_does_not_kill_trials_for_the_machines_memory(tmp_path):
    """With Ray's kill threshold at 2% of the machine's memory (always passed), the monitor would kill
    every trial (it did: "worker lost, Ray's retries spent"); our local Ray runs it with the monitor off."""
    spec = write_spec(tmp_path / "s.yaml", learning_rates=[1e-2], seeds=[0], epochs=1)
    proc = run_sweep_process(spec, tmp_path / "out", env={"RAY_memory_usage_threshold": "0.02"})
    output, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, output[-2000:]
    assert [r["status"] for r in records_in(tmp_path / "out").values()] == ["ok"]
