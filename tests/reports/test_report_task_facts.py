"""Reports learn what they need of a task from its records (``task_facts``): the papers' table order, the
papers' names, which tasks are VL and their metrics; records from before the field still report."""

from peftbench.harness.config import TrialConfig
from peftbench.harness.records import build_record
from peftbench.reports.select import summarize
from peftbench.reports.summary import report
from peftbench.reports.tables import main_table

from testkit.records import seeds, write_all


def test_a_trials_record_carries_each_tasks_rank_paper_name_kind_and_metrics():
    single = TrialConfig(model="tiny-t5", method="adapter", task="rte", learning_rate=1e-3, seed=0)
    mixed = TrialConfig(model="tiny-t5", method="adapter", task="glue2", mixture=("sst2", "rte"),
                        learning_rate=1e-3, seed=0)
    caption = TrialConfig(model="tiny-t5+tiny-clip", method="adapter", task="coco-caption", learning_rate=1e-3,
                          seed=0)
    facts = build_record(single, status="failed", error="RuntimeError: x")["task_facts"]
    assert facts == {"rte": {"rank": 7, "paper_name": "rte", "vision": False, "video": False,
                             "metrics": ["accuracy"], "scored_metrics": ["accuracy"],
                             "metric_paper_names": {"accuracy": "accuracy"}}}
    members = build_record(mixed, status="failed", error="RuntimeError: x")["task_facts"]
    assert list(members) == ["sst2", "rte"] and members["sst2"]["rank"] < members["rte"]["rank"]
    assert build_record(caption, status="failed", error="RuntimeError: x")["task_facts"]["coco-caption"] == {
        "rank": 17, "paper_name": "COCO Caption", "vision": True, "video": False,
        "metrics": ["cider", "bleu4", "meteor", "spice"],
        "scored_metrics": ["cider"],
        "metric_paper_names": {"cider": "CIDEr", "bleu4": "BLEU-4", "meteor": "METEOR", "spice": "SPICE"}}
    clip = TrialConfig(model="tiny-bart+tiny-clip-vit", method="adapter", task="tvc", learning_rate=1e-3, seed=0)
    assert build_record(clip, status="failed", error="RuntimeError: x")["task_facts"]["tvc"]["video"] is True


def facts(rank, *, vision=False, paper_name=None, metrics=None):
    metrics = metrics or {"accuracy": "accuracy"}
    return {"rank": rank, "paper_name": paper_name, "vision": vision, "metrics": list(metrics),
            "metric_paper_names": metrics}


def task_columns(records) -> list[str]:
    header = main_table(summarize(records), "full").header
    return header[header.index("method") + 1: header.index("average")]


def test_tables_order_tasks_by_the_rank_their_records_carry():
    """The registry puts sst2 before rte; records that rank them the other way are followed."""
    def sweep(rte_rank, sst2_rank):
        return [*seeds("full", "sst2", 1e-3, [50], [60], task_facts={"sst2": facts(sst2_rank)}),
                *seeds("full", "rte", 1e-3, [50], [60], task_facts={"rte": facts(rte_rank)})]

    assert task_columns(sweep(rte_rank=1, sst2_rank=9)) == ["rte", "sst2"]
    assert task_columns(sweep(rte_rank=9, sst2_rank=1)) == ["sst2", "rte"]


def test_records_without_task_facts_list_their_tasks_alphabetically_after_ranked_ones():
    old = [r for task in ("sst2", "rte", "cola") for r in seeds("full", task, 1e-3, [50], [60], task_facts=None)]
    assert task_columns(old) == ["cola", "rte", "sst2"]  # the registry's order would be cola, sst2, rte
    ranked = seeds("full", "stsb", 1e-3, [50], [60])  # a new record: stsb ranked by the registry's order
    assert task_columns([*old, *ranked]) == ["stsb", "cola", "rte", "sst2"]


def test_the_vl_table_reads_a_tasks_paper_name_and_metrics_from_its_records(tmp_path):
    """A VL task this install has never heard of: its records alone make its VL table's columns, in the
    records' metric order (not the sorted order of the record's keys)."""
    own = {"my-vqa": facts(None, vision=True, paper_name="MyVQA", metrics={"vqa_accuracy": "VQA accuracy",
                                                                            "f1": "F1 (ours)"})}
    records = seeds("adapter", "my-vqa", 1e-3, [50, 50], [60, 60], data_source="fixtures", task_facts=own,
                    metrics={"vqa_accuracy": 61.0, "f1": 59.0, "invalid": 0, "examples": 10})
    text = report(write_all(tmp_path / "new", records))
    section = text.split("## Vision and language (VL-Adapter Table 1 layout)\n", 1)[1].split("\n## ", 1)[0]
    assert "| MyVQA VQA accuracy | MyVQA F1 (ours) |" in section
    assert "| adapter | 61.00 | 59.00 |" in section
    old = [{**r, "task_facts": None} for r in records]  # records from before: no VL table, the main one stays
    text = report(write_all(tmp_path / "old", old))
    assert "Vision and language" not in text and "| adapter" in text
