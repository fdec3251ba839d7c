"""``peftbench compare``: several sweep folders side by side, one column group per folder."""

from peftbench.cli.main import main

from testkit.records import record, write_all


def test_compare_puts_two_sweeps_side_by_side(tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    write_all(a, [record("lora", "rte", 1e-3, s, val=60.0, test=50.0 + s) for s in (0, 1)])
    write_all(b, [record("lora", "rte", 1e-3, s, val=60.0, test=70.0 + s) for s in (0, 1)]
                  + [record("compacter", "rte", 3e-3, 0, val=55.0, test=40.0)])
    assert main(["compare", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if line.startswith("| model"))
    assert header.endswith("| a: test | a: lr | b: test | b: lr |")
    lora = next(line for line in out.splitlines() if "| lora |" in line)
    assert "50.50 ± 0.71" in lora and "**70.50 ± 0.71**" in lora
    compacter = next(line for line in out.splitlines() if "| compacter |" in line)
    assert "| — | — | 40.00 ± —" in compacter
    assert main(["compare", str(a)]) == 2
