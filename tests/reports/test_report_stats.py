"""reports/stats.py against answers worked out here independently: the noncentral t by hand (scipy.stats,
not the scipy.special functions the module uses), Cohen's published sample sizes, Holm by hand."""

from __future__ import annotations

import math

import pytest
from scipy import stats as sp

from peftbench.reports import select, stats, tables

from testkit.records import seeds


def power_by_hand(effect, sd_a, sd_b, n, alpha=0.05):
    """Two-sided Welch power with n seeds a side, from scipy.stats.nct and the t quantile."""
    se2 = (sd_a**2 + sd_b**2) / n
    df = se2**2 / ((sd_a**2 / n) ** 2 / (n - 1) + (sd_b**2 / n) ** 2 / (n - 1))
    crit = sp.t.ppf(1 - alpha / 2, df)
    nc = effect / math.sqrt(se2)
    return sp.nct.sf(crit, df, nc) + sp.nct.cdf(-crit, df, nc)


def fewest_by_hand(effect, sd_a, sd_b):
    return next(n for n in range(2, 2000) if power_by_hand(effect, sd_a, sd_b, n) >= 0.8)


@pytest.mark.parametrize(("d", "n"), [(0.5, 64), (0.8, 26), (1.0, 17)])
def test_seeds_needed_matches_cohens_table_for_equal_spreads(d, n):
    # Cohen (1988) Table 2.4.1, two-sided α 0.05, power 0.8: n per group 64, 26, 17 for d = .5, .8, 1.0
    assert stats.seeds_needed(d * 2.0, 2.0, 2.0) == n
    assert fewest_by_hand(d, 1.0, 1.0) == n


@pytest.mark.parametrize(("effect", "sd_a", "sd_b"), [(3.0, 1.0, 4.0), (1.5, 0.5, 2.0), (10.0, 7.0, 3.0)])
def test_seeds_needed_with_unequal_spreads_matches_the_noncentral_t_by_hand(effect, sd_a, sd_b):
    needed = stats.seeds_needed(effect, sd_a, sd_b)
    assert needed == fewest_by_hand(effect, sd_a, sd_b)
    assert stats.power(effect, sd_a, sd_b, needed) == pytest.approx(power_by_hand(effect, sd_a, sd_b, needed))
    assert stats.power(-effect, sd_a, sd_b, needed - 1) < 0.8  # a negative difference is as hard to detect


def test_seeds_needed_gives_up_beyond_the_cap_and_without_an_effect():
    assert stats.seeds_needed(0.01, 5.0, 5.0) is None  # d = 0.002 would take millions of seeds
    assert stats.seeds_needed(0.0, 1.0, 1.0) is None
    assert stats.seeds_needed(1.0, 0.0, 0.0) == 2  # no spread: the fewest seeds a t-test takes


def test_holm_matches_the_step_down_by_hand():
    # sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 = 0.02, 0.03, 0.06, 0.04 -> running max 0.02, 0.03, 0.06, 0.06
    assert stats.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    adjusted = stats.holm([0.2, math.nan, 0.6])  # the untestable one is not counted: m = 2
    assert adjusted[0] == pytest.approx(0.4) and adjusted[2] == pytest.approx(0.6) and math.isnan(adjusted[1])
    assert stats.holm([0.5, 0.9]) == [1.0, 1.0]  # capped at 1


def test_verdict_decided_when_corrected_p_is_small_or_seeds_give_power():
    assert stats.verdict(p_adjusted=0.01, effect=1, sd_a=5, sd_b=5, n_a=3, n_b=3).text() == "decided"
    # effect 2, spreads 1: 7 seeds a side give power 0.8 (by hand below); 3 are not enough
    needed = fewest_by_hand(2.0, 1.0, 1.0)
    undecided = stats.verdict(p_adjusted=0.2, effect=2.0, sd_a=1.0, sd_b=1.0, n_a=3, n_b=5)
    assert (undecided.decided, undecided.needed) == (False, needed)
    assert undecided.text() == f"needs {needed - 3} more seeds"
    # a smaller effect the user cares about needs more; with enough seeds a non-difference is decided
    assert stats.verdict(p_adjusted=0.2, effect=2.0, sd_a=1.0, sd_b=1.0, n_a=3, n_b=3, min_effect=0.5).needed == 64
    assert stats.verdict(p_adjusted=0.9, effect=0.1, sd_a=1.0, sd_b=1.0, n_a=70, n_b=70, min_effect=0.5).decided
    assert stats.verdict(p_adjusted=math.nan, effect=5, sd_a=math.nan, sd_b=1.0, n_a=1, n_b=3).text() == \
        "needs 1 more seed"


def test_welch_ci_at_another_level_matches_scipy():
    a, b = (1.0, 2.0, 4.0, 7.0), (3.0, 3.5, 5.0)
    reference = sp.ttest_ind(a, b, equal_var=False)
    ci = reference.confidence_interval(0.9)
    assert stats.welch(a, b, alpha=0.1) == pytest.approx((reference.pvalue, ci.low, ci.high), rel=1e-9)


def decided_and_undecided() -> list[dict]:
    """full, adapter and bitfit on rte: adapter far from full with little spread (decided), bitfit
    close to full with a wide spread (undecided)."""
    return [*seeds("full", "rte", 1e-3, [1, 2, 3], [60, 61, 62]),
            *seeds("adapter", "rte", 1e-3, [1, 2, 3], [80, 81, 82]),
            *seeds("bitfit", "rte", 1e-3, [1, 2, 3], [55, 62, 69])]


def test_comparison_table_has_holm_p_and_the_seeds_column():
    summary = select.summarize(decided_and_undecided())
    table = tables.comparison_table(summary, "full")
    rows = {r[0]: dict(zip(table.header, r, strict=True)) for r in table.rows}
    p = {m: summary.set_index("method").at[m, "p_value"] for m in ("adapter", "bitfit")}
    low, high = sorted(p.values())
    holm = {m: (2 * low if v == low else max(2 * low, high)) for m, v in p.items()}
    assert rows["adapter"]["p (Holm)"] == f"{holm['adapter']:.3g}" and rows["adapter"]["seeds"] == "decided"
    # bitfit: Δ −1, spreads 7 and 1 -> the seeds a side for power 0.8, counted by hand
    needed = fewest_by_hand(1.0, 7.0, 1.0)
    assert rows["bitfit"]["p (Holm)"] == f"{holm['bitfit']:.3g}"
    assert rows["bitfit"]["seeds"] == f"needs {needed - 3} more seeds"
    assert any("Holm" in note and "2 tested comparisons" in note for note in table.notes)


def test_min_effect_changes_what_the_seeds_must_detect():
    summary = select.summarize(decided_and_undecided())
    rows = {r[0]: r[-1] for r in tables.comparison_table(summary, "full", min_effect=7.0).rows}
    assert rows["bitfit"] == f"needs {fewest_by_hand(7.0, 7.0, 1.0) - 3} more seeds"
