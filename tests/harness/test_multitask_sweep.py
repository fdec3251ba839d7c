"""The multi-task smoke sweep, for real: Ray Tune runs configs/smoke-multitask.yaml (three methods on
RTE and SST-2 one task at a time and on their mixture, tiny T5, offline fixtures) and one report
holds the single-task tables, the mixture's table and the two side by side, with the records' numbers."""

from pathlib import Path

from peftbench.cli.main import main
from peftbench.harness.records import read_records
from peftbench.harness.spec import load_spec
from peftbench.methods import method_label
from peftbench.reports.summary import report

from testkit.sweeps import table_rows

SPEC = Path(__file__).resolve().parents[2] / "configs" / "smoke-multitask.yaml"



def numbers(row: list[str]) -> list[str]:
    """Table cells without the invalid shares beside their scores (``0.00 ± — (100% invalid)``)."""
    return [" / ".join(part.split(" (")[0] for part in cell.split(" / ")) for cell in row]

def test_a_ray_sweep_over_tasks_and_a_mixture_reports_both_tables(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["sweep", str(SPEC), "--out", str(out)]) == 0
    records = read_records(out)
    assert {r["trial_id"] for r in records} == {cfg.trial_id for cfg in load_spec(SPEC).trials()}
    assert all(r["status"] == "ok" for r in records), [r["error"] for r in records]
    mixed = {method_label(r["method"], r["method_options"]): r for r in records if r["mixture"]}
    single = {(method_label(r["method"], r["method_options"]), r["task"]): r for r in records if not r.get("mixture")}
    labels = [m.label for m in load_spec(SPEC).methods]
    assert sorted(mixed) == sorted(labels) and len(single) == 2 * len(labels)
    assert all(set(r["members"]) == {"rte", "sst2"} and r["task"] == "rte-sst2" for r in mixed.values())
    assert "## Multi-task: rte-sst2" in capsys.readouterr().out  # the sweep's own closing report

    text = report(out)
    header, rows = table_rows(text, "Multi-task: rte-sst2")
    assert header == ["method", "rte", "sst2", "average", "trainable % (whole mixture)", "peak memory (MB)",
                      "time/epoch (s)"]
    for method, r in mixed.items():
        rte, sst2 = (r["members"][t]["test_score"] for t in ("rte", "sst2"))
        assert numbers(rows[method][:4]) == [f"{rte:.2f} ± —", f"{sst2:.2f} ± —", f"{r['test_score']:.2f}",
                                    f"{r['trainable_pct']:.3f}"]
        assert rows[method][4:] == [f"{r['peak_memory_bytes'] / 1e6:.0f}", f"{r['time_per_epoch_s']:.2f}"]

    header, rows = table_rows(text, "Multi-task rte-sst2 against one task at a time")
    assert header[2:4] == ["rte single / mixture", "sst2 single / mixture"]
    for method, r in mixed.items():
        alone = [single[(method, t)] for t in ("rte", "sst2")]
        assert numbers(rows[method][1:3]) == [f"{a['test_score']:.2f} / {r['members'][a['task']]['test_score']:.2f}"
                                     for a in alone]
        assert rows[method][-2:] == [f"{sum(a['trainable_pct'] for a in alone):.3f}", f"{r['trainable_pct']:.3f}"]

    _, main_rows = table_rows(text, "Results per task (Table 1 / Table 2 layout)")
    assert set(main_rows) == set(labels)  # the mixture is no column of the paper's table
