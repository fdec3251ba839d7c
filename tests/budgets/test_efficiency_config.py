"""configs/efficiency.yaml is Table 3's protocol; the parts registered on this branch validate."""

from pathlib import Path

import yaml

from peftbench.harness.spec import parse_spec
from peftbench.methods import method_names
from peftbench.tasks import task_names

CONFIG = Path(__file__).parents[2] / "configs" / "efficiency.yaml"
TABLE_3 = ["full", "adapter", "pfeiffer-adapter", "adapterdrop", "adapter-lowrank", "prompt-tuning-r",
           "prompt-tuning-t", "intrinsic-said", "bitfit", "phm-adapter", "compacter", "compacter++"]


def test_efficiency_sweep_is_table_3():
    raw = yaml.safe_load(CONFIG.read_text())
    names = [m if isinstance(m, str) else m["name"] for m in raw["methods"]]
    assert names == TABLE_3
    options = {m["name"]: m["options"] for m in raw["methods"] if isinstance(m, dict)}
    assert options["adapter"]["reduction_factor"] * 24 == 768  # adapter size 24 on T5-base
    assert options["prompt-tuning-r"]["prompt_length"] == options["prompt-tuning-t"]["prompt_length"] == 100
    assert options["intrinsic-said"]["said_dim"] == 20_000
    assert {options[m]["phm_dim"] for m in ("phm-adapter", "compacter", "compacter++")} == {4}
    # What this branch knows validates; the rest waits for its methods and tasks.
    registered = [m for m, name in zip(raw["methods"], names, strict=True) if name in method_names()]
    known = {**raw, "methods": registered, "tasks": [t for t in raw["tasks"] if t in task_names()] or ["sst2"]}
    spec = parse_spec(known, source=str(CONFIG))
    trial = spec.trials()[0]
    assert (trial.model, trial.batch, trial.budget, trial.epochs) == ("t5-base", "max", "24GB", 1)
