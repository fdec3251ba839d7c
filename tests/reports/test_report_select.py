"""Selection and statistics on synthetic records with answers computed by hand."""

from __future__ import annotations

import math

import pytest
from scipy import stats

from peftbench.reports import select, tables

from testkit.records import record, seeds, two_method_sweep


@pytest.fixture
def summary():
    return select.summarize(two_method_sweep()).set_index(["method", "task"])


def test_learning_rate_selected_on_mean_validation_not_test(summary):
    # adapter/sst2: 3e-3 has mean val 71 against 62 at 1e-3, although 1e-3's test scores are higher
    assert summary.loc[("adapter", "sst2"), "learning_rate"] == 3e-3
    assert summary.loc[("adapter", "sst2"), "val_score_mean"] == pytest.approx(71.0)
    # full/sst2: 3e-4 (val 81) beats 3e-3 (val 80) whose test scores are all 99
    assert summary.loc[("full", "sst2"), "learning_rate"] == 3e-4


def test_test_score_mean_std_and_seed_count(summary):
    row = summary.loc[("adapter", "sst2")]  # tests 80, 82, 84
    assert row["test_score_mean"] == pytest.approx(82.0)
    assert (row["test_score_std"], row["n_seeds"]) == (pytest.approx(2.0), 3)
    row = summary.loc[("full", "rte")]  # tests 60, 70, 80: sample std 10
    assert row["test_score_std"] == pytest.approx(10.0)


def test_failed_trial_counted_never_averaged(summary):
    row = summary.loc[("adapter", "rte")]  # ok tests 65, 75; seed 2 failed
    assert row["test_score_mean"] == pytest.approx(70.0)
    assert row["test_score_std"] == pytest.approx(math.sqrt(50))
    assert (row["n_seeds"], row["n_failed"]) == (2, 1)
    assert [r["trial_id"] for r in select.failures(two_method_sweep())] == ["adapter-rte-lr0.003-s2-nNone"]


def test_single_seed_has_no_std():
    summary = select.summarize([record("full", "rte", 1e-3, 0, val=50, test=60)])
    assert math.isnan(summary.loc[0, "test_score_std"])
    assert tables.main_table(summary, "full").rows[0][1] == "60.00 ± —"


def test_ties_go_to_the_smallest_learning_rate():
    records = [*seeds("full", "rte", 3e-3, [50, 60], [1, 1]), *seeds("full", "rte", 3e-4, [60, 50], [2, 2])]
    assert select.summarize(records).loc[0, "learning_rate"] == 3e-4


def test_average_is_mean_over_tasks_of_metric_means(summary):
    avg = select.averages(summary.reset_index())
    assert avg.at["full", "average"] == pytest.approx((71 + 70) / 2)
    # adapter: sst2 82; rte 70 = mean of (accuracy+f1)/2 over seeds: ((70+60)/2 + (80+70)/2) / 2
    assert avg.at["adapter", "average"] == pytest.approx((82 + 70) / 2)


def test_score_check_flags_a_test_score_that_is_not_its_metrics_mean():
    good = record("adapter", "rte", 1e-3, 0, val=1, test=75.0, metrics={"accuracy": 80.0, "f1": 70.0, "invalid": 3})
    bad = record("adapter", "rte", 1e-3, 1, val=1, test=80.0, metrics={"accuracy": 80.0, "f1": 70.0, "invalid": 3})
    assert select.score_mismatches(two_method_sweep() + [good]) == []
    (message,) = select.score_mismatches([good, bad])
    assert "adapter-rte-lr0.001-s1" in message and "75" in message


def test_welch_against_full_matches_hand_computation(summary):
    row = summary.loc[("adapter", "sst2")]  # [80, 82, 84] vs full's [70, 71, 72]
    se = math.sqrt(4 / 3 + 1 / 3)  # sample variances 4 and 1, three seeds each
    t, df = 11 / se, 50 / 17  # Welch–Satterthwaite: (5/3)² / ((4/3)²/2 + (1/3)²/2)
    assert row["delta_vs_baseline"] == pytest.approx(11.0)
    assert row["p_value"] == pytest.approx(2 * stats.t.sf(t, df))
    half = stats.t.ppf(0.975, df) * se
    assert (row["ci_low"], row["ci_high"]) == (pytest.approx(11 - half), pytest.approx(11 + half))
    assert row["significant"]


