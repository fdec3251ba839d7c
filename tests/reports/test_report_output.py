"""The report's tables and files in every format, from synthetic records written to a sweep folder."""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from peftbench.cli.main import main
from peftbench.reports import render, select, tables
from peftbench.reports.summary import SUMMARY_COLUMNS, report

from testkit.records import record, seeds, two_method_sweep, write_all

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def sweep(tmp_path):
    return write_all(tmp_path / "sweep", two_method_sweep())


def table_rows(markdown: str, title: str) -> dict[str, list[str]]:
    """The rows of one markdown table, by first cell."""
    section = markdown.split(f"## {title}", 1)[1].split("\n## ", 1)[0]
    rows = [line.strip("|").split(" | ") for line in section.splitlines() if line.startswith("| ")]
    return {r[0].strip(): [c.strip() for c in r[1:]] for r in rows[1:]}


def test_default_report_is_the_markdown_table(sweep):
    text = report(sweep)
    main_rows = table_rows(text, "Results per task")
    # columns: sst2, rte, average, trainable %, peak memory (MB), time/epoch (s); each column's best in
    # bold (rte's 70.00 is a tie: none); adapter/rte's records count 1 invalid output, not the outputs scored
    assert main_rows["full"] == ["71.00 ± 1.00", "70.00 ± 10.00", "70.50", "100.000", "1200", "15.00"]
    assert main_rows["adapter"] == ["**82.00 ± 2.00\\***", "70.00 ± 7.07 (n=2, 1 invalid)", "**76.00**",
                                    "**0.500**", "**900**", "**7.50**"]
    assert list(main_rows) == ["full", "adapter"]  # the baseline first
    efficiency = table_rows(text, "Efficiency")
    assert efficiency["adapter"] == ["**0.500**", "**900**", "-25.00%", "**7.50**", "-50.00%"]
    assert efficiency["full"][2] == "—"
    assert table_rows(text, "Selected learning rates")["adapter"] == ["0.003", "0.003"]
    assert "adapter-rte-lr0.003-s2-nNone" in table_rows(text, "Failed trials (1)")
    assert "Commit: abc1234." in text and "Hardware: NVIDIA H100" in text  # provenance at the foot
    assert "measured by torch.cuda.max_memory_allocated" in text


def test_csv_keeps_its_columns_and_numbers(sweep):
    written = [f"wrote {sweep}/{name}.csv" for name in ("summary", "efficiency", "failures")]
    assert report(sweep, "csv").splitlines() == written
    with open(sweep / "summary.csv") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0])[: len(SUMMARY_COLUMNS)] == SUMMARY_COLUMNS
    by_cell = {(r["method"], r["task"]): r for r in rows}
    assert float(by_cell["adapter", "sst2"]["test_score_mean"]) == pytest.approx(82.0)
    assert by_cell["adapter", "sst2"]["significant"] == "True"
    assert by_cell["adapter", "rte"]["n_failed"] == "1"
    with open(sweep / "failures.csv") as f:
        assert [r["trial_id"] for r in csv.DictReader(f)] == ["adapter-rte-lr0.003-s2-nNone"]


def test_latex_is_booktabs_and_escaped(sweep, tmp_path):
    out = tmp_path / "paper" / "tables.tex"
    assert report(sweep, "latex", out=out).splitlines()[-1] == f"wrote {out}"
    tex = out.read_text()
    assert tex.count(r"\toprule") == tex.count(r"\bottomrule") == tex.count(r"\begin{tabular}") >= 5
    assert r"82.00 $\pm$ 2.00$^{*}$" in tex
    assert r"trainable \% per task" in tex and "p $<$ 0.05" in tex
    assert r"\includegraphics[width=\linewidth]{fig2_score_vs_params.png}" in tex
    assert render.tex("full[zero_stage=2] & 50% #1 ~x^2 {y} \\ ±") == (
        r"full[zero\_stage=2] \& 50\% \#1 \textasciitilde{}x\textasciicircum{}2 \{y\} \textbackslash{} $\pm$"
    )


def test_html_is_self_contained_and_figures_written(sweep, tmp_path):
    out = tmp_path / "site"
    report(sweep, "html", out=out)
    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 2  # Figure 2 and the efficiency bars (no train sizes)
    assert not re.search(r'(src|href)="(?!data:)', page)  # nothing fetched from elsewhere
    assert "<th>sst2</th>" in page and "82.00 ±\u00a02.00*" in page and "Provenance" in page
    for stem in ("fig2_score_vs_params", "efficiency_vs_full"):
        assert (out / f"{stem}.png").read_bytes()[:4] == b"\x89PNG"
        assert "<svg" in (out / f"{stem}.svg").read_text()[:1000]


