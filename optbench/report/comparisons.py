"""The report's comparison figures (:mod:`optbench.aggregate` computes what they show):
tuning-budget curves per task, and per metric group performance profiles and aggregate
scores with interval estimates.

:mod:`optbench.report.figures` defines the ``Drawn`` and ``Skip`` they return and raise.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator

from optbench import aggregate
from optbench.report import style
from optbench.report.data import ReportData
from optbench.report.figures import Drawn, Skip, _handles

LOG_X_FROM = 12  # settings: a tuning-budget axis longer than this is drawn log-x
BLANK = dict(ha="center", va="center", fontsize=9, color="grey", wrap=True)


def _number(value: float, _position=None) -> str:
    """A tick label as a plain number (``2``, ``0.5``, ``1e+03``)."""
    return f"{value:g}"


def _blank(ax: plt.Axes, why: str) -> None:
    """A panel with nothing to draw says why."""
    ax.text(0.5, 0.5, why, transform=ax.transAxes, **BLANK)


def _value_label(metric: str, maximize: bool) -> str:
    """The y label of an expected best value, accuracies in %."""
    if style.is_accuracy(metric):
        return f"expected best {metric.replace('_', ' ')} (%)"
    if not maximize:
        return f"expected best {style.metric_label(metric)}"
    return f"expected best {metric.replace('_', ' ')} (< 0 as 0)"


def _ordered_tasks(data: ReportData, frame: pd.DataFrame) -> list[tuple[str, str]]:
    """(metric, task) pairs with rows in ``frame``: by metric group in order of appearance,
    then in the config's task order, so that a panel grid never mixes metrics within a run
    of panels."""
    metric_of = frame.drop_duplicates("task").set_index("task")["metric"]
    tasks = [t for t in data.tasks if t in metric_of.index]
    metrics = list(dict.fromkeys(metric_of[t] for t in tasks))
    return [(m, t) for m in metrics for t in tasks if metric_of[t] == m]


def tuning_budget(data: ReportData) -> list[Drawn]:
    """Dodge et al. (2019): the expected best validation score against the number of
    hyperparameter settings tried, per task, one line and band per optimizer."""
    if data.runs.empty:
        raise Skip("no finished blocks")
    if "stage1" in data.meta:
        raise Skip("a stage-2 sweep runs one setting per optimizer; stage 1's report draws "
                   "the search's tuning budget, and this table's expected-best columns are "
                   "stage 1's")
    curves = aggregate.tuning_curves(data.runs, data.plans[0])
    panels = _ordered_tasks(data, curves)
    look = style.looks(data.optimizers)
    figure, axes = style.grid(len(panels), cols=3, legend_rows=style.legend_rows(
        data.optimizers))
    log_x = curves["settings"].max() > LOG_X_FROM
    for ax, (metric, task) in zip(axes, panels, strict=True):
        mine = curves[curves["task"] == task]
        maximize = bool(mine["maximize"].iloc[0])
        scale = 100.0 if style.is_accuracy(metric) else 1.0
        diverged = []
        for optimizer in [o for o in data.optimizers if o in set(mine["optimizer"])]:
            c = mine[mine["optimizer"] == optimizer]
            if not np.isfinite(c["expected_best"]).all():  # every setting diverged
                diverged.append(optimizer)
                continue
            ax.plot(c["k"], scale * c["expected_best"], color=look[optimizer].color,
                    linestyle=look[optimizer].linestyle, marker="o" if len(c) == 1 else None,
                    markersize=4, label=optimizer, linewidth=1.5)
            ax.fill_between(c["k"], scale * c["low"], scale * c["high"],
                            color=look[optimizer].color, alpha=0.15, linewidth=0)
        if len(diverged) == mine["optimizer"].nunique():
            _blank(ax, "every setting of every optimizer diverged:\nno finite score to "
                       "expect")
        else:
            if diverged:
                ax.text(0.98, 0.97, f"every setting diverged: {', '.join(diverged)}",
                        transform=ax.transAxes, ha="right", va="top", fontsize=8,
                        color="grey")
            if not maximize:
                style.log_axis(ax, "y")
        if log_x:
            ax.set_xscale("log")
            ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
            ax.xaxis.set_major_formatter(FuncFormatter(_number))
            style.no_minor_ticks(ax.xaxis)
        else:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("settings tried, k" + (" (log)" if log_x else ""))
        ax.set_ylabel(_value_label(metric, maximize))
        ax.set_title(task)
    style.legend_below(figure, *_handles(figure, data))
    low = aggregate.floor(data.plans[0])
    return [Drawn("tuning-budget", "Tuning budget: expected best score vs settings tried", (
        "Dodge et al. (2019), \"Show your work\": a trial is one hyperparameter setting of "
        "the sweep, scored by its median final value over seeds and starts (the score the "
        "best setting is chosen by). Each line is the expected best score after k trials "
        "drawn at random (with replacement) from the N settings the optimizer tried, "
        "Σᵢ v₍ᵢ₎ [(i/N)ᵏ − ((i−1)/N)ᵏ] over the sorted scores; at k = 1 it is the mean "
        "setting, and it rises towards the best setting tried as k grows. Band: 95 % "
        "percentile bootstrap interval over the N scores. An optimizer whose line starts "
        "high is easy to tune; one that ends high but starts low is better only when well "
        "tuned. A diverged setting counts as the worst finite score any setting reached on "
        "the task (an infinite value would make every expectation infinite); an optimizer "
        "whose every setting diverged has no line, and the panel names it. f − f_min is "
        f"averaged as log10 (a geometric mean), with values below {low:g} (the tightest "
        "target / 10) counted as solved at it; accuracies in %; an R² below 0 (worse than "
        "predicting the mean) counts as 0. Each panel is one task; "
        "the convergence table's expected_best@1 and expected_best@N columns hold both "
        "ends."), figure)]


def _group_title(metric: str) -> str:
    return "f − f_min" if metric == "f_gap" else metric.replace("_", " ")


def _targets_note(ratios: pd.DataFrame) -> str:
    """The target each task's profile used, e.g. ``rosenbrock-2d: 0.0001``."""
    per_task = ratios.drop_duplicates("task")
    return "; ".join(f"{t}: {'none reached' if np.isnan(x) else f'{x:g}'}"
                     for t, x in zip(per_task["task"], per_task["target"], strict=True))


