"""What the report reads and from where: files that are not records set aside and named, record
text that cannot inject HTML, and cells that never pool models or fixtures with hub data."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest

from peftbench.harness.records import RecordError, read_records
from peftbench.reports import select, tables
from peftbench.reports.summary import report

from testkit.records import hub, record, seeds, two_method_sweep, write_all, write_bad


def test_read_records_names_the_bad_file_or_sets_it_aside(tmp_path):
    folder = write_all(tmp_path / "sweep", two_method_sweep())
    good = json.loads(next((folder / "results").glob("*.json")).read_text())
    bad = {
        "a-truncated.json": '{"schema": "peftbench.result/1", "trial',
        "b-schema.json": json.dumps({**good, "schema": "peftbench.result/0"}),
        "c-missing.json": json.dumps({k: v for k, v in good.items() if k != "test_score"}),
        "d-array.json": "[1, 2]",
    }
    for name, text in bad.items():
        write_bad(folder, name, text)
    with pytest.raises(RecordError, match=re.escape("a-truncated.json: not JSON (line 1)")):
        read_records(folder)
    seen = []
    records = read_records(folder, on_bad=lambda path, reason: seen.append((path.name, reason)))
    assert len(records) == len(two_method_sweep())
    assert seen == [("a-truncated.json", "not JSON (line 1)"),
                    ("b-schema.json", "not a peftbench.result/1 record: schema='peftbench.result/0'"),
                    ("c-missing.json", f"record {good['trial_id']!r} lacks keys: test_score"),
                    ("d-array.json", "not a JSON object")]


def test_report_counts_failed_trials_at_its_top(tmp_path):
    text = report(write_all(tmp_path / "sweep", two_method_sweep()))
    assert text.splitlines()[0] == "**17 of 18 trials ok, 1 failed (listed under Failed trials).**"


def test_record_text_cannot_inject_html_into_report_md(tmp_path):
    evil = "<script>alert(1)</script>"
    records = [*seeds("full", "rte", 1e-3, [1, 2], [50, 60]),
               record("full", "rte", 1e-3, 5, val=None, test=None, status="failed",
                      error=f"RuntimeError: {evil}\nsecond line | pipe"),
               *seeds("adapter", "rte", 1e-3, [1, 2], [50, 60], display_name="<img src=x onerror=alert(2)>")]
    folder = write_all(tmp_path / "sweep", records)
    report(folder, "all", out=tmp_path / "out")
    for name in ("report.md", "report.html"):
        page = (tmp_path / "out" / name).read_text()
        assert "<script" not in page and "<img src=x" not in page, name
        assert "&lt;script>alert(1)&lt;/script>" in page or "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    failure_row = next(line for line in (tmp_path / "out" / "report.md").read_text().splitlines()
                       if "RuntimeError" in line)
    assert failure_row.endswith("second line \\| pipe |")  # one table row: no line break, | escaped


def two_models_and_two_sources() -> list[dict]:
    return [*seeds("full", "rte", 1e-3, [1, 2], [60, 62], model="t5-small", data_source=hub("rte")),
            *seeds("adapter", "rte", 1e-3, [1, 2], [80, 82], model="t5-small", data_source=hub("rte")),
            *seeds("adapter", "rte", 1e-3, [1, 2], [40, 42], model="t5-base", data_source=hub("rte")),
            *seeds("adapter", "rte", 1e-3, [1, 2], [90, 92], model="t5-small", data_source="fixtures")]


def test_models_and_data_sources_are_separate_rows(tmp_path):
    summary = select.summarize(two_models_and_two_sources())
    main_table = tables.main_table(summary, "full")
    assert main_table.header[:4] == ["model", "data", "method", "rte"]
    rows = {tuple(r[:3]): r[3] for r in main_table.rows}
    assert rows == {("t5-base", "hub", "adapter"): "41.00 ± 1.41",
                    ("t5-small", "fixtures", "adapter"): "91.00 ± 1.41",
                    ("t5-small", "hub", "full"): "61.00 ± 1.41",
                    ("t5-small", "hub", "adapter"): "81.00 ± 1.41*"}
    # compared only with full of the same model and data: t5-base and fixtures have no baseline
    delta = summary.set_index(["model", "data", "method"])["delta_vs_baseline"]
    assert delta["t5-small", "hub", "adapter"] == pytest.approx(20.0)
    assert pd.isna(delta["t5-base", "hub", "adapter"]) and pd.isna(delta["t5-small", "fixtures", "adapter"])
    text = report(write_all(tmp_path / "sweep", two_models_and_two_sources()))
    assert "2 of 8 records trained on offline FIXTURES" in text.split("## ", 1)[0]


def test_a_fixtures_report_says_so_at_its_top(tmp_path):
    folder = write_all(tmp_path / "sweep", [*seeds("full", "rte", 1e-3, [1, 2], [50, 60], data_source="fixtures")])
    first = report(folder).splitlines()[2]
    assert first.startswith("**Made from offline FIXTURES") and "say nothing about the methods" in first
    page = tmp_path / "site"
    report(folder, "html", out=page)
    html = (page / "report.html").read_text()
    assert html.index("Made from offline FIXTURES") < html.index("<table>")


def test_pooling_two_settings_is_refused():
    summary = select.summarize(two_models_and_two_sources())
    with pytest.raises(ValueError, match="cannot be pooled: t5-base on hub, t5-small on fixtures"):
        select.averages(summary[summary["method"] == "adapter"])
    with pytest.raises(ValueError, match="cannot be pooled"):
        select.efficiency(summary, "full")