def test_low_resource_table_and_figure(tmp_path):
    records = [*seeds("full", "rte", 1e-3, [1, 2, 3], [50, 51, 52], train_size=100),
               *seeds("full", "rte", 1e-3, [1, 2], [70, 80], train_size=1000),
               *seeds("adapter", "rte", 1e-3, [1, 2, 3], [40, 40, 40], train_size=100),
               *seeds("full", "rte", 1e-3, [1, 2], [90, 90])]
    folder = write_all(tmp_path / "low", records)
    text = report(folder, "all", out=tmp_path / "out")
    rows = table_rows(text, "Low-resource: rte")
    # columns 100, 1000, full; two seeds where the usual is three; [40]*3 vs [50, 51, 52]: t = −19, df = 2
    assert rows["full"] == ["**51.00 ± 1.00**", "75.00 ± 7.07 (n=2)", "90.00 ± 0.00 (n=2)"]  # 1000, full: alone
    assert rows["adapter"] == ["40.00 ± 0.00*", "—", "—"]
    assert (tmp_path / "out" / "fig4_low_resource.svg").exists()
    assert table_rows(text, "Selected learning rates")["adapter"] == ["0.001", "—", "—"]


def test_budget_in_provenance_and_failures_only(tmp_path):
    folder = write_all(tmp_path / "f", [record("full", "rte", 1e-3, 0, val=None, test=None, status="failed",
                                               budget="24GB")])
    text = report(folder)
    assert "Memory budget: 24GB." in text and "full-rte-lr0.001-s0-nNone" in text


def test_significance_mark_is_explained_only_with_a_baseline():
    summary = select.summarize(seeds("adapter", "rte", 1e-3, [1, 2], [1, 2]))
    table = tables.main_table(summary, None)
    assert not any(tables.SIGNIFICANT in n for n in table.notes)
    assert tables.comparison_table(summary, None) is None


def test_reports_never_import_torch(sweep, tmp_path):
    code = (
        "import sys, peftbench.reports.summary, peftbench.reports.select, peftbench.reports.tables\n"
        "import peftbench.reports.render, peftbench.reports.plots\n"
        f"peftbench.reports.summary.report({str(sweep)!r}, 'all', out={str(tmp_path / 'x')!r})\n"
        "print(__import__('json').dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('torch', 'transformers', 'ray', 'deepspeed', 'datasets'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.splitlines()[-1]) == []


def test_summary_json_holds_every_cell_of_every_table_and_the_numbers(sweep, tmp_path):
    from peftbench.reports.summary import build

    assert report(sweep, "json", out=tmp_path / "j") == f"wrote {tmp_path / 'j' / 'summary.json'}"
    document = json.loads((tmp_path / "j" / "summary.json").read_text())
    shown = build(sweep)
    assert [t["title"] for t in document["tables"]] == [t.title for t in shown.tables]
    assert [t["rows"] for t in document["tables"]] == [t.rows for t in shown.tables]
    assert [t["header"] for t in document["tables"]] == [t.header for t in shown.tables]
    cells = {(c["method"], c["task"]): c for c in document["summary"]}
    assert cells[("full", "sst2")]["test_score_mean"] == pytest.approx(71.0)  # 70, 71, 72 at 3e-4
    assert cells[("full", "sst2")]["learning_rate"] == 3e-4
    assert [f["trial_id"] for f in document["failures"]] == ["adapter-rte-lr0.003-s2-nNone"]
    assert main(["report", str(sweep), "--format", "all", "--out", str(tmp_path / "all")]) == 0
    assert (tmp_path / "all" / "summary.json").is_file()


def test_a_trial_lost_before_its_data_is_not_called_an_old_record(tmp_path):
    """A trial whose worker died before it loaded data has a failed record without a data_source
    (the driver writes it); the report must not blame old records for that, while an ok record
    without one is still named."""
    lost = record("adapter", "sst2", 1e-3, 1, val=None, test=None, status="failed")
    ok = record("adapter", "sst2", 1e-3, 0, val=80.0, test=79.0, data_source="fixtures")
    write_all(tmp_path / "a", [ok, lost])
    text = report(tmp_path / "a")
    assert "do not say which data" not in text
    assert "FIXTURES" in text
    write_all(tmp_path / "b", [record("adapter", "sst2", 1e-3, 0, val=80.0, test=79.0), lost])
    assert "1 of 2 records do not say which data" in report(tmp_path / "b")


def test_summary_json_is_never_written_through_a_planted_link(sweep, tmp_path, capsys):
    """summary.json goes through peftbench.files like every other write: a link planted at its name is
    refused in one line and the file it points at is left as it was."""
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me\n")
    (tmp_path / "j").mkdir()
    (tmp_path / "j" / "summary.json").symlink_to(victim)
    assert main(["report", str(sweep), "--format", "json", "--out", str(tmp_path / "j")]) != 0
    assert victim.read_text() == "keep me\n"
    assert "is a symlink" in capsys.readouterr().err
