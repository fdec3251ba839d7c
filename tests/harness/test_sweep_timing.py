"""The sweep's ETA from each method's finished trials, and its timing summary's idle slots."""

from __future__ import annotations

from types import SimpleNamespace

from peftbench.harness.progress import SweepProgress
from peftbench.harness.records import new_record
from peftbench.harness.spec import parse_spec
from peftbench.harness.sweep import idle_slot_seconds, timing_summary

SPEC = parse_spec({"model": "tiny-t5", "data": "fixtures", "methods": ["bitfit", "full", "adapter", "prompt-tuning-r"],
                   "tasks": ["cb"], "learning_rates": [1e-3], "seeds": [0], "epochs": 1})


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def trial(trial_id: str, method: str):
    point = {"method": method, "task": "cb", "learning_rate": 1e-3, "seed": 0}
    record = new_record(SPEC.trial_at(point), status="ok", test_score=50.0)
    return SimpleNamespace(trial_id=trial_id, config={"point": point}, error_file=None,
                           last_result={"status": "ok", "test_score": 50.0, "error": None, "record": record})


def test_the_eta_replays_the_trials_left_on_the_slots_with_each_methods_own_duration(tmp_path):
    clock, lines = Clock(), []
    methods = ["bitfit", "full", "bitfit", "full", "bitfit", "full"]
    progress = SweepProgress(6, tmp_path, spec=SPEC, methods=methods, slots=2, print_fn=lines.append, clock=clock)
    trials = [trial(str(i), m) for i, m in enumerate(methods)]
    progress.on_trial_start(0, [], trials[0])
    progress.on_trial_start(0, [], trials[1])
    assert progress.eta() is None and lines[-1].endswith("ETA ?]")
    clock.now = 10.0
    progress.on_trial_complete(0, [], trials[0])  # bitfit: 10 s
    progress.on_trial_start(0, [], trials[2])
    clock.now = 20.0
    progress.on_trial_complete(0, [], trials[2])  # bitfit again: 10 s
    progress.on_trial_start(0, [], trials[3])
    clock.now = 100.0
    progress.on_trial_complete(0, [], trials[1])  # full: 100 s
    progress.on_trial_start(0, [], trials[4])
    # running: full (80 s in, 20 s left) and bitfit (just started, 10 s left); waiting: full.
    # Slots free at 10 and 20 s: the last full starts at 10 and ends at 110 s.
    assert progress.eta() == 110.0
    assert lines[-1].endswith("ETA 110s]")
    # one mean for all (40 s) would say 40 s; elapsed per finished trial × trials left, 100 s


def test_a_method_with_no_finished_trial_is_guessed_from_all_and_overruns_are_not_negative(tmp_path):
    clock = Clock()
    progress = SweepProgress(3, tmp_path, spec=SPEC, methods=["adapter", "adapter", "prompt-tuning-r"], slots=1,
                             print_fn=lambda line: None, clock=clock)
    a, b = trial("a", "adapter"), trial("b", "adapter")
    progress.on_trial_start(0, [], a)
    clock.now = 30.0
    progress.on_trial_complete(0, [], a)
    progress.on_trial_start(0, [], b)
    clock.now = 75.0  # b has run past adapter's 30 s: it may end any moment
    assert progress.eta() == 30.0  # then prompt tuning, guessed at the 30 s of all finished trials


def test_a_slot_with_nothing_left_to_run_is_idle_not_overhead():
    # three 60 s trials on two slots, from 0: two run together, the third alone from 60 to 120
    records = [{"wall_time_s": 60.0, "finished_at": 1060.0}, {"wall_time_s": 60.0, "finished_at": 1060.0},
               {"wall_time_s": 60.0, "finished_at": 1120.0}]
    line = timing_summary(records, wall=130.0, slots=2, since=1000.0)
    # 260 slot-seconds: 180 in trials, 60 idle (one slot while the third ran), 20 overhead (7.7%)
    assert line == ("sweep wall time 130.0s; 3 trials ran for 180.0s in all on 2 slots; "
                    "slots idle with no trial left 60.0s (23.1%); scheduling overhead 7.7%")


def test_idle_time_counts_only_after_the_last_start():
    assert idle_slot_seconds([], 2) == 0.0
    assert idle_slot_seconds([(0.0, 50.0), (10.0, 30.0)], 2) == 20.0  # from 10 to 50, one slot free from 30
    assert idle_slot_seconds([(0.0, 10.0), (0.0, 10.0)], 2) == 0.0  # both ended together


def test_before_any_trial_ends_the_eta_comes_from_the_running_trials_share_of_epochs_done(tmp_path):
    clock, lines = Clock(), []
    spec = parse_spec({"model": "tiny-t5", "data": "fixtures", "methods": [{"name": "lora", "display": "LoRA (r=8)"}],
                       "tasks": ["cb"], "learning_rates": [1e-3], "seeds": [0, 1], "epochs": 4})
    progress = SweepProgress(2, tmp_path, spec=spec, methods=["lora", "lora"], slots=1, print_fn=lines.append,
                             clock=clock)
    first = SimpleNamespace(trial_id="a", config={"point": spec.points()[0]})
    progress.on_trial_start(0, [], first)
    assert lines[0] == "▶ started   LoRA (r=8) cb lr=0.001 seed=0"  # the display name, not the label
    clock.now = 15.0
    progress.on_trial_result(0, [], first, {"epoch": 1, "step": 3, "val_score": 50.0})
    # one epoch of four in 15 s: 45 s left of this trial, then 60 s for the other on the one slot
    assert progress.eta() == 105.0
    assert len(lines) == 2  # the overall line of the start only: a minute has not passed
    clock.now = 61.0
    progress.on_trial_result(0, [], first, {"epoch": 2, "step": 6, "val_score": 50.0})
    assert lines[-1].endswith("ETA 183s]")  # 122 s a trial: 61 s left of this one, then the other
