"""How sure a comparison against the baseline is: Welch's t-test with its 95% CI, Holm's correction
across a table's comparisons, and the seeds per method a comparison needs for power 0.8 at α 0.05.

Formulas and sources:
- Welch's t-test (Welch 1947, Biometrika 34:28–35): t = (x̄a − x̄b) / se, se² = sa²/na + sb²/nb, with
  the Welch–Satterthwaite degrees of freedom (Satterthwaite 1946, Biometrics Bulletin 2:110–114)
  ν = se⁴ / ((sa²/na)²/(na−1) + (sb²/nb)²/(nb−1)); the CI is Δ ± t(1−α/2, ν)·se.
- Holm's step-down correction (Holm 1979, Scand. J. Statist. 6:65–70): sort the m p-values
  ascending, p̃(i) = max over j ≤ i of min(1, (m − j + 1)·p(j)); it controls the family-wise error.
- Power of the two-sided test (Cohen 1988, Statistical Power Analysis, ch. 2): with n seeds a side the
  statistic follows a noncentral t with ν(n) degrees of freedom and noncentrality δ = Δ / se(n), so
  power = P(T > t(1−α/2, ν)) + P(T < −t(1−α/2, ν)). The seeds needed are the smallest n reaching 0.8.

Only ``scipy.special`` (the t and noncentral t distributions, ``stdtr``, ``stdtrit``, ``nctdtr``, the
functions behind ``scipy.stats.t`` and ``scipy.stats.nct``): importing ``scipy.stats`` would double a
report's start-up time. Nothing here imports torch.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

import numpy as np

ALPHA = 0.05  # two-sided level of every test against the baseline
POWER = 0.8  # the power a comparison's seeds must give
MOST_SEEDS = 1000  # seeds_needed searches up to here; beyond it a comparison is not worth deciding


def welch(a, b, alpha: float = ALPHA) -> tuple[float, float, float]:
    """Welch's t-test of mean(a) − mean(b): (p value, CI low, CI high at 1 − ``alpha``); NaNs when untestable.

    Untestable: fewer than two seeds on a side, or no spread on either side (t would be ±inf or 0/0).
    """
    nan = (math.nan, math.nan, math.nan)
    if len(a) < 2 or len(b) < 2:
        return nan
    var_a, var_b = statistics.variance(a) / len(a), statistics.variance(b) / len(b)  # squared standard errors
    if var_a == 0 and var_b == 0:
        return nan
    from scipy.special import stdtr, stdtrit

    se = math.sqrt(var_a + var_b)
    df = (var_a + var_b) ** 2 / (var_a**2 / (len(a) - 1) + var_b**2 / (len(b) - 1))  # Welch–Satterthwaite
    diff = statistics.fmean(a) - statistics.fmean(b)
    half = float(stdtrit(df, 1 - alpha / 2)) * se
    return float(2 * stdtr(df, -abs(diff) / se)), diff - half, diff + half


def holm(pvalues) -> list[float]:
    """Holm-adjusted p-values in the order given; NaN (untestable) stays NaN and is not counted in m."""
    tested = sorted((p, i) for i, p in enumerate(pvalues) if not math.isnan(p))
    out, running = [math.nan] * len(pvalues), 0.0
    for rank, (p, i) in enumerate(tested):
        running = max(running, min(1.0, (len(tested) - rank) * p))  # step-down: never below an earlier one
        out[i] = running
    return out


def power(effect: float, sd_a: float, sd_b: float, n, alpha: float = ALPHA) -> np.ndarray:
    """Power of the two-sided Welch test to detect ``effect`` with ``n`` seeds a side (an int or an array)."""
    from scipy.special import nctdtr, stdtrit

    n = np.asarray(n, dtype=float)
    var = sd_a**2 + sd_b**2
    df = var**2 * (n - 1) / (sd_a**4 + sd_b**4)  # Welch–Satterthwaite with na = nb = n
    nc = abs(effect) / np.sqrt(var / n)
    crit = stdtrit(df, 1 - alpha / 2)
    return 1 - nctdtr(df, nc, crit) + nctdtr(df, nc, -crit)


def seeds_needed(effect: float, sd_a: float, sd_b: float, *, alpha: float = ALPHA, target: float = POWER,
                 most: int = MOST_SEEDS) -> int | None:
    """The fewest seeds a side (at least 2) for ``target`` power to detect ``effect`` given the two
    spreads; None when ``most`` seeds are not enough (or there is no effect to detect)."""
    if effect == 0 or math.isnan(effect) or math.isnan(sd_a) or math.isnan(sd_b):
        return None
    if sd_a == 0 and sd_b == 0:
        return 2  # no spread: any difference shows with the fewest seeds a t-test takes
    n = np.arange(2, most + 1)
    enough = np.flatnonzero(power(effect, sd_a, sd_b, n, alpha) >= target)
    return int(n[enough[0]]) if len(enough) else None


@dataclass(frozen=True)
class Verdict:
    """Whether a comparison is decided, and if not, the seeds a side it needs (None: more than MOST_SEEDS)."""

    decided: bool
    needed: int | None
    have: int  # the fewer seeds of the two sides

    def text(self) -> str:
        if self.decided:
            return "decided"
        if self.needed is None:
            return f"needs > {MOST_SEEDS} seeds"
        more = self.needed - self.have
        return f"needs {more} more seed{'s' if more != 1 else ''}"


def verdict(*, p_adjusted: float, effect: float, sd_a: float, sd_b: float, n_a: int, n_b: int,
            min_effect: float | None = None, alpha: float = ALPHA) -> Verdict:
    """A comparison is decided when its corrected p is below ``alpha``, or when its seeds already give
    power 0.8 for the effect (``min_effect`` if given, else the observed one): then no difference that
    large was found, and more seeds would not change that. A side with under two seeds has no spread:
    it needs two."""
    have = min(n_a, n_b)
    if p_adjusted < alpha:
        return Verdict(True, have, have)
    if have < 2 or math.isnan(sd_a) or math.isnan(sd_b):
        return Verdict(False, 2, have)
    needed = seeds_needed(min_effect if min_effect is not None else effect, sd_a, sd_b, alpha=alpha)
    return Verdict(needed is not None and have >= needed, needed, have)
