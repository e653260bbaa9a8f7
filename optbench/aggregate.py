"""Comparisons a paper can publish: tuning-budget curves, performance profiles and aggregate
scores with interval estimates. Pure functions of the stored tables; nothing re-runs.

* **Tuning budget** (Dodge et al. 2019, "Show your work"): a trial is one hyperparameter
  setting, scored by its median final value over seeds and starts (diverged runs count as
  the worst value), as :func:`optbench.analysis.best_configs` ranks settings. The expected
  best score after ``k`` trials drawn at random from the ``N`` tried tells whether an
  optimizer is better or only easier to tune.
* **Performance profiles** (Dolan & Moré 2002, as AlgoPerf scores them): per task, each
  optimizer's ERT at its chosen setting over the task's best ERT, in steps or in seconds
  (AlgoPerf's time to target); rho(tau) is the fraction of a metric group's tasks on which
  that ratio is at most tau.
* **Aggregate scores** (rliable, Agarwal et al. 2021): the interquartile mean (IQM) over
  tasks x runs of normalized scores and the probability of improvement P(X > Y), each with
  a stratified bootstrap interval (runs resampled within each task; an optimizer's starts,
  each with its copies, where its seeds copy each start's run: :func:`units`). Written with
  numpy:
  the ``rliable`` package needs ``arch`` and ``absl-py``, which optbench does not.

Scores on different metrics (f - f*, accuracies, R^2) are never pooled: every aggregate is
per metric group, as :func:`optbench.analysis.metric_groups` splits the table.

Scales: a maximized metric (accuracy, R^2) is clipped to [0, 1]: an accuracy is unchanged,
an R^2 below 0 (worse than predicting the mean, down to -1e6 where training blew up) counts
as 0. A minimized one (f - f*, which spans decades and reaches exactly 0 in float32) is used
as log10 of its value, clipped below at the floor (the tightest target / 10, where the
figures draw 0: below every target all values count as equally solved). Diverged runs
(+-inf) stay infinite on both scales.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import numpy as np
import pandas as pd

from optbench import stats
from optbench.analysis import (
    GROUP,
    PerTask,
    all_targets,
    best_configs,
    seed_free,
    table_targets,
)

SETTING = [*GROUP, "config"]
TAU_MAX = 4.0  # AlgoPerf integrates the profile over 1 <= tau <= 4


# --- tuning budget -------------------------------------------------------------------------

def expected_max(scores: np.ndarray, k: int, axis: int = -1) -> np.ndarray:
    """Dodge et al.'s expected maximum of ``k`` draws with replacement from ``scores``
    (their empirical distribution): with the N scores sorted v_(1) <= ... <= v_(N),
    sum_i v_(i) [(i/N)^k - ((i-1)/N)^k]. k = 1 gives their mean; k -> inf their maximum."""
    v = np.moveaxis(np.sort(np.asarray(scores, float), axis=axis), axis, -1)
    n = v.shape[-1]
    i = np.arange(1, n + 1)
    return v @ ((i / n) ** k - ((i - 1) / n) ** k)


def expected_best(scores: np.ndarray, k: int, maximize: bool, axis: int = -1) -> np.ndarray:
    """:func:`expected_max` of a maximized score, the expected minimum of a minimized one."""
    sign = 1.0 if maximize else -1.0
    return sign * expected_max(sign * np.asarray(scores, float), k, axis=axis)


def floor(targets: Sequence[float] | PerTask) -> float:
    """Where a minimized metric is clipped below: the tightest target / 10 (the figures
    draw 0 there too)."""
    return min(all_targets(targets), default=1e-8) / 10


def to_scale(values: np.ndarray, maximize: bool, low: float) -> np.ndarray:
    """A metric's values on the scale aggregates use: clipped to [0, 1] where maximized
    (accuracy, R^2), log10 of them clipped below at ``low`` where minimized; +-inf
    (diverged) stays."""
    values = np.asarray(values, float)
    if maximize:
        return np.where(np.isfinite(values), np.clip(values, 0.0, 1.0), values)
    return np.log10(np.clip(values, low, None))


def from_scale(values: np.ndarray, maximize: bool) -> np.ndarray:
    """The inverse of :func:`to_scale` (within its clipping)."""
    values = np.asarray(values, float)
    return values if maximize else 10.0 ** values


def trial_scores(runs: pd.DataFrame, targets: Sequence[float] | PerTask) -> pd.DataFrame:
    """One row per setting (task, optimizer, config): its ``score``, the median final value
    over seeds and starts on the aggregates' scale (:func:`to_scale`), with ``metric``,
    ``maximize`` and ``diverged`` (that median is +-inf, the worst). A diverged score is
    replaced by the worst finite score of the task's settings, all optimizers': an
    expectation with an infinite term is infinite whatever its odds, so the curves would
    say nothing; "as bad as the worst setting tried" keeps the order. Where every setting of
    the task diverged, the scores stay +-inf."""
    settings = runs.groupby(SETTING, sort=False).agg(
        final=("final", "median"), metric=("metric", "first"),
        maximize=("maximize", "first")).reset_index()
    low = floor(targets)
    parts = []
    for _, part in settings.groupby("task", sort=False):
        maximize = bool(part["maximize"].iloc[0])
        score = to_scale(part["final"].to_numpy(float), maximize, low)
        finite = score[np.isfinite(score)]
        worst = ((finite.min() if maximize else finite.max()) if finite.size
                 else -np.inf if maximize else np.inf)
        parts.append(part.assign(score=np.where(np.isfinite(score), score, worst),
                                 diverged=~np.isfinite(score)))
    return pd.concat(parts, ignore_index=True).drop(columns="final")


def budget_steps(n: int, points: int = 30) -> np.ndarray:
    """The numbers of trials a curve is evaluated at: every k up to ``points``, else
    ``points`` log-spaced ones from 1 to ``n`` (always with 1 and n)."""
    if n <= points:
        return np.arange(1, n + 1)
    return np.unique(np.geomspace(1, n, points).round().astype(int))


def tuning_curves(runs: pd.DataFrame, targets: Sequence[float] | PerTask,
                  ks: Sequence[int] | None = None) -> pd.DataFrame:
    """Per (task, optimizer) and number of trials k: the expected best score after k trials
    (``expected_best``, in the metric's units) and its 95 % bootstrap interval (``low``,
    ``high``: the N trial scores resampled, :func:`optbench.stats.bootstrap_interval`), with
    ``settings`` (N). ``ks``: the k to evaluate (default :func:`budget_steps` of N; only
    those <= N are kept). +-inf (the worst) where every setting of the optimizer
    diverged."""
    rows = []
    for (task, optimizer), part in trial_scores(runs, targets).groupby(GROUP, sort=False):
        n = len(part)
        maximize = bool(part["maximize"].iloc[0])
        for k in (budget_steps(n) if ks is None else [k for k in ks if k <= n]):
            value, low, high = _expected_best_interval(part, int(k))
            rows.append({"task": task, "optimizer": optimizer,
                         "metric": part["metric"].iloc[0], "maximize": maximize,
                         "settings": n, "k": int(k), "expected_best": value,
                         "low": low, "high": high})
    return pd.DataFrame(rows, columns=[*GROUP, "metric", "maximize", "settings", "k",
                                       "expected_best", "low", "high"])


def _expected_best_interval(trials: pd.DataFrame, k: int) -> tuple[float, float, float]:
    """:func:`expected_best` after k of an optimizer's ``trials`` (:func:`trial_scores`)
    and its bootstrap interval, in the metric's units; the worst value (+-inf) where every
    setting diverged."""
    maximize = bool(trials["maximize"].iloc[0])
    score = trials["score"].to_numpy(float)
    if trials["diverged"].all():
        worst = -np.inf if maximize else np.inf
        return worst, worst, worst
    statistic = partial(expected_best, k=k, maximize=maximize)
    value = float(statistic(score))
    low, high = stats.bootstrap_interval(score, statistic)
    return tuple(float(from_scale(v, maximize)) for v in (value, low, high))


EXPECTED_BEST = [f"expected_best@{k}{end}" for k in ("1", "N") for end in ("", "_low", "_high")]
TUNING_COLUMNS = ["settings_tried", *EXPECTED_BEST]


def tuning_columns(runs: pd.DataFrame, targets: Sequence[float] | PerTask) -> pd.DataFrame:
    """The convergence table's tuning-budget columns per (task, optimizer):
    ``settings_tried`` (N), ``expected_best@1`` and ``expected_best@N`` (the expected best
    score after one trial and after N, as in :func:`tuning_curves`), each with ``_low`` and
    ``_high`` (95 % bootstrap interval)."""
    rows = []
    for (task, optimizer), part in trial_scores(runs, targets).groupby(GROUP, sort=False):
        row = {"task": task, "optimizer": optimizer, "settings_tried": len(part)}
        for name, k in (("expected_best@1", 1), ("expected_best@N", len(part))):
            value, low, high = _expected_best_interval(part, k)
            row |= {name: value, f"{name}_low": low, f"{name}_high": high}
        rows.append(row)
    return pd.DataFrame(rows)


# --- performance profiles ------------------------------------------------------------------

ERT_COLUMN = {"steps": "ert", "seconds": "ert_seconds"}  # a profile's unit -> its ERT column


def profile_ratios(table: pd.DataFrame, unit: str = "steps") -> pd.DataFrame:
    """Per (task, optimizer) of a convergence table: the target its profile uses, the ERT
    at the chosen setting there, in ``unit`` (steps or seconds, :data:`ERT_COLUMN`), and
    ``ratio`` = ERT / the task's best ERT (inf: never reached; NaN: no time recorded).

    The target is, per task, the tightest of its own targets that some optimizer reaches
    (a finite ERT): the hardest goal the task shows to be reachable, so that the profile
    separates the optimizers that solve it from those that only approach it, and every
    task has a best optimizer at ratio 1. A task where no optimizer reaches any target has
    no target and every ratio inf: it stays in the group's count, which no one reaches.
    The target is chosen on steps for both units, so the two profiles ask the same goal."""
    rows = []
    for task, part in table.groupby("task", sort=False):
        own = [t for t in table_targets(part) if part[f"ert@{t:g}"].notna().all()]
        reached = [t for t in own if np.isfinite(part[f"ert@{t:g}"]).any()]
        target = reached[-1] if reached else np.nan  # easiest first: the last is tightest
        ert = (part[f"{ERT_COLUMN[unit]}@{target:g}"].to_numpy(float) if reached
               else np.full(len(part), np.inf))
        best = np.nanmin(ert) if not np.isnan(ert).all() else np.nan
        with np.errstate(divide="ignore", invalid="ignore"):  # a target met at step 0
            ratio = (np.where(ert == 0, 1.0, np.inf) if best == 0 else ert / best
                     if np.isfinite(best) else np.full(len(part), np.inf))
        ratio = np.where(np.isnan(ert), np.nan, ratio)  # no time recorded: no ratio
        rows += [{"metric": part["metric"].iloc[0], "task": task, "optimizer": o,
                  "target": target, "ert": e, "ratio": r}
                 for o, e, r in zip(part["optimizer"], ert, ratio, strict=True)]
    return pd.DataFrame(rows, columns=["metric", *GROUP, "target", "ert", "ratio"])


def performance_profile(ratios: pd.DataFrame, taus: Sequence[float]) -> pd.DataFrame:
    """rho(tau) per (metric, optimizer): the fraction of the group's tasks on which the
    optimizer's ratio (:func:`profile_ratios`) is at most tau; a task it did not run counts
    as not reached."""
    taus = np.asarray(taus, float)
    rows = []
    for metric, group in ratios.groupby("metric", sort=False):
        tasks = group["task"].nunique()
        for optimizer, part in group.groupby("optimizer", sort=False):
            r = part["ratio"].to_numpy(float)
            rho = (r[None, :] <= taus[:, None]).sum(axis=1) / tasks
            rows += [{"metric": metric, "optimizer": optimizer, "tau": t, "rho": p}
                     for t, p in zip(taus, rho, strict=True)]
    return pd.DataFrame(rows, columns=["metric", "optimizer", "tau", "rho"])


def profile_score(ratios: pd.DataFrame, tau_max: float = TAU_MAX) -> pd.Series:
    """AlgoPerf's benchmark score per (metric, optimizer): the area under rho(tau) over
    1 <= tau <= ``tau_max``, over ``tau_max`` - 1 (1: best on every task)."""
    scores = {}
    for (metric, optimizer), part in ratios.groupby(["metric", "optimizer"], sort=False):
        tasks = ratios.loc[ratios["metric"] == metric, "task"].nunique()
        r = np.clip(part["ratio"].to_numpy(float), 1.0, tau_max)  # rho is a step at each r
        scores[(metric, optimizer)] = float(np.sum(tau_max - r) / (tau_max - 1) / tasks)
    return pd.Series(scores, name="score")


# --- aggregate scores ----------------------------------------------------------------------

def normalized_scores(runs: pd.DataFrame, targets: Sequence[float] | PerTask,
                      steps: int | PerTask) -> pd.DataFrame:
    """The runs at each (task, optimizer)'s chosen setting (:func:`best_configs`) with
    ``score`` in [0, 1], higher better, comparable across a metric group's tasks.

    A maximized metric (accuracy, R^2) is clipped to [0, 1]: accuracy as it is, an R^2
    below 0 (worse than predicting the mean) is 0. A minimized one (f - f*) is min-max
    scaled on :func:`to_scale` (log10, clipped at :func:`floor`) over all runs of the task,
    every setting's: 1 at the task's lowest value, 0 at its highest finite one, so one
    decade counts the same everywhere on a task. Diverged runs score 0. ``seed_free``:
    whether the optimizer's seeds copy each start's run on the task
    (:func:`~optbench.analysis.seed_free`)."""
    chosen = runs.merge(best_configs(runs, targets, steps), on=SETTING)
    low = floor(targets)
    parts = []
    for task, part in chosen.groupby("task", sort=False):
        maximize = bool(part["maximize"].iloc[0])
        final = part["final"].to_numpy(float)
        if maximize:
            score = np.nan_to_num(to_scale(final, True, low), neginf=0.0)
        else:
            every = to_scale(runs.loc[runs["task"] == task, "final"], False, low)
            every = every[np.isfinite(every)]
            best, worst = (every.min(), every.max()) if every.size else (0.0, 0.0)
            value = to_scale(final, False, low)
            span = worst - best if worst > best else 1.0
            score = np.where(np.isfinite(value), np.clip((worst - value) / span, 0, 1), 0.0)
            score = np.where(np.isfinite(value) & (worst <= best), 1.0, score)
        free = {o: seed_free(own) for o, own in part.groupby("optimizer", sort=False)}
        parts.append(part.assign(score=score, seed_free=part["optimizer"].map(free)))
    columns = [*GROUP, "metric", "seed", "start", "seed_free", "score"]
    return (pd.concat(parts, ignore_index=True)[columns] if parts
            else pd.DataFrame(columns=columns))


def iqm(scores: np.ndarray, axis: int | None = -1) -> np.ndarray:
    """The interquartile mean: the mean of the middle 50 % (25 % cut from each end)."""
    from scipy import stats as scipy_stats

    return scipy_stats.trim_mean(scores, 0.25, axis=axis)


def _resampled(samples: Sequence[np.ndarray], rng: np.random.Generator) -> list[np.ndarray]:
    """Each sample resampled with replacement :data:`optbench.stats.RESAMPLES` times
    (rows): the strata of a stratified bootstrap, drawn independently. A 2-D sample's rows
    are its units (:func:`units`), resampled whole."""
    out = []
    for s in samples:
        s = np.asarray(s, float).reshape(len(s), -1)
        picked = s[rng.integers(0, len(s), (stats.RESAMPLES, len(s)))]
        out.append(picked.reshape(stats.RESAMPLES, -1))
    return out


def units(scores: pd.DataFrame) -> np.ndarray:
    """One optimizer's :func:`normalized_scores` on one task as the bootstrap resamples
    them: a row per run or, where its seeds copy each start's run (``seed_free``), a row
    per start holding its copies, so that copies are drawn together rather than counted as
    independent runs (the point estimates are the same either way)."""
    values = scores["score"].to_numpy(float)
    if not scores["seed_free"].iloc[0]:
        return values[:, None]
    order = np.argsort(scores["start"].to_numpy(), kind="stable")
    sizes = np.unique(scores["start"], return_counts=True)[1]
    if len(set(sizes)) > 1:  # starts with different numbers of seeds: runs, as ever
        return values[:, None]
    return values[order].reshape(len(sizes), sizes[0])


def _percentiles(values: np.ndarray) -> tuple[float, float]:
    """The 95 % percentile interval of bootstrap replicates."""
    tail = 100 * (1 - stats.CONFIDENCE) / 2
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def iqm_interval(samples: Sequence[np.ndarray]) -> tuple[float, float, float]:
    """The IQM of the pooled samples (one per task) and its 95 % stratified-bootstrap
    interval: each task's runs (or units, a 2-D sample's rows) resampled within the task
    (rliable's estimator)."""
    point = float(iqm(np.concatenate([np.ravel(s) for s in samples]), axis=None))
    rng = np.random.default_rng(stats.SEED)
    replicates = iqm(np.concatenate(_resampled(samples, rng), axis=1), axis=1)
    return (point, *_percentiles(replicates))


def probability_of_improvement(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """P(X > Y) of a random run of each, ties counted half (the Mann-Whitney U statistic
    over len(x) * len(y)); over the last axis, vectorized over the leading ones."""
    x, y = np.asarray(x, float)[..., :, None], np.asarray(y, float)[..., None, :]
    return np.mean((x > y) + 0.5 * (x == y), axis=(-2, -1))


def improvement_interval(pairs: Sequence[tuple[np.ndarray, np.ndarray]]
                         ) -> tuple[float, float, float]:
    """The mean over tasks of :func:`probability_of_improvement` (one (x, y) pair of run
    scores per task, each 1-D, or 2-D as :func:`units` gives them) and its 95 %
    stratified-bootstrap interval."""
    point = float(np.mean([probability_of_improvement(np.ravel(x), np.ravel(y))
                           for x, y in pairs]))
    rng = np.random.default_rng(stats.SEED)
    replicates = np.mean([probability_of_improvement(*_resampled([x, y], rng))
                          for x, y in pairs], axis=0)
    return (point, *_percentiles(replicates))


def aggregate_scores(scores: pd.DataFrame) -> pd.DataFrame:
    """Per (metric, optimizer): the IQM over tasks x runs of :func:`normalized_scores` and
    its 95 % stratified-bootstrap interval (``iqm``, ``low``, ``high``), the tasks and
    runs it pools."""
    rows = []
    for (metric, optimizer), part in scores.groupby(["metric", "optimizer"], sort=False):
        samples = [units(g) for _, g in part.groupby("task", sort=False)]
        value, low, high = iqm_interval(samples)
        rows.append({"metric": metric, "optimizer": optimizer, "iqm": value, "low": low,
                     "high": high, "tasks": len(samples), "runs": len(part)})
    return pd.DataFrame(rows, columns=["metric", "optimizer", "iqm", "low", "high", "tasks",
                                       "runs"])


def improvement_probabilities(scores: pd.DataFrame) -> pd.DataFrame:
    """Per metric and pair of optimizers (X before Y in order of appearance): P(X > Y) on
    :func:`normalized_scores`, averaged over the tasks both ran, with its 95 %
    stratified-bootstrap interval (``probability``, ``low``, ``high``, ``tasks``)."""
    rows = []
    for metric, group in scores.groupby("metric", sort=False):
        by = {o: {t: units(g) for t, g in part.groupby("task", sort=False)}
              for o, part in group.groupby("optimizer", sort=False)}
        names = list(by)
        for i, x in enumerate(names):
            for y in names[i + 1:]:
                pairs = [(by[x][t], by[y][t]) for t in by[x] if t in by[y]]
                if pairs:
                    value, low, high = improvement_interval(pairs)
                    rows.append({"metric": metric, "x": x, "y": y, "probability": value,
                                 "low": low, "high": high, "tasks": len(pairs)})
    return pd.DataFrame(rows, columns=["metric", "x", "y", "probability", "low", "high",
                                       "tasks"])
