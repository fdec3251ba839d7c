"""Command-line habits: names checked before anything loads, methods listed from their fields, YAML
numbers as people write them."""

import json
import subprocess
import sys

import pytest

from peftbench.cli.main import main
from peftbench.harness.spec import SpecError, load_spec, parse_spec


def test_a_typod_method_in_trial_exits_2_at_once_without_the_hub(tmp_path):
    """Refused before anything heavy loads: no torch, no transformers, no hub client (what made it slow)."""
    probe = ("import sys, runpy; sys.argv = ['peftbench', *sys.argv[1:]]\n"
             "try:\n    runpy.run_module('peftbench', run_name='__main__')\n"
             "except SystemExit as exc:\n    code = exc.code\n"
             "heavy = sorted(m for m in ('torch', 'transformers', 'huggingface_hub', 'ray') if m in sys.modules)\n"
             "print('HEAVY', heavy, 'EXIT', code)")
    done = subprocess.run([sys.executable, "-c", probe, "trial", "--method", "lroa", "--task", "sst2",
                           "--lr", "1e-3", "--out", str(tmp_path)], check=False, capture_output=True, text=True,
                          env={"HF_HUB_OFFLINE": "0", "PATH": ""}, timeout=120)
    assert done.stdout.strip() == "HEAVY [] EXIT 2"
    assert done.stderr.startswith("peftbench: --method: unknown method 'lroa' (known: full,")
    assert done.stderr.count("\n") == 1
    assert not (tmp_path / "results").exists()  # no failed record


@pytest.mark.parametrize(("argv", "message"), [
    (["--method", "lora", "--task", "sst3"], "--task: unknown task 'sst3'"),
    (["--method", "lora", "--option", "rank=4"], "--option: peft LoraConfig has no option 'rank'"),
    (["--method", "adapter", "--model", "./no-such-model"],
     "--model: ./no-such-model is neither a folder nor a hub id"),
])
def test_every_unknown_name_in_trial_is_one_line_and_exit_2(argv, message, tmp_path, capsys):
    argv = ["trial", "--task", "sst2", "--lr", "1e-3", "--out", str(tmp_path), *argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "results").exists()


def test_yaml_numbers_like_1e_3_are_numbers(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("model: tiny-t5\nmethods: [lora]\ntasks: [sst2]\nlearning_rates: [1e-3, 3E-4, 1.0e-2]\n"
                    "seeds: [0]\nweight_decay: 1e-2\n")
    spec = load_spec(path)
    assert spec.learning_rates == (1e-3, 3e-4, 1e-2)
    assert spec.trials()[0].weight_decay == 1e-2
    with pytest.raises(SpecError, match=r"learning_rates\[0\]: expected a positive finite number, got '1e-3x'"):
        parse_spec({"model": "tiny-t5", "methods": ["lora"], "tasks": ["sst2"], "learning_rates": ["1e-3x"],
                    "seeds": [0]})


def test_methods_lists_options_defaults_and_help_from_the_fields(capsys):
    assert main(["methods", "compacter", "lora", "--json"]) == 0
    rows = {r["method"]: r for r in json.loads(capsys.readouterr().out)}
    compacter = {o["name"]: o for o in rows["compacter"]["options"]}
    assert compacter["phm_dim"]["default"] == 4 and "Kronecker" in compacter["phm_dim"]["help"]
    assert rows["compacter"]["help"].startswith("Compacter:")
    lora = {o["name"]: o for o in rows["lora"]["options"]}
    assert lora["r"]["default"] == 8 and lora["lora_alpha"]["help"]  # peft's own defaults and help
    assert "peft_type" not in lora
    assert main(["methods", "nope"]) == 2

