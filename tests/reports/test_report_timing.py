"""The report's predicted-against-measured table, from a prediction file and records made by hand."""

from __future__ import annotations

from peftbench.files import write_json
from peftbench.harness.cost import PREDICTION_FILE
from peftbench.reports import summary

from testkit.records import seeds, write_all


def test_predicted_and_measured_seconds_per_method_and_in_all(tmp_path):
    write_all(tmp_path, [*seeds("full", "rte", 1e-3, [1, 2], [60, 61], wall_time_s=10.0),
                         *seeds("adapter", "rte", 1e-3, [1, 2], [70, 71], wall_time_s=4.0)])
    write_json(tmp_path / PREDICTION_FILE, {
        "rows": [{"method": "full", "task": "rte", "trials": 2, "seconds": 12.0, "step": "measured"},
                 {"method": "adapter", "task": "rte", "trials": 2, "seconds": 3.0, "step": "measured"},
                 {"method": "lora", "task": "rte", "trials": 2, "seconds": None, "step": None}],
        "device_hours": 0.01, "wall_hours": 0.005, "slots": 2, "assumptions": "by hand"})
    table = next(t for t in summary.build(tmp_path).tables if t.key == "predicted_vs_measured")
    # full: 12 predicted vs 10 measured, +20%; adapter: 3 vs 4, −25%; all: 30 vs 28 over four trials
    assert table.rows == [["full", "2", "12.0", "10.0", "+20%"], ["adapter", "2", "3.0", "4.0", "-25%"],
                          ["(all trials)", "4", "30", "28", "+7%"]]
    assert "wall time (wall_time_s)" in table.notes[0]


def test_a_prediction_on_the_cpu_clock_is_compared_with_cpu_seconds(tmp_path):
    write_all(tmp_path, [*seeds("full", "rte", 1e-3, [1, 2], [60, 61], wall_time_s=50.0, cpu_time_s=10.0)])
    write_json(tmp_path / PREDICTION_FILE, {
        "rows": [{"method": "full", "task": "rte", "trials": 2, "seconds": 11.0, "step": "measured"}],
        "device_hours": 0.01, "wall_hours": 0.005, "slots": 2, "clock": "cpu"})
    table = next(t for t in summary.build(tmp_path).tables if t.key == "predicted_vs_measured")
    # 11 predicted against the 10 CPU seconds, not the 50 wall seconds a loaded machine gave
    assert table.rows[0] == ["full", "2", "11.0", "10.0", "+10%"] and "cpu_time_s" in table.notes[0]


def test_no_prediction_no_table(tmp_path):
    write_all(tmp_path, seeds("full", "rte", 1e-3, [1, 2], [60, 61]))
    assert all(t.key != "predicted_vs_measured" for t in summary.build(tmp_path).tables)
