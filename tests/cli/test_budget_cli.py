"""``peftbench budget``: text and JSON, the largest batch or the peak at a given batch, a bad budget
in one line; and ``--batch`` of ``peftbench trial``."""

import json
from pathlib import Path

import pytest
import torch

from peftbench.cli.main import main, parse_batch

ARGS = ["budget", "--estimate", "--model", "tiny-t5", "--method", "adapter", "--seq-len", "32", "--target-len", "4"]


def run_json(capsys, *extra):
    assert main([*ARGS, "--json", *extra]) == 0
    return json.loads(capsys.readouterr().out)


def test_json_answers_the_largest_batch_and_says_it_is_estimated(capsys):
    out = run_json(capsys, "--budget", "0.5GB")
    assert out["estimated"] is True and out["fits"] is True
    assert out["usable_bytes"] == 475_000_000 and out["peak_bytes"] <= out["usable_bytes"]
    assert out["peak_bytes"] + out["bytes_per_example"] > out["usable_bytes"]  # one more would not fit
    assert out["peak_bytes"] == sum(out["categories"].values())
    assert out["fixed_bytes"] + out["batch_size"] * out["bytes_per_example"] == pytest.approx(out["peak_bytes"])
    assert {"parameters", "gradients", "optimizer_state", "activations", "temporaries"} <= set(out["categories"])


def test_batch_size_gives_the_peak_at_that_batch(capsys):
    small, large = run_json(capsys, "--batch-size", "10"), run_json(capsys, "--batch-size", "20")
    assert (small["batch_size"], large["batch_size"]) == (10, 20)
    assert large["peak_bytes"] - small["peak_bytes"] == pytest.approx(10 * small["bytes_per_example"], rel=0.02)


def test_text_marks_every_figure_estimated(capsys):
    assert main([*ARGS, "--budget", "1GiB"]) == 0
    out = capsys.readouterr().out
    assert "largest batch that fits:" in out and "budget 1GiB (1,073,741,824 bytes)" in out
    figures = [line for line in out.splitlines() if "batch" in line or "fixed" in line]
    assert figures and all("(estimated)" in line for line in figures)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message of a machine without a GPU")
def test_measure_without_a_gpu_is_one_clear_line(capsys):
    assert main(["budget", "--measure", "--method", "adapter", "--task", "sst2"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--measure needs a CUDA GPU" in err


def test_unknown_task_and_bad_option_are_one_line(capsys):
    assert main(["budget", "--estimate", "--method", "adapter", "--task", "nope"]) == 2
    assert "unknown task 'nope'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:  # a flag's mistake, as argparse's: before torch loads
        main(["budget", "--estimate", "--method", "adapter", "--task", "sst2", "--option", "x=1"])
    assert exit_.value.code == 2 and "has no option 'x'" in capsys.readouterr().err


EFFICIENCY = Path(__file__).parents[2] / "configs" / "efficiency.yaml"
SEVERAL = ["budget", "--estimate", "--model", "tiny-t5", "--seq-len", "32", "--target-len", "4", "--budget", "0.5GB"]


def test_several_methods_are_compared_with_full_fine_tuning_at_its_batch(capsys):
    assert main([*SEVERAL, "--method", "bitfit", "--method", "adapter", "--method", "full", "--json"]) == 0
    captured = capsys.readouterr()
    rows = json.loads(captured.out)
    assert [r["method"] for r in rows] == ["full", "bitfit", "adapter"]  # full first: the reference
    full, bitfit, adapter = rows
    assert all(r["reference_batch"] == full["batch_size"] for r in rows) and full["change_vs_full"] == 0
    # BitFit keeps no adapter activations and no weight gradients: less memory than an adapter, both less than full
    assert bitfit["change_vs_full"] < adapter["change_vs_full"] < 0
    assert bitfit["batch_size"] > adapter["batch_size"] > full["batch_size"]
    # the table's rows are the single-method answers
    assert adapter["batch_size"] == run_json(capsys, "--budget", "0.5GB")["batch_size"]
    progress = captured.err.splitlines()
    assert progress[-1].startswith("all figures estimated")
    assert sum(line.startswith("adapter ") for line in progress) == 1


def test_config_takes_the_spec_methods_with_their_options(capsys):
    args = [*SEVERAL, "--config", str(EFFICIENCY), "--method", "phm-adapter", "--method", "compacter", "--json"]
    assert main(args) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["method"], r["options"]) for r in rows] == [
        ("phm-adapter", {"reduction_factor": 32, "phm_dim": 4}), ("compacter", {"reduction_factor": 32, "phm_dim": 4})]
    assert rows[0]["model"] == "tiny-t5" and rows[0]["budget"] == "0.5GB"  # the flags override the spec
    assert "reference_batch" not in rows[0]  # no full fine-tuning to compare with
    assert main([*SEVERAL, "--config", str(EFFICIENCY), "--method", "lora"]) == 2
    assert "efficiency.yaml has no method 'lora'" in capsys.readouterr().err


def test_a_method_that_cannot_run_is_a_row_of_its_own_and_the_others_finish(capsys):
    # AdapterDrop drops adapters from the first 5 blocks: tiny T5 has 2
    assert main([*SEVERAL, "--method", "adapterdrop", "--method", "bitfit"]) == 1
    out = capsys.readouterr().out
    assert "adapterdrop" in out and "leaves none" in out
    assert any(line.startswith("bitfit ") and "error" not in line for line in out.splitlines())


def test_lengths_are_required_without_a_spec(capsys):
    assert main(["budget", "--estimate", "--method", "adapter"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--task TASK or --seq-len L" in err


def test_cli_rejects_a_bad_budget_in_one_line(capsys):
    assert main(["budget", "--method", "adapter", "--task", "sst2", "--budget", "24 gigs", "--estimate"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "budget '24 gigs'" in err


def test_trial_command_batch_option(capsys):
    assert (parse_batch(None), parse_batch("max"), parse_batch("100")) == (None, "max", 100)
    for bad in ("0", "-3", "most", "1.5"):
        with pytest.raises(SystemExit) as exit_:
            parse_batch(bad)
        assert exit_.value.code == 2  # a usage error, as argparse's own
        assert "--batch expects max or a positive integer" in capsys.readouterr().err