def test_no_difference_and_untestable_cells_are_not_marked(summary):
    row = summary.loc[("adapter", "rte")]  # [65, 75] vs [60, 70, 80]: same mean
    assert row["p_value"] == pytest.approx(1.0) and not row["significant"]
    one_seed = select.summarize([*seeds("full", "rte", 1e-3, [1, 2], [10, 30]),
                                 record("adapter", "rte", 1e-3, 0, val=1, test=90)])
    adapter = one_seed[one_seed["method"] == "adapter"].iloc[0]
    assert adapter["delta_vs_baseline"] == pytest.approx(70.0)
    assert math.isnan(adapter["p_value"]) and not adapter["significant"]
    # [40, 40] vs [50, 60]: t = −15 / √(0 + 50/2) = −3 with 1 degree of freedom, p ≈ 0.205
    weak = select.summarize([*seeds("full", "rte", 1e-3, [1, 2], [50, 60]),
                             *seeds("adapter", "rte", 1e-3, [1, 2], [40, 40])]).set_index("method")
    assert weak.at["adapter", "p_value"] == pytest.approx(2 * stats.t.sf(3, 1))
    assert not weak.at["adapter", "significant"]


def test_baseline_label_with_options():
    records = [*seeds("full", "rte", 1e-3, [1, 2], [10, 30], options={"zero_stage": 2}),
               *seeds("adapter", "rte", 1e-3, [1, 2], [50, 70])]
    summary = select.summarize(records)
    assert select.baseline_label(summary, "full") == "full[zero_stage=2]"
    assert summary.set_index("method").at["adapter", "delta_vs_baseline"] == pytest.approx(40.0)


def test_efficiency_deltas_against_full(summary):
    eff = select.efficiency(summary.reset_index(), "full").set_index("method")
    # memory: largest peak over tasks, 900 MB vs 1200 MB; time: mean over tasks, 7.5 s vs 15 s
    assert eff.at["adapter", "memory_delta_pct"] == pytest.approx(-25.0)
    assert eff.at["adapter", "time_delta_pct"] == pytest.approx(-50.0)
    assert eff.at["adapter", "trainable_pct"] == pytest.approx(0.5)


def test_memory_delta_withheld_when_measured_differently():
    records = [*seeds("full", "rte", 1e-3, [1, 2], [1, 2], memory_mb=1000),
               *seeds("adapter", "rte", 1e-3, [1, 2], [1, 2], memory_mb=500,
                      measured_by="estimated: budgets.estimate (weights + Adam states)")]
    summary = select.summarize(records)
    eff = select.efficiency(summary, "full").set_index("method")
    assert math.isnan(eff.at["adapter", "memory_delta_pct"])
    assert eff.at["adapter", "time_delta_pct"] == pytest.approx(0.0)
    table = tables.efficiency_table(summary, "full")
    adapter = next(r for r in table.rows if r[0] == "adapter")
    assert adapter[2] == "≈500" and adapter[3] == "—"
    assert any("ESTIMATE" in n and "adapter" in n for n in table.notes)


def test_train_size_absent_and_none_are_the_same_cell():
    records = [record("full", "rte", 1e-3, 0, val=1, test=10), record("full", "rte", 1e-3, 1, val=1, test=20,
                                                                      train_size=None),
               *seeds("full", "rte", 1e-3, [1, 2], [30, 50], train_size=100)]
    summary = select.summarize(records)
    assert len(summary) == 2
    full_data = summary[summary["train_size"].isna()].iloc[0]
    assert (full_data["test_score_mean"], full_data["n_seeds"]) == (pytest.approx(15.0), 2)
    assert summary[summary["train_size"] == 100].iloc[0]["test_score_mean"] == pytest.approx(40.0)


# Each test below pins one guard of reports/select.py; each fails when its guard is removed.


def test_no_spread_on_either_side_is_untestable_not_significant():
    # [40, 40] vs [50, 50]: both standard deviations 0, so t = −10/0; Welch without its guard says p = 0
    summary = select.summarize([*seeds("full", "rte", 1e-3, [1, 2], [50, 50]),
                                *seeds("adapter", "rte", 1e-3, [1, 2], [40, 40])]).set_index("method")
    assert summary.at["adapter", "delta_vs_baseline"] == pytest.approx(-10.0)
    assert math.isnan(summary.at["adapter", "p_value"]) and not summary.at["adapter", "significant"]
    assert math.isnan(summary.at["adapter", "ci_low"])
    row = next(r for r in tables.comparison_table(summary.reset_index(), "full").rows if r[0] == "adapter")
    assert row[4:] == ["—", "—", "", "—", "decided"]  # no spread on either side: a difference shows at once


def test_one_seed_is_untestable_not_significant():
    summary = select.summarize([*seeds("full", "rte", 1e-3, [1, 2, 3], [50, 51, 52]),
                                record("adapter", "rte", 1e-3, 0, val=1, test=90)]).set_index("method")
    assert math.isnan(summary.at["adapter", "p_value"]) and not summary.at["adapter", "significant"]
    assert math.isnan(summary.at["adapter", "test_score_std"])  # and no std made up either


