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


def test_compare_names_the_settings_in_which_the_folders_differ(tmp_path, capsys):
    config = {"epochs": 3, "warmup_steps": 500, "weight_decay": 0.0, "budget": "24GB", "seed": 0}
    a, b = tmp_path / "a", tmp_path / "b"
    write_all(a, [record("lora", "rte", 1e-3, 0, val=60.0, test=50.0, config=config)])
    write_all(b, [record("lora", "rte", 1e-3, 0, val=60.0, test=70.0, config={**config, "warmup_steps": 0}),
                  record("lora", "rte", 1e-3, 1, val=60.0, test=70.0,
                         config={**config, "warmup_steps": 0, "weight_decay": 0.1, "seed": 1})])
    assert main(["compare", str(a), str(b)]) == 0
    notes = [line for line in capsys.readouterr().out.splitlines() if line.startswith("- Settings")]
    # the seed is the grid's, not a setting; budget and epochs agree
    assert notes == ["- Settings that differ: warmup_steps: a 500; b 0",
                     "- Settings that differ: weight_decay: a 0; b 0, 0.1"]


def test_compare_says_when_the_settings_are_the_same(tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    write_all(a, [record("lora", "rte", 1e-3, 0, val=60.0, test=50.0, config={"epochs": 3})])
    write_all(b, [record("lora", "rte", 1e-3, 0, val=60.0, test=70.0, config={"epochs": 3})])
    assert main(["compare", str(a), str(b)]) == 0
    assert "- The folders' settings are the same." in capsys.readouterr().out
