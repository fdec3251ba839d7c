"""``peftbench report``: every format written to a folder, an empty folder refused in one line, a bad
record named in one line while the good ones are reported."""

from peftbench.cli.main import main

from testkit.records import two_method_sweep, write_all, write_bad


def test_cli_report_formats(tmp_path, capsys):
    sweep = write_all(tmp_path / "sweep", two_method_sweep())
    assert main(["report", str(sweep), "--format", "all", "--out", str(tmp_path / "all")]) == 0
    written = {p.name for p in (tmp_path / "all").iterdir()}
    assert {"report.md", "report.tex", "report.html", "summary.csv", "fig2_score_vs_params.png",
            "fig2_score_vs_params.svg"} <= written
    assert "![fig2_score_vs_params](fig2_score_vs_params.png)" in (tmp_path / "all" / "report.md").read_text()
    assert main(["report", str(tmp_path / "empty")]) == 2
    assert "no result records" in capsys.readouterr().err


def test_cli_report_names_a_bad_record_in_one_line_and_goes_on(tmp_path, capsys):
    folder = write_all(tmp_path / "sweep", two_method_sweep())
    path = write_bad(folder, "foo.json", '{"schema": ')
    assert main(["report", str(folder)]) == 0
    out = capsys.readouterr().out
    assert f"**skipped {path}: not JSON (line 1)**" in out.splitlines()
    assert "| adapter |" in out  # the good records are still reported
