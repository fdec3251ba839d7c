"""The video smoke sweep, for real: Ray Tune runs configs/video-smoke.yaml (single adapter and single LoRA on the
video4 mixture of TVQA, How2QA, TVC and YC2C, tiny VL-BART + tiny CLIP ViT, the offline fixtures' clips). The
feature step computes every task's clip features before the first trial, the trials decode at the smoke's
beam 1, and the report holds the video tasks under VL-Adapter's names with the records' numbers."""

import math
from pathlib import Path

from peftbench.methods import method_label
from peftbench.reports.summary import report

from testkit.sweeps import sweep_features_first, table_rows

SPEC = Path(__file__).resolve().parents[2] / "configs" / "video-smoke.yaml"
VIDEO4 = ("tvqa", "how2qa", "tvc", "yc2c")
CAPTION_METRICS = {"cider": "CIDEr", "bleu4": "BLEU-4", "rouge_l": "ROUGE-L", "meteor": "METEOR", "spice": "SPICE"}
CELLS = (("tvqa", "accuracy"), ("how2qa", "accuracy"), *((t, m) for t in ("tvc", "yc2c") for m in CAPTION_METRICS))
HEADER = ["method", "TVQA accuracy", "How2QA accuracy",
          *(f"{t} {name}" for t in ("TVC", "YC2C") for name in CAPTION_METRICS.values()), "trainable %"]


def shown(value: float) -> str:
    """A number as the report prints it: a metric not computed here (SPICE without CoreNLP) is a dash."""
    return "—" if math.isnan(value) else f"{value:.2f}"


def test_the_video_smoke_sweep_extracts_clip_features_first_and_reports_the_video_tasks(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PEFTBENCH_FEATURES", str(tmp_path / "features"))  # the Ray workers inherit it
    out = tmp_path / "out"
    # the feature step: one cache entry per task, read by the tiny CLIP ViT, written before any trial began
    records, _ = sweep_features_first(SPEC, out, tmp_path / "features", VIDEO4, "tiny-clip-vit", capsys)

    for r in records:  # one model on the four tasks, decoded at the smoke's beam 1, the paper's VL-BART
        assert r["mixture"] == list(VIDEO4) and set(r["test_metrics"]) == set(VIDEO4)
        assert r["config"]["num_beams"] == 1 and r["model"] == "tiny-bart+tiny-clip-vit"

    header, rows = table_rows(report(out), "Vision and language: video4 (VL-Adapter's video-text layout)")
    assert header == HEADER
    for r in records:
        row = [cell.split(" (")[0] for cell in rows[method_label(r["method"], r["method_options"])]]
        assert row == [*(shown(r["test_metrics"][t][m]) for t, m in CELLS), f"{r['trainable_pct']:.3f}"]
        for task in ("tvc", "yc2c"):  # the Java scorers run on the test split alone, never on a validation
            assert not {"meteor", "spice"} & set(r["val_metrics"][-1][task])
            metrics = r["test_metrics"][task]  # a Java scorer that could not run here says why
            assert all(math.isnan(metrics[m]) == (m in metrics.get("not_computed", {})) for m in ("meteor", "spice"))
