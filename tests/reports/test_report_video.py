"""The video tasks in the VL tables: the paper's names (TVQA and How2QA accuracy, TVC and YC2C CIDEr beside the
BLEU-4, ROUGE-L, METEOR and SPICE their evaluator prints), the records' numbers, the metric a caption trial selects
on, and a metric that could not be computed (SPICE without CoreNLP) as one line."""

from peftbench.reports.summary import report

from testkit.records import seeds, write_all
from testkit.sweeps import table_rows

QA = {"accuracy": 40.0, "invalid": 0, "examples": 10}
CAPTION = {"cider": 12.5, "bleu4": 3.25, "rouge_l": 20.0, "meteor": 9.5, "spice": float("nan"),
           "not_computed": {"spice": "Stanford CoreNLP 3.6.0 jars not found"}, "invalid": 0, "examples": 10}


def test_video_tasks_trained_alone_get_the_video_layout_under_the_papers_names(tmp_path):
    records = [*seeds("adapter", "tvqa", 3e-4, [40, 40], [40, 40], data_source="fixtures", metrics=QA),
               *seeds("adapter", "tvc", 3e-4, [12.5, 12.5], [12.5, 12.5], data_source="fixtures", metrics=CAPTION)]
    text = report(write_all(tmp_path / "f", records))
    header, rows = table_rows(text, "Vision and language (VL-Adapter's video-text layout)")
    assert header == ["method", "TVQA accuracy", "TVC CIDEr", "TVC BLEU-4", "TVC ROUGE-L", "TVC METEOR", "TVC SPICE",
                      "trainable %"]
    assert rows["adapter"][:6] == ["40.00", "12.50", "3.25", "20.00", "9.50", "—"]
    assert "TVC's CIDEr is the score a trial selects on." in text
    assert text.count("SPICE: not computed (Stanford CoreNLP 3.6.0 jars not found)") == 1


def test_image_and_video_tasks_share_one_table_in_the_papers_order(tmp_path):
    records = [*seeds("lora", "vqa", 1e-3, [50], [50], data_source="fixtures",
                      metrics={"vqa_accuracy": 50.0, "invalid": 0, "examples": 10}),
               *seeds("lora", "yc2c", 1e-3, [12.5], [12.5], data_source="fixtures", metrics=CAPTION)]
    text = report(write_all(tmp_path / "f", records))
    header, rows = table_rows(text, "Vision and language (VL-Adapter's image-text and video-text layouts)")
    assert header[1:3] == ["VQAv2 VQA accuracy", "YC2C CIDEr"]
    assert rows["lora"][:2] == ["50.00", "12.50"]
    assert "## Vision and language (VL-Adapter Table 1 layout)" not in text
