"""The VL table (VL-Adapter's Table 1 layout) says how many outputs could not be read, like every table."""

from peftbench.reports.summary import report

from testkit.records import seeds, write_all


def test_the_vl_table_shows_invalid_shares_beside_the_tasks_first_metric(tmp_path):
    records = [*seeds("adapter", "vqa", 1e-3, [50, 50], [60, 60], data_source="fixtures",
                      metrics={"vqa_accuracy": 60.0, "invalid": 2, "examples": 10}),
               *seeds("lora", "vqa", 1e-3, [50, 50], [70, 70], data_source="fixtures",
                      metrics={"vqa_accuracy": 70.0, "invalid": 0, "examples": 10})]
    text = report(write_all(tmp_path / "f", records))
    section = text.split("## Vision and language (VL-Adapter Table 1 layout)\n", 1)[1].split("\n## ", 1)[0]
    rows = {line.split(" | ")[0].strip("| "): line.split(" | ")[1] for line in section.splitlines()
            if line.startswith("| ") and " | " in line}
    assert rows["adapter"] == "60.00 (20% invalid)"  # 2 + 2 of 10 + 10
    assert rows["lora"].strip("*") == "70.00"
