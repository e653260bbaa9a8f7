"""Uncertainty for the numbers a comparison reports: bootstrap intervals and paired tests.

Everything here is a pure function of arrays of per-run values. Intervals are percentile
bootstrap intervals from :func:`scipy.stats.bootstrap` (95 %, 2000 resamples, a fixed seed
so that a table prints the same numbers each time); the statistics are vectorized, so an
interval costs one numpy call. Diverged runs enter as +-inf (the worst value), which
percentiles handle. Comparisons pair runs by seed and start: runs of different optimizers
with the same seed start from the same parameters and draw the same batches, so their
difference is the optimizers' (Wilcoxon's signed-rank test on the paired differences, Holm's
correction over the optimizers compared on a task).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import numpy as np

CONFIDENCE = 0.95
RESAMPLES = 2000
SEED = 0  # the bootstrap's generator: a table prints the same intervals each time
ALPHA = 0.05  # the family-wise error rate of the paired tests on one task

Statistic = Callable[..., np.ndarray]  # (sample, axis=-1) -> statistic


def bootstrap_interval(sample: Sequence[float], statistic: Statistic
                       ) -> tuple[float, float]:
    """The 95 % percentile bootstrap interval of ``statistic`` over ``sample``; a single
    value, or a sample whose values are all equal, has the zero-width interval."""
    return bootstrap_intervals([sample], statistic)[0]


def bootstrap_intervals(samples: Sequence[Sequence[float]], statistic: Statistic
                        ) -> list[tuple[float, float]]:
    """:func:`bootstrap_interval` of each sample, computed together: samples of one size
    are resampled in one call (a table's hundreds of intervals cost a few calls, not one
    each)."""
    from scipy import stats  # on first use: it takes a while to import

    samples = [np.asarray(sample, float) for sample in samples]
    out = [(float(statistic(sample, axis=-1)),) * 2 for sample in samples]
    by_size: dict[int, list[int]] = {}
    for i, sample in enumerate(samples):
        if not (len(sample) < 2 or np.all(sample == sample[0]) or np.all(np.isnan(sample))):
            by_size.setdefault(len(sample), []).append(i)
    for indices in by_size.values():
        with np.errstate(invalid="ignore"):  # +-inf in the resamples: percentiles cope
            result = stats.bootstrap((np.stack([samples[i] for i in indices]),), statistic,
                                     confidence_level=CONFIDENCE, n_resamples=RESAMPLES,
                                     method="percentile", vectorized=True, axis=-1,
                                     rng=np.random.default_rng(SEED))
        for i, low, high in zip(indices, *result.confidence_interval, strict=True):
            out[i] = (float(low), float(high))
    return out


def median(sample: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.median(sample, axis=axis)


def success_rate(hit_steps: np.ndarray, axis: int = -1) -> np.ndarray:
    """The share of runs that reached a target (a hit step that is not NaN)."""
    return np.mean(~np.isnan(hit_steps), axis=axis)


@functools.cache  # one statistic per budget, so that intervals of one budget batch together
def ert_of(steps: int) -> Statistic:
    """COCO's expected running time of runs' hit steps (NaN: never reached): the steps
    spent by all (``steps`` for those that failed) over the number that succeeded."""
    def ert(hit_steps: np.ndarray, axis: int = -1) -> np.ndarray:
        successes = np.sum(~np.isnan(hit_steps), axis=axis)
        spent = np.sum(np.where(np.isnan(hit_steps), steps, hit_steps), axis=axis)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(successes > 0, spent / np.maximum(successes, 1), np.inf)
    return ert


def paired_p_value(better: np.ndarray, other: np.ndarray, maximize: bool) -> float:
    """Wilcoxon's signed-rank p-value (two-sided) of paired final values: ``better[i]`` and
    ``other[i]`` are the same seed and start. A diverged run (+-inf) counts as worse than
    every finite value; pairs that tie are dropped; 1.0 when every pair ties."""
    from scipy import stats

    sign = -1.0 if maximize else 1.0
    worst = np.finfo(float).max / 4  # finite, so that a diverged run's difference is signed
    a, b = (np.clip(sign * np.asarray(x, float), -worst, worst) for x in (better, other))
    differences = b - a
    if not np.any(differences != 0):
        return 1.0
    return float(stats.wilcoxon(differences, zero_method="wilcox").pvalue)


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjustment: reject where the adjusted p-value is below the
    family-wise level; each adjusted value is at least the unadjusted one."""
    p = np.asarray(p_values, float)
    order = np.argsort(p)
    adjusted = np.maximum.accumulate(np.minimum(1.0, (len(p) - np.arange(len(p))) * p[order]))
    out = np.empty_like(p)
    out[order] = adjusted
    return out
