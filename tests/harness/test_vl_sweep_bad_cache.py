"""A bad feature cache costs a VL sweep nothing but the recomputation: configs/vl-smoke.yaml narrowed to
its cheapest point (adapter on VQA, one epoch, the fixtures), its feature cache spoiled before the sweep.
Before issue 29 a manifest replaced by ``[1, 2]`` failed every trial with a traceback (0 records, again on
every run) and an unwritable cache failed each trial in turn."""

from pathlib import Path

import yaml

from peftbench.cli.main import main
from peftbench.harness.features import extract_features
from peftbench.harness.records import read_records
from peftbench.harness.spec import load_spec

VL_SMOKE = Path(__file__).resolve().parents[2] / "configs" / "vl-smoke.yaml"
BAD_MANIFEST = "[1, 2]"


def narrowed_vl_smoke(path: Path) -> Path:
    """The VL smoke spec at its cheapest grid point: one method, one VL task, no mixture, one epoch."""
    spec = yaml.safe_load(VL_SMOKE.read_text())
    spec.update(name="vl-bad-cache", methods=[m for m in spec["methods"] if m["name"] == "adapter"], tasks=["vqa"],
                epochs=1)
    spec.pop("mixtures")
    path.write_text(yaml.safe_dump(spec))
    return path


def manifests(cache: Path) -> list[Path]:
    """The cache entries' manifests, wherever the cache's layout keeps them (one ``<key>.json`` beside its
    tensors, or in an entry's folder beside memory-mapped shards): every JSON file not set aside."""
    return sorted(p for p in cache.rglob("*.json") if "set-aside" not in p.relative_to(cache).parts)


def test_a_vl_sweep_over_a_bad_manifest_records_every_grid_point(tmp_path, monkeypatch, capsys):
    cache = tmp_path / "features"
    monkeypatch.setenv("PEFTBENCH_FEATURES", str(cache))  # the Ray workers inherit it
    spec = narrowed_vl_smoke(tmp_path / "vl.yaml")
    extract_features(load_spec(spec).trials())  # the cache as an earlier sweep left it
    planted = manifests(cache)
    assert planted
    for path in planted:
        path.write_text(BAD_MANIFEST)

    out = tmp_path / "out"
    assert main(["sweep", str(spec), "--out", str(out)]) == 0, capsys.readouterr().err[-2000:]
    records = read_records(out)
    assert {r["trial_id"] for r in records} == {cfg.trial_id for cfg in load_spec(spec).trials()}
    assert all(r["status"] == "ok" for r in records), [r["error"] for r in records]
    assert all(p.read_text() != BAD_MANIFEST for p in manifests(cache))  # recomputed in place
    assert BAD_MANIFEST in [p.read_text() for p in cache.rglob("*.json") if "set-aside" in p.parts]  # kept aside


def test_a_vl_sweep_over_an_unwritable_cache_stops_in_one_line_before_anything_starts(tmp_path, monkeypatch,
                                                                                         capsys):
    unwritable = Path("/proc/peftbench-test/features")  # unwritable even for root
    monkeypatch.setenv("PEFTBENCH_FEATURES", str(unwritable))
    out = tmp_path / "out"
    assert main(["sweep", str(narrowed_vl_smoke(tmp_path / "vl.yaml")), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"features cache {unwritable}: cannot write it" in err[0]
    assert not out.exists()  # no folder, no record, no Ray
