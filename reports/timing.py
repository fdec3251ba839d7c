"""Predicted against measured: the seconds per trial the sweep predicted before it ran
(``OUT/prediction.json``, harness/cost.py) beside each method's measured trial wall time, and the
sweep's total, so the cost model's error shows on every run."""

from __future__ import annotations

from pathlib import Path

from peftbench.files import read_json
from peftbench.harness.cost import PREDICTION_FILE, hours
from peftbench.methods import method_label
from peftbench.reports.tables import Table


def read_prediction(out_dir: str | Path) -> dict | None:
    """The sweep's prediction, or None when it wrote none (or the file is not one)."""
    try:
        found = read_json(Path(out_dir) / PREDICTION_FILE, kind="cache")
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) and isinstance(found.get("rows"), list) else None


# the record's time on the prediction's clock: CPU seconds where it was calibrated on a CPU's process clock
CLOCK_FIELDS = {"wall": "wall_time_s", "cpu": "cpu_time_s"}


def measured(records: list[dict], field: str = "wall_time_s") -> dict[tuple[str, str], list[float]]:
    """(method label, task) -> the seconds (``field``) of its ok trials."""
    out: dict[tuple[str, str], list[float]] = {}
    for r in records:
        if r["status"] == "ok" and isinstance(r.get(field), (int, float)):
            out.setdefault((method_label(r["method"], r["method_options"]), r["task"]), []).append(r[field])
    return out


def prediction_table(out_dir: str | Path, records: list[dict]) -> Table | None:
    """Per method: mean predicted and measured seconds per trial over the trials that ran, and the error."""
    found = read_prediction(out_dir)
    if found is None:
        return None
    field = CLOCK_FIELDS.get(found.get("clock"), "wall_time_s")
    times = measured(records, field)
    per_method: dict[str, list[float]] = {}  # method -> [predicted seconds, measured seconds, trials]
    for row in found["rows"]:
        ran = times.get((row["method"], row["task"]), [])
        if row.get("seconds") is None or not ran:
            continue
        sums = per_method.setdefault(row["method"], [0.0, 0.0, 0])
        sums[0] += row["seconds"] * len(ran)
        sums[1] += sum(ran)
        sums[2] += len(ran)
    rows = [[m, str(n), f"{p / n:.1f}", f"{s / n:.1f}", f"{100 * (p / s - 1):+.0f}%"]
            for m, (p, s, n) in per_method.items()]
    if per_method:
        p, s = sum(v[0] for v in per_method.values()), sum(v[1] for v in per_method.values())
        rows.append(["(all trials)", str(sum(v[2] for v in per_method.values())), f"{p:.0f}", f"{s:.0f}",
                     f"{100 * (p / s - 1):+.0f}%"])
    clock = "CPU seconds of the trial's process" if field == "cpu_time_s" else "wall time"
    notes = [f"Predicted before the sweep ran ({PREDICTION_FILE}: training, generation and start-up, each measured "
             f"by --calibrate); measured: each trial's {clock} ({field}). Per method: seconds per trial; last row: "
             "the sum over every trial.",
             f"The prediction's totals: {hours(found.get('device_hours', 0))} of device time, "
             f"{hours(found.get('wall_hours', 0))} of wall on {found.get('slots', '?')} slot(s)."]
    return Table("predicted_vs_measured", "Predicted against measured seconds per trial",
                 ["method", "trials", "predicted (s)", "measured (s)", "error"], rows, notes)