PROFILES = {  # unit -> the figure's name, title, and what its ERT is
    "steps": ("performance-profile", "Performance profiles", "ERT (expected running time, in "
              "steps)"),
    "seconds": ("performance-profile-seconds", "Performance profiles in seconds",
                "ERT in seconds (AlgoPerf's time to target: the ERT in steps times the "
                "block's seconds per step, its compiled program's run time, compilation "
                "excluded, times its devices, over the steps of all its runs, which share it; "
                "device-seconds on this machine, not comparable across machines)")}


def performance_profile(data: ReportData, unit: str = "steps") -> list[Drawn]:
    """Dolan & Moré (2002): per metric group, the fraction of tasks on which each optimizer's
    ERT, in steps or seconds (``unit``), is within a factor tau of the task's best."""
    if data.runs.empty:
        raise Skip("no finished blocks")
    name, title, ert = PROFILES[unit]
    ratios = aggregate.profile_ratios(data.convergence, unit)
    finite = ratios["ratio"].to_numpy(float)
    finite = finite[np.isfinite(finite)]
    right = max(aggregate.TAU_MAX, 1.5 * finite.max() if finite.size else 1.0)
    taus = np.unique(np.concatenate([[1.0], finite, [right]]))
    profile = aggregate.performance_profile(ratios, taus)
    scores = aggregate.profile_score(ratios)
    metrics = list(dict.fromkeys(ratios["metric"]))
    look = style.looks(data.optimizers)
    figure, axes = plt.subplots(len(metrics), 1, figsize=(7.5, 3.4 * len(metrics)),
                                squeeze=False)
    for ax, metric in zip(axes[:, 0], metrics, strict=True):
        group = ratios[ratios["metric"] == metric]
        targeted = group[group["target"].notna()]  # tasks some optimizer reached
        untimed = len(targeted) > 0 and targeted["ratio"].isna().all()  # no seconds stored
        drawn = [o for o in data.optimizers if o in set(group["optimizer"]) and not untimed]
        for i, optimizer in enumerate(drawn):
            p = profile[(profile["metric"] == metric) & (profile["optimizer"] == optimizer)]
            ax.step(p["tau"], p["rho"], where="post", color=look[optimizer].color,
                    linestyle=look[optimizer].linestyle,
                    linewidth=1.4 + 2.2 * (len(drawn) - 1 - i) / max(len(drawn) - 1, 1),
                    label=f"{optimizer} (score {scores[(metric, optimizer)]:.2f})")
        ax.set_xscale("log", base=2)
        ax.xaxis.set_major_formatter(FuncFormatter(_number))
        style.no_minor_ticks(ax.xaxis)
        ax.set_xlim(1, right)
        ax.set_ylim(-0.05, 1.05)  # room for the wide lines at 0 and 1
        ax.axvline(aggregate.TAU_MAX, color="grey", linewidth=0.6, linestyle=":")
        if group["target"].isna().all():
            _blank(ax, "no optimizer reached any target\non these tasks")
        elif untimed:
            _blank(ax, "no seconds per step recorded: the sweep was\nwritten before "
                       "optbench timed steps (--rerun times them)")
        ax.set_xlabel(f"τ: ERT / the task's best ERT, in {unit} (log)")
        ax.set_ylabel(f"fraction of the {group['task'].nunique()} task(s), ρ(τ)")
        ax.set_title(_group_title(metric))
        if drawn:
            ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8,
                      title="optimizer\n(AlgoPerf score)", title_fontsize=8)
    figure.tight_layout()
    return [Drawn(name, title, (
        f"Dolan & Moré (2002), as AlgoPerf scores them: per task, each optimizer's {ert} "
        "at its chosen setting, divided by the best ERT "
        "of any optimizer on the task; ρ(τ) is the fraction of the metric group's tasks "
        "on which that ratio is at most τ (ρ(1): the share of tasks it is fastest on; a "
        "task it never solves never counts; where profiles coincide, the wider line is "
        "the one drawn first). The target is, per task, the tightest of its "
        "targets that some optimizer reaches: the hardest goal the task shows to be "
        "reachable, so that every task has a fastest optimizer at τ = 1 and an optimizer "
        f"that only approaches it does not count ({_targets_note(ratios)}). A task no "
        "optimizer reaches any target on counts in every denominator. The legend's score is "
        f"AlgoPerf's: the area under ρ over 1 ≤ τ ≤ {aggregate.TAU_MAX:g} (dotted), over "
        f"{aggregate.TAU_MAX - 1:g} (1: fastest on every task). One panel per metric group: "
        "metrics are never pooled."), figure)]


