"""The report's time column: the process's CPU time when every trial ran on the CPU (other jobs on a
shared machine stretch wall time, not CPU time), wall time otherwise; the table says which."""

from __future__ import annotations

import pytest

from peftbench.reports import select, tables

from testkit.records import PROVENANCE, seeds

CPU = {**PROVENANCE, "device": "cpu (x86_64)"}


def sweep(*, device=CPU, cpu_time=True) -> list[dict]:
    """full and adapter on rte, two seeds; wall 10 s and 50 s per epoch (a loaded machine), CPU 4 s and 2 s."""
    extra = lambda s: {"cpu_time_per_epoch_s": s} if cpu_time else {}
    return [*seeds("full", "rte", 1e-3, [1, 2], [60, 61], time_s=10.0, provenance=device, **extra(4.0)),
            *seeds("adapter", "rte", 1e-3, [1, 2], [70, 71], time_s=50.0, provenance=device, **extra(2.0))]


def time_cells(table: tables.Table) -> dict[str, str]:
    column = next(i for i, h in enumerate(table.header) if "time/epoch" in h)
    return {row[0]: row[column] for row in table.rows} | {"header": table.header[column]}


def test_a_cpu_only_sweep_shows_cpu_time_and_says_so():
    summary = select.summarize(sweep())
    main = tables.main_table(summary, "full")
    assert time_cells(main) == {"header": "CPU time/epoch (s)", "full": "4.00", "adapter": "2.00"}
    assert any("CPU seconds" in note for note in main.notes)
    eff = tables.efficiency_table(summary, "full")
    assert time_cells(eff) == {"header": "CPU time/epoch (s)", "full": "4.00", "adapter": "2.00"}
    assert eff.rows[1][-1] == "-50.00%"  # Δ time on CPU seconds, not +400% on the loaded wall time
    by_setting = select.efficiency_by_setting(summary, "full").set_index("method")
    assert by_setting.at["adapter", "time_per_epoch_s"] == pytest.approx(2.0)
    assert set(by_setting["time_basis"]) == {"cpu"}


@pytest.mark.parametrize("records", [sweep(device=PROVENANCE), sweep(cpu_time=False)],
                         ids=["on a GPU", "older records without CPU time"])
def test_otherwise_the_wall_time_is_shown(records):
    main = tables.main_table(select.summarize(records), "full")
    assert time_cells(main) == {"header": "time/epoch (s)", "full": "10.00", "adapter": "50.00"}
    assert any(note.startswith("Time per epoch: wall seconds") for note in main.notes)
