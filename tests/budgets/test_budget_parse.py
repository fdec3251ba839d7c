"""Budget strings: GB and GiB exactly, everything else refused in one line, in the spec too (the CLI:
tests/cli/test_budget_cli.py)."""

import pytest

from peftbench.budgets.parse import BudgetError, parse_budget
from peftbench.harness.spec import SpecError, parse_spec


@pytest.mark.parametrize("text,expected", [
    ("24GB", 24 * 10**9),
    ("24GiB", 24 * 2**30),
    ("0.5GB", 500_000_000),
    ("1.5GiB", 3 * 2**29),
    ("80GB", 80_000_000_000),
])
def test_gb_and_gib_exactly(text, expected):
    assert parse_budget(text) == expected


@pytest.mark.parametrize("text", ["24", "24gb", "24 GB", "24G", "24GBs", "24MB", "GB", "-1GB", "0GB", "", "24e9GB", 24])
def test_anything_else_is_one_clear_line(text):
    with pytest.raises(BudgetError) as err:
        parse_budget(text)
    message = str(err.value)
    assert "\n" not in message and repr(text) in message
    assert ("GB" in message and "GiB" in message) or "less than one byte" in message


SPEC = {"model": "tiny-t5", "methods": ["adapter"], "tasks": ["sst2"], "learning_rates": [1e-3], "seeds": [0]}


def test_spec_budget_and_batch():
    spec = parse_spec({**SPEC, "budget": "40GiB", "batch": 100})
    trial = spec.trials()[0]
    assert (trial.budget, trial.batch) == ("40GiB", 100)
    assert parse_spec({**SPEC, "batch": "max"}).trials()[0].batch == "max"
    defaults = parse_spec({**SPEC, "batch_size": 8}).trials()[0]
    assert (defaults.budget, defaults.batch, defaults.batch_size) == ("24GB", None, 8)


@pytest.mark.parametrize("extra,key", [
    ({"budget": "24gb"}, "budget"),
    ({"batch": "biggest"}, "batch"),
    ({"batch": 0}, "batch"),
    ({"batch": 100, "batch_size": 25}, "batch"),
])
def test_spec_errors_name_the_key(extra, key):
    with pytest.raises(SpecError) as err:
        parse_spec({**SPEC, **extra}, source="x.yaml")
    assert str(err.value).startswith(f"x.yaml: {key}: ") and "\n" not in str(err.value)
