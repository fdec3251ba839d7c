"""The report's hyperparameter table: per method, the settings its trials ran with, read from the records."""

from peftbench.reports.summary import report

from testkit.records import record, write_all

CONFIG = {"warmup_steps": 500, "weight_decay": 0.0, "max_grad_norm": 1.0, "epochs": None}


def rows_of(text: str) -> dict[str, list[str]]:
    section = text.split("## Hyperparameters\n", 1)[1].split("\n## ", 1)[0]
    lines = [line.strip("|").split(" | ") for line in section.splitlines() if line.startswith("| ")]
    return {r[0].strip(): [c.strip() for c in r[1:]] for r in lines}


def test_the_hyperparameter_table_lists_each_methods_settings_and_its_learning_rate_grid(tmp_path):
    records = [record("lora", "rte", lr, s, val=60.0, test=50.0, config=CONFIG, epochs=20, batch_size=32)
               for lr in (1e-3, 3e-4) for s in (0, 1)]
    records += [record("full", "rte", 3e-4, 0, val=60.0, test=50.0, epochs=3, batch_size=8,
                       config={**CONFIG, "warmup_steps": 0, "max_grad_norm": None, "weight_decay": 0.01}),
                record("full", "sst2", 3e-4, 0, val=60.0, test=50.0, epochs=20, batch_size=8,
                       config={**CONFIG, "warmup_steps": 0, "max_grad_norm": None, "weight_decay": 0.01})]
    rows = rows_of(report(write_all(tmp_path / "f", records)))
    assert rows["method"] == ["epochs", "warm-up steps", "batch (examples/step)", "learning rates", "weight decay",
                              "gradient clipping (max norm)"]
    assert rows["lora"] == ["20", "500", "32", "0.0003, 0.001", "0", "1"]
    assert rows["full"] == ["3, 20", "0", "8", "0.0003", "0.01", "none"]


def test_records_without_a_config_show_their_own_fields_and_dashes(tmp_path):
    rows = rows_of(report(write_all(tmp_path / "f", [record("lora", "rte", 1e-3, 0, val=60.0, test=50.0)])))
    assert rows["lora"] == ["3", "—", "32", "0.001", "—", "—"]  # not "none": the record does not say
