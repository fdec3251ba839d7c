"""The paper's sweep configs: Table 1 (GLUE), Table 2 (SuperGLUE), §5.6 (low resource)."""

from pathlib import Path

import pytest
import yaml

from peftbench.cli.main import main
from peftbench.harness.spec import parse_spec
from peftbench.methods import get_method
from peftbench.tasks import get_task

CONFIGS = Path(__file__).parents[2] / "configs"
PAPER_METHODS = ["full", "adapter", "pfeiffer-adapter", "adapterdrop", "adapter-lowrank", "prompt-tuning-r",
                 "prompt-tuning-t", "intrinsic-said", "bitfit", "phm-adapter", "compacter", "compacter++"]
PAPER_LRS = [3e-1, 3e-2, 3e-3, 3e-4, 3e-5]


def raw(name: str) -> dict:
    return yaml.safe_load((CONFIGS / name).read_text())


def unregistered(methods: list[str]) -> list[str]:
    missing = []
    for m in methods:
        try:
            get_method(m)
        except KeyError:
            missing.append(m)
    return missing


def needs_methods(methods):
    missing = unregistered(methods)
    return pytest.mark.skipif(bool(missing), reason=f"methods not registered on this branch: {', '.join(missing)}")


@pytest.mark.parametrize(("name", "tasks", "batch"), [
    ("glue-t5-base.yaml", ["cola", "sst2", "mrpc", "qqp", "stsb", "mnli", "qnli", "rte"], {"*": 100}),
    ("superglue-t5-base.yaml", ["boolq", "cb", "copa", "multirc", "record", "wic"], {"*": 32, "record": 16}),
])
def test_tables_sweep_every_method_task_and_rate_with_the_papers_epochs(name, tasks, batch):
    spec_raw = raw(name)
    assert spec_raw["methods"] == PAPER_METHODS and spec_raw["tasks"] == tasks
    assert spec_raw["learning_rates"] == PAPER_LRS
    spec = parse_spec({**spec_raw, "methods": ["full", "adapter"]})  # the two methods every branch has
    assert len(spec.trials()) == 2 * len(tasks) * 5 * len(spec.seeds)
    for trial in spec.trials():
        assert trial.epochs == get_task(trial.task).epochs  # 20 on the small sets, 3 on the large
        assert trial.batch_size == batch.get(trial.task, batch["*"])


def test_low_resource_subsamples_glue_with_the_papers_epochs():
    spec = parse_spec({**raw("low-resource.yaml"), "methods": ["full", "adapter"]})
    assert spec.train_size == (100, 500, 1000, 2000, 4000)
    assert {(t.train_size, t.epochs) for t in spec.trials()} == {
        (100, 1000), (500, 200), (1000, 100), (2000, 50), (4000, 25)}
    assert {t.batch_size for t in spec.trials()} == {40}
    assert {t.subsample for t in spec.trials()} == {"seed-42"}  # the authors' subsets, the same for every seed


def test_dry_run_of_a_table_variant(tmp_path, capsys):
    variant = tmp_path / "glue.yaml"
    variant.write_text(yaml.safe_dump({**raw("glue-t5-base.yaml"), "methods": ["full", "adapter"]}, sort_keys=False))
    assert main(["sweep", str(variant), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "80 trials = 2 methods × 8 tasks × 5 learning rates × 1 seeds" in out
    assert "epochs: cola: 20, sst2: 3" in out


@needs_methods(PAPER_METHODS)
@pytest.mark.parametrize(("name", "tasks"), [("glue-t5-base.yaml", 8), ("superglue-t5-base.yaml", 6)])
def test_dry_run_of_the_real_tables(name, tasks, capsys):
    assert main(["sweep", str(CONFIGS / name), "--dry-run"]) == 0
    seeds = len(raw(name)["seeds"])
    assert f"{12 * tasks * 5 * seeds} trials = 12 methods × {tasks} tasks × 5 learning rates × {seeds} seeds" in (
        capsys.readouterr().out)


@needs_methods(["full", "compacter++"])
def test_dry_run_of_the_real_low_resource_config(capsys):
    assert main(["sweep", str(CONFIGS / "low-resource.yaml"), "--dry-run"]) == 0
    assert "400 trials = 2 methods × 8 tasks × 5 learning rates × 1 seeds × 5 train sizes" in capsys.readouterr().out


def test_smoke_covers_a_two_metric_glue_and_superglue_task():
    spec = parse_spec(raw("smoke.yaml"))
    assert spec.settings["data"] == "fixtures" and "sst2" in spec.tasks  # sst2: the fixture full fine-tuning learns
    two_metric = {t: get_task(t).hub_path for t in spec.tasks if len(get_task(t).metric_names) >= 2}
    assert set(two_metric.values()) == {"nyu-mll/glue", "aps/super_glue"}


def test_the_smokes_sst2_trials_are_those_its_bar_was_measured_on_and_mrpc_cb_train_shorter():
    trials = parse_spec(raw("smoke.yaml")).trials()
    # ids from the smoke run at 414ce4e (every task 6 epochs): the same SST-2 trials, the same scores
    assert {"adapter-sst2-lr0.03-s0-4ebafdff", "full-sst2-lr0.003-s0-864d35be"} <= {t.trial_id for t in trials}
    assert {t.epochs for t in trials if t.task == "sst2"} == {6}
    assert {t.epochs for t in trials if t.task != "sst2"} == {1}