def aggregate_scores(data: ReportData) -> list[Drawn]:
    """rliable (Agarwal et al. 2021): per metric group, each optimizer's IQM of normalized
    scores and the probability of improvement of each pair, with stratified-bootstrap 95 %
    intervals."""
    if data.runs.empty:
        raise Skip("no finished blocks")
    scores = aggregate.normalized_scores(data.runs, *data.plans)
    iqms = aggregate.aggregate_scores(scores)
    pairs = aggregate.improvement_probabilities(scores)
    metrics = list(dict.fromkeys(iqms["metric"]))
    rows = max(len(iqms) // len(metrics), len(pairs) // len(metrics), 1)
    figure, axes = plt.subplots(len(metrics), 2, figsize=(10.0, (1.3 + 0.4 * rows) * len(
        metrics)), squeeze=False)
    look = style.looks(data.optimizers)
    for (left, right), metric in zip(axes, metrics, strict=True):
        mine = iqms[iqms["metric"] == metric].set_index("optimizer")
        mine = mine.reindex([o for o in data.optimizers if o in mine.index])
        _intervals(left, list(mine.index), mine, "iqm",
                   [look[o].color for o in mine.index])
        left.set_xlim(-0.02, 1.02)
        left.set_xlabel("IQM of normalized score (0 worst, 1 best)")
        left.set_ylabel("optimizer")
        left.set_title(f"{_group_title(metric)}: {int(mine['tasks'].max())} task(s)")
        mine = pairs[pairs["metric"] == metric]
        if mine.empty:
            _blank(right, "one optimizer on these tasks:\nno pair to compare")
            right.set_yticks([])
        else:
            _intervals(right, [f"{x} > {y}" for x, y in zip(mine["x"], mine["y"],
                                                             strict=True)],
                       mine.reset_index(drop=True), "probability", ["black"] * len(mine))
            right.axvline(0.5, color="grey", linewidth=0.6, linestyle=":")
        right.set_xlim(-0.02, 1.02)
        right.set_xlabel("probability of improvement, P(X > Y)")
        right.set_ylabel("pair (X > Y)")
        right.set_title(f"{_group_title(metric)}: X > Y")
    figure.tight_layout()
    return [Drawn("aggregate-scores", "Aggregate scores with interval estimates", (
        "rliable (Agarwal et al. 2021), per metric group (never pooled across metrics), over "
        "the runs (seeds × starts) at each optimizer's chosen setting. Scores are "
        "normalized per task to [0, 1], higher better: an accuracy as it is (an R² below "
        "0 counts 0); f − f_min as min–max of log10 over all the task's runs (every "
        "setting's), 1 at the lowest (values below the tightest target / 10 count as "
        "that), 0 at the highest finite one; a diverged run scores 0. Left: the "
        "interquartile mean (mean of the middle 50 % of the tasks × runs scores), robust "
        "to outlying runs and tasks. Right: the probability that a random run of X beats "
        "a random run of Y on a task (ties count half; the Mann–Whitney statistic), "
        "averaged over the tasks both ran; above 0.5 (dotted) favours X. Bars: 95 % "
        "stratified bootstrap intervals (runs resampled within each task, 2000 "
        "resamples; where an optimizer's seeds all ran each start's run alike, as with "
        "fixed starts and exact gradients, its starts are resampled, each with its "
        "copies); a bar of zero width means the runs agree (e.g. every seed from the "
        "same start)."), figure)]


def _intervals(ax: plt.Axes, labels: list[str], frame: pd.DataFrame, column: str,
               colors: list) -> None:
    """One labelled point with its interval per row, top to bottom, its value written."""
    y = np.arange(len(labels))[::-1]
    for yi, (_, row), color in zip(y, frame.iterrows(), colors, strict=True):
        ax.errorbar(row[column], yi, xerr=[[row[column] - row["low"]],
                                           [row["high"] - row[column]]],
                    fmt="o", color=color, capsize=3, markersize=5)
        value = row[column]  # written inside the panel, also at its edges
        ax.annotate(f"{value:.2f} [{row['low']:.2f}, {row['high']:.2f}]", (value, yi),
                    xytext=(0, 6), textcoords="offset points", fontsize=7,
                    ha="left" if value < 0.2 else "right" if value > 0.8 else "center")
    ax.set_yticks(y, labels)
    ax.set_ylim(-0.7, len(labels) - 0.3)


def across_tasks(data: ReportData) -> list[Drawn]:
    """The performance profiles (in steps and in seconds) and the aggregate scores: the
    comparisons across tasks."""
    return [*performance_profile(data), *performance_profile(data, "seconds"),
            *aggregate_scores(data)]
