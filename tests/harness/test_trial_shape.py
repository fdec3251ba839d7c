"""The trial's shape, read from the code: no branch on mixtures in the harness (a single task is a
mixture of one), a loop file whose every function fits a screen, and one builder for every record."""

from __future__ import annotations

import ast
from pathlib import Path
from types import SimpleNamespace

from peftbench.harness import progress, trial
from peftbench.harness.config import TrialConfig
from peftbench.harness.progress import SweepProgress
from peftbench.harness.records import read_records
from peftbench.harness.spec import parse_spec

ROOT = Path(__file__).resolve().parents[2]
LOOP_FILE = ROOT / "harness" / "train.py"
MAX_LINES = 40


def calls(path: Path) -> list[ast.Call]:
    return [node for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.Call)]


def name_of(node: ast.expr) -> str:
    return node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else ""


def test_no_module_of_the_harness_branches_on_a_mixture():
    found = [f"{path.name}:{call.lineno}" for path in sorted((ROOT / "harness").rglob("*.py")) for call in calls(path)
             if name_of(call.func) == "isinstance" and len(call.args) == 2
             and "Mixture" in ast.unparse(call.args[1])]
    assert found == []


def test_every_function_of_the_loop_file_fits_in_forty_lines():
    tree = ast.parse(LOOP_FILE.read_text())
    lengths = {node.name: node.end_lineno - node.lineno + 1 for node in ast.walk(tree)
               if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))}
    assert {"train", "loop", "validate", "resume"} <= set(lengths)  # the file read is the loop's
    assert {name: n for name, n in lengths.items() if n > MAX_LINES} == {}


def test_only_the_record_builder_makes_records_in_the_harness():
    """``build_record`` is the one place trial results become a record: nothing else in harness/ or
    cli/ calls the schema's constructor, and the trial and the sweep's driver call the builder."""
    makers = {"new_record", "Record"}
    elsewhere = [f"{path.relative_to(ROOT)}:{call.lineno}" for folder in ("harness", "cli")
                 for path in sorted((ROOT / folder).rglob("*.py")) if path.name != "records.py"
                 for call in calls(path) if name_of(call.func) in makers]
    assert elsewhere == []
    for module in (trial, progress):
        assert "build_record" in {name_of(c.func) for c in calls(Path(module.__file__))}, module.__name__


def test_ok_failed_and_lost_trials_get_records_from_the_builder(tmp_path, monkeypatch, tiny_trial_kwargs):
    built = []

    def spy(real):
        def build_record(cfg, **kw):
            built.append((kw["status"], kw.get("results") is not None))
            return real(cfg, **kw)
        return build_record

    monkeypatch.setattr(trial, "build_record", spy(trial.build_record))
    monkeypatch.setattr(progress, "build_record", spy(progress.build_record))
    ok = TrialConfig(method="bitfit", task="rte", learning_rate=1e-3, seed=0, train_size=8,
                     **{**tiny_trial_kwargs, "batch_size": 8})
    failed = TrialConfig(method="adapter", method_options={"reduction_factor": -4}, task="rte", learning_rate=1e-3,
                         seed=0, **tiny_trial_kwargs)
    assert trial.run_trial(ok, tmp_path / "ok")["status"] == "ok"
    assert trial.run_trial(failed, tmp_path / "failed")["status"] == "failed"
    spec = parse_spec({"name": "s", "model": "tiny-t5", "data": "fixtures", "methods": [{"name": "adapter",
                       "display": "Adapter (ours)"}], "tasks": ["sst2"], "learning_rates": [1e-3], "seeds": [0]})
    lost = SimpleNamespace(trial_id="t1", error_file=None, config={"point": {"method": "adapter", "task": "sst2",
                                                                             "learning_rate": 1e-3, "seed": 0}})
    SweepProgress(1, tmp_path / "lost", spec=spec, print_fn=lambda _: None).on_trial_error(0, [], lost)
    assert built == [("ok", True), ("failed", False), ("failed", False)]
    (record,) = read_records(tmp_path / "lost")
    assert record["status"] == "failed" and "retries spent" in record["error"]
    assert record["display_name"] == "Adapter (ours)"  # the driver's record names the method as the trial's would
