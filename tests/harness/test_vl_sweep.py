"""The VL smoke sweep, for real: Ray Tune runs configs/vl-smoke.yaml (2 methods × the 4 VL tasks one at a
time and as one mixture, tiny T5 + tiny CLIP, offline fixtures). The sweep's feature step computes every
task's image features before the first trial, the trials only read them, and the report holds the VL
tasks under VL-Adapter's metric names with the records' numbers."""

import math
from pathlib import Path

import yaml

from peftbench.cli.main import main
from peftbench.harness.records import read_records
from peftbench.methods import method_label
from peftbench.reports.summary import report

from testkit.sweeps import sweep_features_first, table_rows

SPEC = Path(__file__).resolve().parents[2] / "configs" / "vl-smoke.yaml"
VL = ("vqa", "gqa", "nlvr2", "coco-caption")
HEADER = ["method", "VQAv2 VQA accuracy", "GQA accuracy", "NLVR2 accuracy", "COCO Caption CIDEr",
          "COCO Caption BLEU-4", "COCO Caption METEOR", "COCO Caption SPICE", "trainable %"]


def numbers(row: list[str]) -> list[str]:
    """A table row's numbers without the invalid shares beside them (``0.00 (100% invalid)``)."""
    return [cell.split(" (")[0] for cell in row]


def cells(metrics: dict) -> list[str]:
    """The report's cells of a record's metrics; a metric not computed here (SPICE without CoreNLP) is a dash."""
    return ["—" if math.isnan(metrics[t][m]) else f"{metrics[t][m]:.2f}"
            for t, m in (("vqa", "vqa_accuracy"), ("gqa", "accuracy"), ("nlvr2", "accuracy"),
                         *(("coco-caption", m) for m in ("cider", "bleu4", "meteor", "spice")))]


def test_the_vl_smoke_sweep_extracts_features_first_and_reports_the_vl_tasks(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PEFTBENCH_FEATURES", str(tmp_path / "features"))  # the Ray workers inherit it
    out = tmp_path / "out"
    # the feature step: one cache entry per task, printed ready, written before any trial began
    records, _ = sweep_features_first(SPEC, out, tmp_path / "features", VL, "tiny-clip", capsys)

    text = report(out)
    single = {method_label(r["method"], r["method_options"]): {} for r in records}
    for r in records:
        if not r.get("mixture"):
            single[method_label(r["method"], r["method_options"])][r["task"]] = r["test_metrics"]
    header, rows = table_rows(text, "Vision and language (VL-Adapter Table 1 layout)")
    assert header == HEADER and set(rows) == set(single)
    for method, metrics in single.items():  # one seed, one learning rate: the cell is the record's number
        assert numbers(rows[method][:-1]) == cells(metrics)
        # a task's invalid outputs beside its first metric
        assert ("invalid" in rows[method][0]) == (metrics["vqa"]["invalid"] > 0)

    header, rows = table_rows(text, "Vision and language: vl4 (VL-Adapter Table 1 layout)")
    assert header == HEADER
    for r in (r for r in records if r.get("mixture")):
        assert r["mixture"] == list(VL) and set(r["test_metrics"]) == set(VL)
        assert numbers(rows[method_label(r["method"], r["method_options"])]) == [*cells(r["test_metrics"]),
                                                                                f"{r['trainable_pct']:.3f}"]
    assert "## Multi-task: vl4" in text and "## Multi-task vl4 against one task at a time" in text


def test_the_vl_smoke_runs_on_vl_bart_too(tmp_path, monkeypatch):
    """VL-Adapter's default backbone: the same smoke with ``model: tiny-bart`` (its VL tasks make it
    tiny-bart+tiny-clip), the adapter alone: every task on its own and the mixture end ok on VL-BART, and the
    report lays them out as on VL-T5."""
    monkeypatch.setenv("PEFTBENCH_FEATURES", str(tmp_path / "features"))
    spec = {**yaml.safe_load(SPEC.read_text()), "name": "vl-smoke-bart", "model": "tiny-bart"}
    path = tmp_path / "vl-smoke-bart.yaml"
    path.write_text(yaml.safe_dump(spec))
    out = tmp_path / "out"
    assert main(["sweep", str(path), "--out", str(out), "--methods", "adapter"]) == 0
    records = read_records(out)
    assert len(records) == len(VL) + 1 and all(r["status"] == "ok" for r in records), [r["error"] for r in records]
    assert {r["model_source"] for r in records} == {"config:tiny-bart+tiny-clip"}
    text = report(out)
    assert table_rows(text, "Vision and language (VL-Adapter Table 1 layout)")[0] == HEADER
    assert table_rows(text, "Vision and language: vl4 (VL-Adapter Table 1 layout)")[0] == HEADER
