"""How a claim is decided, the same for every claim and sweep: scipy's percentile bootstrap
interval of its effect over seeds (resampled together, so settings stay paired), the probability
of improvement (Mann-Whitney U, as in rliable) and the verdict rule.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
RESAMPLES = 9999
RNG_SEED = 0  # fixed: the same results give the same interval

HOLDS, FAILS, UNDECIDED = "holds", "does not hold", "not decided"
RULE = (
    "Each claim says its effect is above (>) or below (<) a threshold fixed in "
    "src/report/claims.py. It holds when the whole 95% bootstrap interval over seeds lies on "
    "the claimed side, does not hold when the whole interval lies on the other side, and is "
    "not decided at this number of seeds when the interval contains the threshold."
)


@dataclass(frozen=True)
class Interval:
    estimate: float
    low: float
    high: float
    seeds: int


def interval(
    groups: Sequence[Sequence[np.ndarray]], statistic: Callable[..., np.ndarray]
) -> Interval | None:
    """The statistic of groups of samples (one array per setting, one value per seed, the seeds
    in the same order in each) and its 95% percentile bootstrap interval, the seeds resampled
    together; None with fewer than 2 seeds. `statistic(*groups, axis=-1)`, each group a list of
    arrays, is vectorized."""
    bounds = np.cumsum([0, *(len(g) for g in groups)])
    samples = [np.asarray(s, dtype=float) for g in groups for s in g]

    def of_samples(*samples: np.ndarray, axis: int = -1) -> np.ndarray:
        return statistic(*(list(samples[a:b]) for a, b in zip(bounds, bounds[1:])), axis=axis)

    n = len(samples[0])
    if n < 2:
        return None
    result = stats.bootstrap(
        samples,
        of_samples,
        n_resamples=RESAMPLES,
        vectorized=True,
        paired=True,
        confidence_level=CONFIDENCE,
        method="percentile",
        rng=np.random.default_rng(RNG_SEED),
    )
    low, high = result.confidence_interval
    return Interval(float(of_samples(*samples, axis=-1)), float(low), float(high), n)


def improvement_probability(better: np.ndarray, worse: np.ndarray) -> float:
    """P(a run of `better` ends below a run of `worse`), ties half: the Mann-Whitney U of
    `worse` over `better` divided by the number of pairs."""
    u = stats.mannwhitneyu(worse, better, alternative="two-sided").statistic
    return float(u) / (len(better) * len(worse))


def verdict(found: Interval | None, side: str, threshold: float) -> str:
    """The rule (RULE): side ">" claims the effect is above the threshold, "<" below it."""
    if found is None:
        return UNDECIDED
    above, below = found.low > threshold, found.high < threshold
    if side == ">":
        return HOLDS if above else FAILS if below else UNDECIDED
    return HOLDS if below else FAILS if above else UNDECIDED
