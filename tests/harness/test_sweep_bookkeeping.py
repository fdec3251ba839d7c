"""The sweep's bookkeeping, without running Ray: a folder keeps one spec, the overhead figure is its
formula, and the driver alone writes records, from what the trials hand it."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from peftbench.harness.config import TrialConfig
from peftbench.harness.folder import FolderError, check_spec_file, write_sweep_files
from peftbench.harness.progress import SweepProgress
from peftbench.harness.records import new_record, read_records
from peftbench.harness.spec import parse_spec
from peftbench.harness.sweep import spec_text, timing_summary

SPEC = {"name": "s", "model": "tiny-t5", "data": "fixtures", "methods": ["adapter"], "tasks": ["sst2"],
        "learning_rates": [1e-3], "seeds": [0], "epochs": 1}


def test_a_folder_continues_only_the_spec_it_started_with(tmp_path):
    out, spec = tmp_path, parse_spec(SPEC)
    check_spec_file(out, spec_text(spec), name="s", resume=False)  # an empty folder takes any spec
    write_sweep_files(out, spec_text(spec), [cfg.trial_id for cfg in spec.trials()])
    check_spec_file(out, spec_text(parse_spec(SPEC)), name="s", resume=True)  # the same spec resumes
    other = parse_spec({**SPEC, "learning_rates": [1e-3, 3e-3]})
    with pytest.raises(FolderError, match="different spec"):
        check_spec_file(out, spec_text(other), name="s", resume=True)
    with pytest.raises(FolderError, match="--resume"):
        check_spec_file(out, spec_text(spec), name="s", resume=False)


def test_idle_slots_count_only_this_runs_trials_and_overhead_is_not_shown_with_no_trial_queued():
    since = 1000.0
    records = [{"finished_at": since + 5, "wall_time_s": 30.0}, {"finished_at": since + 9, "wall_time_s": 50.0},
               {"finished_at": since - 1, "wall_time_s": 99.0}]  # finished before this run: not counted
    line = timing_summary(records, wall=50.0, slots=2, since=since)
    # 100 slot-seconds, 80 in trials; after the last start (since - 25) one slot is free from since + 5
    # to since + 9 with nothing left to run: 4 s idle; two trials on two slots: the rest is Ray's start-up
    assert "2 trials ran for 80.0s" in line and "idle with no trial left 4.0s" in line
    assert "scheduling overhead" not in line


def test_the_driver_writes_the_record_a_trial_hands_it(tmp_path):
    """Workers on other machines write nothing here: the record arrives in the trial's last result."""
    cfg = TrialConfig(method="adapter", task="sst2", learning_rate=1e-3, model="tiny-t5", data="fixtures")
    record = new_record(cfg, status="ok", error=None, test_score=61.5)
    trial = SimpleNamespace(trial_id="t1", config={"point": {"method": "adapter", "task": "sst2",
                                                             "learning_rate": 1e-3, "seed": 0}},
                            last_result={"status": "ok", "test_score": 61.5, "record": record})
    lines = []
    progress = SweepProgress(1, tmp_path, spec=parse_spec(SPEC), print_fn=lines.append)
    progress.on_trial_start(0, [], trial)
    progress.on_trial_complete(0, [], trial)
    (written,) = read_records(tmp_path)
    assert written["trial_id"] == cfg.trial_id and written["test_score"] == 61.5
    assert any("✓ finished" in line and "test 61.50" in line for line in lines)