def test_peak_memory_of_a_cell_is_the_largest_over_seeds():
    records = [record("adapter", "rte", 1e-3, s, val=1, test=1, memory_mb=mb) for s, mb in enumerate([700, 900, 500])]
    summary = select.summarize(records)
    assert summary.loc[0, "peak_memory_bytes"] == 900e6  # not the min (500) nor the mean (700)
    assert tables.efficiency_table(summary, None).rows[0][2] == "900"


def test_baseline_only_and_method_only_tasks_are_never_compared():
    records = [*seeds("full", "rte", 1e-3, [1, 2], [60, 70], memory_mb=1000, time_s=10),
               *seeds("full", "sst2", 1e-3, [1, 2], [80, 90], memory_mb=4000, time_s=40),  # baseline only
               *seeds("adapter", "rte", 1e-3, [1, 2], [70, 80], memory_mb=500, time_s=5),
               *seeds("adapter", "cb", 1e-3, [1, 2], [10, 20], memory_mb=9000, time_s=90)]  # adapter only
    summary = select.summarize(records)
    delta = summary.set_index(["method", "task"])["delta_vs_baseline"]
    assert delta["adapter", "rte"] == pytest.approx(10.0)
    assert math.isnan(delta["adapter", "cb"])  # no baseline on cb
    assert delta[["full"]].isna().all()  # the baseline is not compared with itself
    eff = select.efficiency(summary, "full").set_index("method")
    # over rte only, the one task both ran: 500 MB vs 1000 MB and 5 s vs 10 s (not sst2's 4000 MB, 40 s)
    assert eff.at["adapter", "memory_delta_pct"] == pytest.approx(-50.0)
    assert eff.at["adapter", "time_delta_pct"] == pytest.approx(-50.0)
    rows = {r[0]: r for r in tables.main_table(summary, "full").rows}
    assert rows["adapter"][4] == "45.00 (2/3 tasks)" and rows["full"][4] == "75.00 (2/3 tasks)"


def test_a_method_without_common_tasks_gets_no_delta():
    records = [*seeds("full", "sst2", 1e-3, [1, 2], [80, 90], memory_mb=4000),
               *seeds("adapter", "cb", 1e-3, [1, 2], [10, 20], memory_mb=500)]
    eff = select.efficiency(select.summarize(records), "full").set_index("method")
    assert eff.at["adapter", "peak_memory_bytes"] == 500e6
    assert math.isnan(eff.at["adapter", "memory_delta_pct"]) and math.isnan(eff.at["adapter", "time_delta_pct"])


def test_main_tables_use_the_full_training_set_over_the_largest_subset():
    records = [*seeds("full", "rte", 1e-3, [1, 2], [10, 20], train_size=1000),
               *seeds("full", "rte", 1e-3, [1, 2], [70, 80])]
    table = tables.main_table(select.summarize(records), "full")
    assert table.rows[0][1] == "75.00 ± 7.07" and "train size" not in table.title


def test_invalid_share_needs_every_seeds_output_count():
    records = [record("adapter", "rte", 1e-3, 0, val=1, test=50, metrics={"accuracy": 50.0, "invalid": 4,
                                                                            "examples": 40}),
               record("adapter", "rte", 1e-3, 1, val=1, test=50, metrics={"accuracy": 50.0, "invalid": 4})]
    row = select.summarize(records).iloc[0]
    # the old record does not say how many outputs it scored: a share would be 8 of 40, i.e. wrong
    assert math.isnan(row["test_invalid_share"]) and row["test_invalid"] == 8
    assert tables.invalid_text(row) == "8 invalid"


def test_memory_measured_differently_is_never_ranked():
    records = [*seeds("full", "rte", 1e-3, [1, 2], [1, 2], memory_mb=1000),
               *seeds("adapter", "rte", 1e-3, [1, 2], [1, 2], memory_mb=500,
                      measured_by="estimated: budgets.estimate (weights + Adam states)")]
    table = tables.main_table(select.summarize(records), "full")
    memory = table.header.index("peak memory (MB)")
    assert not any(j == memory for _, j in table.best)


@pytest.mark.parametrize(("a", "b"), [((40, 42, 45), (50, 51)), ((1.0, 2.0, 3.5, 2.2), (2.0, 2.0, 2.0)),
                                      ((88.3, 86.7), (70.0, 75.0, 72.0))])
def test_welch_agrees_with_scipys_welch_test(a, b):
    reference = stats.ttest_ind(a, b, equal_var=False)
    ci = reference.confidence_interval(1 - select.ALPHA)
    assert select.welch(a, b) == pytest.approx((reference.pvalue, ci.low, ci.high), rel=1e-9)
