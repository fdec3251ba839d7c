"""Specs a user mistypes or an attacker crafts: each refused in one line naming the key, before
anything starts, in bounded memory."""

import tracemalloc

import pytest
import yaml

from peftbench.cli.main import main
from peftbench.harness.spec import MAX_SPEC_BYTES, SpecError, load_spec, parse_spec


def spec(**changes):
    return {"model": "tiny-t5", "methods": ["adapter"], "tasks": ["sst2"], "learning_rates": [1e-3],
            "seeds": [0], **changes}


@pytest.mark.parametrize("changes, key, says", [
    ({"methods": ["bitfit", {"name": "bitfit"}]}, "methods[1]", "bitfit is already in the list"),
    ({"learning_rates": [1, 1.0]}, "learning_rates[1]", "1.0 is already in the list"),
    ({"tasks": ["sst2", "sst2"]}, "tasks[1]", "sst2 is already in the list"),
    ({"learning_rates": [float("nan")]}, "learning_rates[0]", "positive finite number, got nan"),
    ({"learning_rates": [float("inf")]}, "learning_rates[0]", "positive finite number, got inf"),
    ({"seeds": [2**64]}, "seeds[0]", "up to 4294967295, got 18446744073709551616"),
    ({"seeds": [-1]}, "seeds[0]", "non-negative integer"),
    ({"model": "/no/such/model"}, "model", "neither a folder nor a hub id"),
    ({"model": "no-such-org/no-such-model"}, "model", "not in the local hub cache"),  # tests run offline
    ({"name": "../../x"}, "name", "not a path"),
    ({"name": ""}, "name", "not a path"),
    ({"cpus_per_trial": 0}, "cpus_per_trial", "positive integer"),
    ({"seeds": list(range(20_000))}, "(grid)", "20000 trials; a spec runs at most 10000"),
])
def test_a_bad_value_is_one_line_naming_its_key(changes, key, says):
    with pytest.raises(SpecError) as err:
        parse_spec(spec(**changes), source="x.yaml")
    message = str(err.value)
    assert message.startswith(f"x.yaml: {key}: ") and says in message and "\n" not in message, message


def test_a_model_folder_needs_its_config(tmp_path):
    with pytest.raises(SpecError, match=r"has no config\.json"):
        parse_spec(spec(model=str(tmp_path)))
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(SpecError, match="has no weights"):  # issue 29: a folder without weights fails every trial
        parse_spec(spec(model=str(tmp_path)))
    (tmp_path / "model.safetensors").write_bytes(b"")
    assert parse_spec(spec(model=str(tmp_path))).settings["model"] == str(tmp_path)


def billion_laughs(levels: int = 9) -> str:
    """Each level is a list of nine aliases of the one before: 9**levels strings from ~600 bytes."""
    lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels):
        lines.append(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def test_an_alias_bomb_is_refused_fast_in_bounded_memory(tmp_path):
    path = tmp_path / "bomb.yaml"
    path.write_text(billion_laughs())
    assert len(path.read_bytes()) < 700
    tracemalloc.start()
    with pytest.raises(SpecError, match="aliases expand to more than 100000 YAML nodes"):
        load_spec(path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 5_000_000, peak  # refused while counting nodes, never expanded


@pytest.mark.parametrize("content, says", [
    ("l: &a [*a]\n", "a YAML alias refers to a node that contains it"),
    ("[" * 5000 + "]" * 5000, "nested more than 20 levels deep"),
    (b"name: caf\xe9\n", "not UTF-8 text (byte 9)"),
    (b"seeds: [" + b"1, " * (MAX_SPEC_BYTES // 3) + b"1]", f"bytes; a spec is at most {MAX_SPEC_BYTES}"),
])
def test_unreadable_spec_files_are_one_line(tmp_path, content, says):
    path = tmp_path / "bad.yaml"
    (path.write_bytes if isinstance(content, bytes) else path.write_text)(content)
    with pytest.raises(SpecError) as err:
        load_spec(path)
    assert str(err.value) == f"{path}: cannot read the spec: {str(err.value).split(': ', 2)[2]}"
    assert says in str(err.value)


def test_the_file_name_is_a_safe_default_name(tmp_path):
    path = tmp_path / "my sweep (v2).yaml"
    path.write_text(yaml.safe_dump(spec()))
    assert load_spec(path).name == "my-sweep--v2-"


def test_cli_refuses_a_nan_learning_rate_before_ray_starts(tmp_path, capsys):
    path = tmp_path / "nan.yaml"
    path.write_text(yaml.safe_dump(spec()).replace("0.001", ".nan"))
    assert main(["sweep", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"peftbench: {path}: learning_rates[0]: expected a positive finite number, got nan"]
    assert not (tmp_path / "out").exists()
