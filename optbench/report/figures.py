"""The report's figures: each function draws from :class:`ReportData` or raises
:class:`Skip` saying which data it lacks. Every figure comes with a caption that says exactly
what is plotted and how settings were picked."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from optbench.analysis import reference_deviation
from optbench.engine import params as kept
from optbench.report import interpolation, slices, style
from optbench.report.data import ReportData, quartiles
from optbench.store import target_column

BEST = ("each optimizer at its best setting on the task (lowest median final value over "
        "seeds and starts, highest for a maximized metric such as validation accuracy; ties: "
        "lowest share diverged, then lowest ERT at the tightest target)")
NETWORK_METRICS = ("train_loss", "valid_loss", "test_loss", "valid_accuracy", "test_accuracy")
SOURCES = ("gd", "sgd", "minibatch")  # full batch, one example, a mini-batch
ZERO = ("Exact zeros are drawn on the dotted line marked \"0 (exact)\", half a decade below "
        "the smallest positive value of their panel.")



class Skip(Exception):  # noqa: N818  (a signal, not an error)
    """The data this figure needs is absent; the message says which."""


@dataclass
class Drawn:
    """A drawn figure: file stem, title, caption and the matplotlib figure; ``table``: the
    numbers it shows, written beside it (``<name>.csv``, ``.md``) and listed under Tables."""

    name: str
    title: str
    caption: str
    figure: plt.Figure
    table: pd.DataFrame | None = None


def _curve_quartiles(data: ReportData, runs: pd.DataFrame, metric: str) -> pd.DataFrame:
    curves = data.curves[data.curves["run_id"].isin(runs["run_id"])][["run_id", "step", metric]]
    curves = curves.merge(runs[["run_id", "task", "optimizer"]], on="run_id")
    return quartiles(curves, ["task", "optimizer", "step"], metric)


CROWDED = 3  # wide IQR bands over one value at most steps: drawn as thin lines, not fills
WIDE = 0.05  # a band at least this share of the panel's (log) height hides what is behind


def _overlap(lo: np.ndarray, hi: np.ndarray) -> int:
    """The most of the intervals [lo, hi] that cover one point (one of their lower ends)."""
    covers = (lo[None, :] <= lo[:, None]) & (lo[:, None] <= hi[None, :])
    return int(covers.sum(axis=1).max(initial=0))


def crowded_bands(steps: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> bool:
    """Whether, at most steps, :data:`CROWDED` or more wide IQR bands (``lo`` to ``hi`` in
    the axis's own coordinates, log10 on a log axis; at least :data:`WIDE` of the panel's
    height) cover one value: filled, they stack into one solid block."""
    shown = np.isfinite(lo) & np.isfinite(hi)
    if not shown.any():
        return False
    wide = shown & (hi - lo >= WIDE * max(hi[shown].max() - lo[shown].min(), 1e-12))
    bands = pd.DataFrame({"step": steps, "lo": lo, "hi": hi})[wide]
    depths = {step: _overlap(at["lo"].to_numpy(), at["hi"].to_numpy())
              for step, at in bands.groupby("step")}
    return float(np.median([depths.get(step, 0) for step in np.unique(steps)])) >= CROWDED


def coinciding(stats: pd.DataFrame, optimizers: list[str]) -> list[list[str]]:
    """Groups (two or more) of optimizers whose median and IQR curves are identical, so
    that only the last drawn of each group shows."""
    curves = {o: s[["step", "q25", "median", "q75"]].to_numpy(float)
              for o, s in stats.groupby("optimizer", sort=False)}
    groups: list[list[str]] = []
    for name in (o for o in optimizers if o in curves):
        same = next((g for g in groups if curves[g[0]].shape == curves[name].shape
                     and np.allclose(curves[g[0]], curves[name], rtol=1e-7, atol=0,
                                     equal_nan=True)), None)
        if same is None:
            groups.append([name])
        else:
            same.append(name)
    return [g for g in groups if len(g) > 1]


def _coincide_note(group: list[str], noise: float | None) -> str:
    why = (" (noise 0)" if noise == 0 and set(group) <= set(SOURCES) else "")
    return f"{', '.join(group)} coincide{why}"


def _diverged_notes(runs: pd.DataFrame) -> list[str]:
    """Per optimizer of one panel's ``runs``, how many diverged: their curves stay at their
    last valid record, so a median over them can look finite where the table's is not."""
    counts = runs.groupby("optimizer", sort=False)["diverged"].agg(["sum", "size"])
    return [f"{optimizer}: {int(n)} of {total} runs diverged (held at their last record)"
            for optimizer, (n, total) in counts.iterrows() if n]


def _metric_panel(ax: plt.Axes, data: ReportData, stats: pd.DataFrame, metric: str,
                  noise: float | None = None, diverged: list[str] = ()) -> None:
    """Median line and IQR per optimizer. On a log axis, exact zeros go to the panel's own
    :func:`style.zero_floor`, marked; notes name coinciding curves (``noise``: the task's
    gradient noise, to say why), bands drawn as lines because they crowd, and
    ``diverged`` (:func:`_diverged_notes`)."""
    look = style.looks(data.optimizers)
    log = not style.is_accuracy(metric)
    floor = style.zero_floor(stats[["q25", "median", "q75"]].to_numpy()) if log else 0.0
    zeros = log and bool((stats[["q25", "median", "q75"]].to_numpy(float) <= 0).any())
    stats = stats[stats["optimizer"].isin(data.optimizers)]
    lo, mid, hi = (stats[c].to_numpy(float) for c in ("q25", "median", "q75"))
    if log:
        lo, mid, hi = (np.where(v <= 0, floor, v) for v in (lo, mid, hi))
    axis = np.log10 if log else np.asarray
    crowded = crowded_bands(stats["step"].to_numpy(), axis(lo), axis(hi))
    for optimizer in data.optimizers:
        mine = (stats["optimizer"] == optimizer).to_numpy()
        if not mine.any():
            continue
        step = stats["step"].to_numpy()[mine]
        color, line = look[optimizer].color, look[optimizer].linestyle
        ax.plot(step, mid[mine], color=color, linestyle=line, label=optimizer, linewidth=1.5)
        if crowded:
            ax.plot(step, lo[mine], step, hi[mine], color=color, linestyle=line,
                    linewidth=0.6, alpha=0.7)
        else:
            ax.fill_between(step, lo[mine], hi[mine], color=color, alpha=0.15, linewidth=0)
    if log:
        style.log_axis(ax, "y")
        if zeros:
            style.mark_zero(ax, floor)
    notes = [_coincide_note(g, noise) for g in coinciding(stats, data.optimizers)]
    if crowded:
        notes.append("IQR bands overlap: drawn as thin lines")
    style.panel_note(ax, [*notes, *diverged])
    ax.set_xlabel(style.STEP)
    ax.set_ylabel(style.metric_label(metric))


def _rows(data: ReportData) -> int:
    return style.legend_rows(data.optimizers)


def _handles(figure: plt.Figure, data: ReportData):
    seen: dict[str, object] = {}
    for ax in figure.axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            seen.setdefault(label, handle)
    labels = [o for o in data.optimizers if o in seen]
    return [seen[label] for label in labels], labels


def convergence(data: ReportData) -> list[Drawn]:
    runs = data.best_runs()
    runs = runs[runs["kind"] == "surface"] if "kind" in runs else runs.iloc[:0]
    if runs.empty or "f_gap" not in data.curves:
        raise Skip("no surface-task results (no f_gap curves) in this folder")
    stats = _curve_quartiles(data, runs, "f_gap")
    tasks = [t for t in data.tasks if t in set(runs["task"])]
    figure, axes = style.grid(len(tasks), cols=3, legend_rows=_rows(data))
    for ax, task in zip(axes, tasks, strict=True):
        _metric_panel(ax, data, stats[stats["task"] == task], "f_gap", _noise(data, task),
                      _diverged_notes(runs[runs["task"] == task]))
        ax.set_title(task)
    style.legend_below(figure, *_handles(figure, data))
    return [Drawn("convergence", "Convergence curves", (
        f"f − f_min against step, {BEST}: the median over seeds and starts (line) and the "
        f"inter-quartile range (band; thin lines where the bands of {CROWDED} or more "
        f"optimizers overlap). Records are those the sweep kept (every "
        f"{data.config.get('record_every') or 'log-spaced'} step(s)). {ZERO} A note names "
        "optimizers whose curves are identical (only the last drawn shows), and how many "
        "runs diverged: their curves stay at their last valid record, so the median can "
        "look finite where the table's, counting them as +inf, is not."), figure)]


def _noise(data: ReportData, task: str) -> float:
    """A surface task's gradient noise (0: exact gradients)."""
    return float(data.task_config(task).get("noise", 0.0))


def training_curves(data: ReportData) -> list[Drawn]:
    """Train, validation and test losses and accuracies against step, for tasks that
    record them."""
    metrics = [m for m in NETWORK_METRICS if m in data.curves]
    if not metrics:
        raise Skip("no network-task results: the curves have no train_loss, valid_loss, "
                   "test_loss or accuracy column")
    runs = data.best_runs()
    curves = data.curves.merge(runs[["run_id", "task"]], on="run_id")
    panels = [(t, m) for t in data.tasks for m in metrics
              if curves.loc[curves["task"] == t, m].notna().any()]
    figure, axes = style.grid(len(panels), cols=len(metrics), legend_rows=_rows(data))
    for ax, (task, metric) in zip(axes, panels, strict=True):
        task_runs = runs[runs["task"] == task]
        stats = _curve_quartiles(data, task_runs, metric)
        _metric_panel(ax, data, stats, metric, diverged=_diverged_notes(task_runs))
        ax.set_title(f"{task}: {metric.replace('_', ' ')}")
    style.legend_below(figure, *_handles(figure, data))
    return [Drawn("training-curves", "Training curves of the data tasks", (
        f"{', '.join(m.replace('_', ' ') for m in metrics)} against step at the record "
        f"points, {BEST}: median over seeds (line) and inter-quartile range (band). A note "
        "counts the runs that diverged: their curves stay at their last valid record."),
        figure)]


def _lr_stats(runs: pd.DataFrame, hyperparameters: Mapping[str, Mapping]
              ) -> tuple[pd.DataFrame, bool]:
    """One task's runs as (task, optimizer, learning rate) quartiles of its final primary
    metric (the one settings are chosen on: a network's validation metric), and whether
    larger is better. At each learning rate, other hyperparameters take their best
    setting."""
    stats = quartiles(runs, ["task", "optimizer", "config", "learning_rate"], "final")
    stats["diverged"] = runs.groupby(["task", "optimizer", "config"], sort=False)[
        "diverged"].mean().to_numpy()
    stats["metric"] = runs["metric"].iloc[0]
    stats["searched_jointly"] = stats["optimizer"].map(_searched_jointly(runs, hyperparameters))
    maximize = bool(runs["maximize"].iloc[0])
    stats = stats.sort_values("median", ascending=not maximize, na_position="last")
    return stats.drop_duplicates(["task", "optimizer", "learning_rate"]), maximize


def _robust_ylim(ax: plt.Axes, medians: np.ndarray, bounded: bool) -> list[str]:
    """Limit a maximized metric's axis to its medians (not the bands), and an unbounded
    one's (R²) less far outliers below (-45 next to values near 0.4); say how many are
    below the axis and the worst."""
    finite = medians[np.isfinite(medians)]
    if not finite.size:
        return []
    q25, q75 = np.percentile(finite, [25, 75])
    low = finite.min() if bounded else max(finite.min(), q25 - 3 * (q75 - q25))  # Tukey's far
    pad = 0.05 * max(finite.max() - low, 1e-3)
    ax.set_ylim(low - pad, finite.max() + pad)
    below = finite[finite < low - pad]
    return ([f"{len(below)} setting(s) below the axis (worst median {below.min():.3g})"]
            if below.size else [])


def _searched_jointly(runs: pd.DataFrame, hyperparameters: Mapping[str, Mapping]
                      ) -> dict[str, bool]:
    """Per optimizer: whether each learning rate is one setting whose other hyperparameters
    vary too (a random or quasirandom search), so neighbouring points are not comparable.
    Only ``hyperparameters[optimizer]``'s names count: a result column differs between
    settings too."""
    out = {}
    for optimizer, own in runs.groupby("optimizer", sort=False):
        per_rate = own.groupby("learning_rate")["config"].nunique()
        swept = [name for name in hyperparameters[optimizer]
                 if name != "learning_rate" and name in own and own[name].nunique() > 1]
        out[optimizer] = bool((per_rate == 1).all() and swept)
    return out


def _one_lr_note(data: ReportData, task: str) -> str:
    stage2 = " (stage 2)" if data.task_config(task).get("grids") else ""
    return f"one learning rate per optimizer{stage2}"


def _lr_points(ax: plt.Axes, o: pd.DataFrame, look: style.Look, floor: float,
               ceiling: float, single: bool) -> None:
    """One optimizer's medians against the learning rate, IQR as a band (as error bars,
    unjoined, where each optimizer has a single learning rate, or where each learning rate
    is one trial of a search that varies other hyperparameters too: neighbours then differ
    in those), crosses at ``ceiling`` where runs diverged; exact zeros at ``floor``,
    infinite quartiles at ``ceiling``."""
    lr = o["learning_rate"].to_numpy(float)
    mid, lo, hi = (np.where(v <= 0, floor, v) if floor else v
                   for v in (o[c].to_numpy(float) for c in ("median", "q25", "q75")))
    lo, hi = (np.where(np.isfinite(v), v, ceiling) for v in (lo, hi))
    ok = np.isfinite(mid)
    if single or o["searched_jointly"].any():
        below, above = (np.clip(d, 0, None) for d in (mid[ok] - lo[ok], hi[ok] - mid[ok]))
        ax.errorbar(lr[ok], mid[ok], yerr=[below, above], marker="o",
                    markersize=6 if single else 3, capsize=4 if single else 0,
                    elinewidth=1 if single else 0.6, linestyle="none", color=look.color,
                    label=o["optimizer"].iloc[0])
    else:
        ax.plot(lr[ok], mid[ok], marker="o", markersize=3, color=look.color,
                linestyle=look.linestyle, label=o["optimizer"].iloc[0])
        ax.fill_between(lr[ok], lo[ok], hi[ok], color=look.color, alpha=0.12, linewidth=0)
    bad = o["diverged"].to_numpy() > 0
    ax.plot(lr[bad], np.full(bad.sum(), ceiling), marker="x", linestyle="none",
            markersize=7, color=look.color)


def lr_sensitivity(data: ReportData) -> list[Drawn]:
    """DeepOBS-style: the final value against the learning rate, diverged runs marked."""
    if "learning_rate" not in data.runs or data.runs["learning_rate"].nunique() < 2:
        raise Skip("the sweep does not vary the learning rate")
    look = style.looks(data.optimizers)
    figure, axes = style.grid(len(data.tasks), cols=3, legend_rows=_rows(data))
    for ax, task in zip(axes, data.tasks, strict=True):
        s, maximize = _lr_stats(data.runs[data.runs["task"] == task], data.hyperparameters)
        finite = s["median"].to_numpy(float)
        finite = finite[np.isfinite(finite)]
        ceiling = (finite.max() * 10 if finite.size else 1.0) if not maximize else 1.0
        floor = 0.0 if maximize else style.zero_floor(s[["q25", "median", "q75"]].to_numpy())
        single = bool(s.groupby("optimizer")["learning_rate"].nunique().max() == 1)
        for optimizer in data.optimizers:
            o = s[s["optimizer"] == optimizer].sort_values("learning_rate")
            if not o.empty:
                _lr_points(ax, o, look[optimizer], floor, ceiling, single)
        style.log_axis(ax, "x")
        notes = [_one_lr_note(data, task)] if single else []
        if maximize:  # the medians' range: a band or one broken setting squashes no others
            notes += _robust_ylim(ax, s["median"].to_numpy(float),
                                  bounded=str(s["metric"].iloc[0]).endswith("accuracy"))
        diverged = bool(s["diverged"].gt(0).any())
        if not maximize:
            style.log_axis(ax, "y")
            if diverged:  # else the line would stretch the axis for nothing
                ax.axhline(ceiling, color="grey", linewidth=0.6, linestyle=":")
            if (s[["q25", "median", "q75"]].to_numpy(float) <= 0).any():
                style.mark_zero(ax, floor)
        style.panel_note(ax, notes)
        ax.set_title(task)
        ax.set_xlabel(style.LEARNING_RATE)
        metric = s["metric"].iloc[0] if "metric" in s else ""
        ax.set_ylabel(f"final {style.metric_label(str(metric))}")
        if not maximize and diverged:
            ax.text(0.99, ceiling, "diverged", transform=ax.get_yaxis_transform(),
                    ha="right", va="bottom", fontsize=8, color="grey")
    style.legend_below(figure, *_handles(figure, data))
    return [Drawn("lr-sensitivity", "Learning-rate sensitivity", (
        "The final value of each task's primary metric (a network's validation metric, on "
        "which settings are chosen) against the learning rate, per optimizer: median over "
        "seeds and starts (line) and inter-quartile range (band; an error bar where each "
        "optimizer has one learning rate, as in stage 2 of the tuning, `optbench sweep "
        "--best-of`). Where other hyperparameters vary too, each "
        "learning rate shows its best setting of them. A cross on the dotted line marks a "
        "learning rate at which at least one run diverged (diverged runs count as +inf in the "
        f"median, so they are shown, not dropped). {ZERO}"), figure)]


def metric_groups(data: ReportData) -> dict[str, list[str]]:
    """The tasks (in the sweep's order) per metric (the runs' ``metric`` column: f_gap,
    valid_accuracy, valid_r2, ...): targets on different metrics never pool, as COCO
    aggregates per function group."""
    metric = data.runs.drop_duplicates("task").set_index("task")["metric"]
    groups: dict[str, list[str]] = {}
    for task in data.tasks:
        groups.setdefault(str(metric[task]), []).append(task)
    return groups


def metric_name(metric: str) -> str:
    """A metric as titles name it: f − f_min, test accuracy."""
    return "f − f_min" if metric == "f_gap" else metric.replace("_", " ")


def _targets_of(data: ReportData, tasks: list[str]) -> list[float]:
    """The targets of ``tasks`` (each task's own), largest first."""
    own = data.plans[0]
    return sorted({t for task in tasks for t in own.get(task, data.targets)}, reverse=True)


def _solved_by_step(runs: pd.DataFrame, columns: dict[str, list[str]],
                    steps: np.ndarray) -> np.ndarray:
    """The fraction of (run, target) pairs solved by each step, per task, averaged over
    the tasks with equal weight."""
    per_task = []
    for task, group in runs.groupby("task"):
        hits = group[columns[task]].to_numpy(float).ravel()  # (runs x targets) pairs
        hits = np.where(np.isnan(hits), np.inf, np.maximum(hits, 1))
        per_task.append((hits[None, :] <= steps[:, None]).mean(axis=1))
    return np.mean(per_task, axis=0)


def ecdf(data: ReportData) -> list[Drawn]:
    """COCO-style data profile: fraction of (task, target, run) solved by each step, one
    panel per metric group."""
    runs = data.best_runs()
    own_targets = data.plans[0]
    columns = {task: [target_column(t) for t in own_targets.get(task, data.targets)
                      if target_column(t) in runs] for task in data.tasks}
    groups = {m: [t for t in tasks if columns[t]] for m, tasks in metric_groups(data).items()}
    groups = {m: tasks for m, tasks in groups.items() if tasks}
    if runs.empty or not groups:
        raise Skip("no steps-to-target columns in the runs table")
    look = style.looks(data.optimizers)
    figure, axes = style.grid(len(groups), cols=2, width=4.6, height=3.2,
                              legend_rows=_rows(data))
    for ax, (metric, tasks) in zip(axes, groups.items(), strict=True):
        mine = runs[runs["task"].isin(tasks)]
        steps = np.unique(np.geomspace(1, max(max(data.plans[1].get(t, data.steps)
                                                   for t in tasks), 1), 200).round())
        for optimizer in data.optimizers:
            theirs = mine[mine["optimizer"] == optimizer]
            if not theirs.empty:
                ax.step(steps, _solved_by_step(theirs, columns, steps), where="post",
                        color=look[optimizer].color, linestyle=look[optimizer].linestyle,
                        label=optimizer, linewidth=1.6)
        style.log_axis(ax, "x")
        ax.set_ylim(0, 1.02)
        ax.set_xlabel(f"{style.STEP}, log")
        ax.set_ylabel(style.SOLVED)
        targets = ", ".join(f"{t:g}" for t in _targets_of(data, tasks))
        ax.set_title(f"{metric_name(metric)}: {len(tasks)} task(s), targets {targets}")
    style.legend_below(figure, *_handles(figure, data))
    return [Drawn("ecdf", "Data profile (ECDF of steps to target)", (
        "One panel per metric (targets on f − f_min and on, say, validation accuracy never "
        "pool): "
        "the fraction of (run, target) pairs solved by each step, averaged over the panel's "
        f"tasks with equal weight, {BEST}, each task with its own targets (named in the "
        "panel's title). A pair is solved at the first step the run's value reached the "
        "target (≤ for f − f_min and losses, ≥ for a maximized metric such as accuracy) "
        "before any divergence (COCO's runtime ECDF)."), figure)]


def chosen_target(table: pd.DataFrame, targets: list[float], target: float | None) -> float:
    """``target`` if given, else the target of the ladder at which the success rates of the
    (task, optimizer) pairs differ most (the loosest such), the most telling one."""
    if target is not None:
        return target
    spread = {t: float(np.nan_to_num(table[f"success@{t:g}"].std(ddof=0)))
              for t in sorted(targets, reverse=True)}
    return max(spread, key=spread.get)


def _blank_reasons(data: ReportData, grid: pd.DataFrame, target: float) -> pd.DataFrame:
    """Why a heatmap cell is empty: the optimizer did not run the task, or the task's own
    targets lack ``target``; "" where the cell has a value."""
    ran = set(zip(data.runs["task"], data.runs["optimizer"], strict=True))
    return pd.DataFrame(
        [["" if pd.notna(grid.loc[o, t]) else "not run" if (t, o) not in ran
          else f"no target\n{target:g}" for t in grid.columns] for o in grid.index],
        index=grid.index, columns=grid.columns)


def _heatmap_panel(ax: plt.Axes, data: ReportData, metric: str, tasks: list[str],
                   target: float, cbar_ax: plt.Axes | None) -> None:
    """Success rates at ``target`` of ``metric``'s tasks, a row per optimizer of the sweep
    (rows align across panels), blank cells saying why."""
    table = data.convergence[data.convergence["task"].isin(tasks)]
    grid = table.pivot(index="optimizer", columns="task", values=f"success@{target:g}")
    grid = grid.reindex(index=data.optimizers, columns=[t for t in tasks if t in grid.columns])
    sns.heatmap(grid, annot=True, fmt=".0%", vmin=0, vmax=1, cmap=style.HEATMAP_CMAP, ax=ax,
                cbar=cbar_ax is not None, cbar_ax=cbar_ax, linewidths=0.5,
                cbar_kws={"label": "success rate (fraction of runs)"})
    for i, row in enumerate(_blank_reasons(data, grid, target).to_numpy()):
        for j, reason in enumerate(row):
            if reason:
                ax.text(j + 0.5, i + 0.5, reason, ha="center", va="center", fontsize=8,
                        color="dimgrey")
    ax.grid(False)
    sign = "≥" if data.runs.loc[data.runs["task"].isin(tasks), "maximize"].any() else "≤"
    ax.set_title(f"{metric_name(metric)} {sign} {target:g}")
    ax.set_xlabel("task")
    ax.set_ylabel("optimizer")
    plt.setp(ax.get_xticklabels(), rotation=20, ha="right")


def success_heatmap(data: ReportData, target: float | None = None) -> list[Drawn]:
    """Success rates per optimizer and task at one target per metric group (each group's
    own targets; ``target`` where a group has it)."""
    if data.runs.empty:
        raise Skip("no finished blocks")
    panels = []
    for metric, tasks in metric_groups(data).items():
        ladder = _targets_of(data, tasks)
        table = data.convergence[data.convergence["task"].isin(tasks)]
        panels.append((metric, tasks, chosen_target(
            table, ladder, target if target in ladder else None)))
    widths = [len(tasks) + 0.4 for _, tasks, _ in panels]
    rows = len(data.optimizers)
    figure, axes = plt.subplots(
        1, len(panels) + 1, figsize=(2.2 + 1.4 * sum(widths), 1.4 + 0.42 * rows),
        gridspec_kw={"width_ratios": [*widths, 0.15]}, squeeze=False)
    for k, (ax, (metric, tasks, chosen)) in enumerate(zip(axes[0], panels, strict=False)):
        _heatmap_panel(ax, data, metric, tasks, chosen,
                       axes[0][-1] if k == len(panels) - 1 else None)
        if k:  # the rows align: one column of optimizer names
            ax.set_ylabel("")
            ax.tick_params(labelleft=False)
    figure.tight_layout()
    named = ", ".join(f"{t:g} ({metric_name(m)})" for m, _, t in panels)
    return [Drawn("success-heatmap", f"Success rate at target {named}", (
        "One panel per metric, each at one of its own tasks' targets (named in the panel's "
        f"title): the fraction of runs that reached the target (≤ for f − f_min and losses, "
        f"≥ for a maximized metric such as validation accuracy) before diverging, {BEST}. Unless "
        "chosen with --target, a panel's target is the one of its tasks' ladder at which the "
        "success rates differ most. A blank cell says why: the optimizer did not run the "
        "task, or the task's targets do not include the panel's."), figure)]


def optax_comparison(data: ReportData) -> list[Drawn]:
    if data.reference_curves is None:
        raise Skip("no optax re-run in this folder (run `optbench table DIR --reference "
                   "optax` first)")
    deviation = reference_deviation(data.curves, data.reference_curves, data.runs)
    deviation = deviation.reindex([o for o in data.optimizers if o in deviation.index])
    figure, ax = plt.subplots(figsize=(6.5, 3.2))
    _deviation_bars(ax, deviation, style.looks(data.optimizers))
    figure.tight_layout()
    worst = float(deviation.max())
    return [Drawn("optax-comparison", "Comparison with optax", (
        "Per optimizer, the maximum over its runs of max_t |f_t − g_t| / max_t |g_t|, where f "
        "is optbench's recorded f − f_min curve and g that of the same run re-done with "
        f"optax's implementation. The worst is {worst:.1e}: a deviation of 1e-6 means the two "
        "curves agree to about six significant digits; in float32, long trajectories on "
        "chaotic surfaces can drift further apart by rounding alone, and an infinite "
        "deviation (∞ at the top) means one of the two diverged where the other did not. An "
        "optimizer whose curves agree exactly has no bar: \"0 (exact)\" on the dotted "
        "line."), figure)]


def _deviation_bars(ax: plt.Axes, deviation: pd.Series, look: dict[str, style.Look]) -> None:
    """A bar per optimizer with a positive finite deviation, on a log axis; an exact zero
    is a marker on the dotted "0 (exact)" line (never a bar to a tiny value), an infinite
    one a marker labelled ∞ at the top, an undefined one (NaN) says so."""
    values = deviation.to_numpy(float)
    floor = style.zero_floor(values)
    positive = np.isfinite(values) & (values > 0)
    top = values[positive].max() * 10 if positive.any() else floor * 100
    x = np.arange(len(values))
    colors = [look[o].color for o in deviation.index]
    ax.bar(x[positive], values[positive] - floor, bottom=floor,
           color=[c for c, p in zip(colors, positive, strict=True) if p])
    for xi, value in zip(x, values, strict=True):
        if value == 0 or np.isinf(value):
            ax.plot(xi, floor if value == 0 else top, marker="o", markersize=6,
                    color=colors[xi], markeredgecolor="black", linestyle="none")
        if np.isinf(value):
            ax.text(xi, top, "  ∞", ha="left", va="center", fontsize=9)
        if np.isnan(value):  # no step where the two curves are comparable
            ax.text(xi, floor, "undefined", ha="center", va="bottom", fontsize=7,
                    color="dimgrey")
    style.log_axis(ax, "y")
    ax.set_ylim(floor / 3, top * 3)
    if (values == 0).any():
        style.mark_zero(ax, floor)
    if not positive.any():  # no scale to read: only zeros and infinities
        ax.set_yticks([floor], ["0"])
    ax.set_xticks(x, deviation.index, rotation=30)
    ax.set_ylabel("max relative deviation (log)")
    ax.set_xlabel("optimizer")


def _network_tasks(data: ReportData) -> list[str]:
    return slices.network_tasks(data.config, data.tasks)


def _log10_loss(values: np.ndarray) -> np.ndarray:
    """log10 of a loss grid for contours, non-finite values drawn as very high."""
    return np.log10(np.clip(np.nan_to_num(values, nan=1e30), 1e-12, 1e30))


def landscape_slices(data: ReportData) -> list[Drawn]:
    """Li et al. 2018: the training loss around each optimizer's trained parameters, 1-D and
    2-D, along filter-normalized random directions (see :mod:`optbench.report.slices`)."""
    if not slices.params_folder(data.directory).is_dir():
        raise Skip("no kept network parameters in this folder (loss-landscape slices need a "
                   "network task that keeps its trained parameters)")
    chosen = {t: slices.chosen_runs(data.best_runs(), t, data.optimizers, data.directory)
              for t in _network_tasks(data)}
    chosen = {t: c for t, c in chosen.items() if c}
    if not chosen:
        raise Skip("kept parameters, but of no network task (loss-landscape slices need a "
                   "network task's training loss)")
    return [_slice_figure(data, task, slices.task_slices(data.directory, data.config, task,
                                                         runs))
            for task, runs in chosen.items()]


def _slice_figure(data: ReportData, task: str, found: list[slices.Slices]) -> Drawn:
    look = style.looks(data.optimizers)
    figure, axes = style.grid(len(found) + 1, cols=3, legend_rows=_rows(data))
    for s in found:
        axes[0].plot(s.alphas_1d, np.clip(s.values_1d, 1e-12, None), marker=".",
                     color=look[s.optimizer].color, linestyle=look[s.optimizer].linestyle,
                     label=s.optimizer)
    style.log_axis(axes[0], "y")
    axes[0].axvline(0, color="grey", linewidth=0.6)
    axes[0].set_xlabel("α (filter-normalized direction)")
    axes[0].set_ylabel("train loss (log)")
    axes[0].set_title(f"{task}: 1-D slices")
    logs = [_log10_loss(s.values_2d) for s in found]
    levels = np.linspace(min(v.min() for v in logs), max(v.max() for v in logs), 17)
    for ax, s, values in zip(axes[1:], found, logs, strict=True):  # one scale for all
        ax.contourf(s.alphas_2d, s.alphas_2d, values, levels=levels, cmap=style.HEATMAP_CMAP)
        lines = ax.contour(s.alphas_2d, s.alphas_2d, values, levels=levels[::2],
                           colors="white", linewidths=0.5, linestyles="solid")
        ax.clabel(lines, fontsize=7, fmt="%.1f")
        ax.plot(0, 0, marker="*", color="white", markeredgecolor="black", markersize=11)
        ticks = np.linspace(-slices.RADIUS, slices.RADIUS, 5)
        ax.set_xticks(ticks)
        ax.set_yticks(ticks)
        ax.set_xlabel("α")
        ax.set_ylabel("β")
        ax.set_title(f"{s.optimizer}: log10 train loss")
    style.legend_below(figure, *_handles(figure, data))
    runs = ", ".join(f"{s.optimizer}: {s.run_id}" for s in found)
    return Drawn(f"landscape-slices-{task}", f"Loss-landscape slices on {task}", (
        f"The training loss (mean over the training split, no dropout) around each "
        f"optimizer's trained parameters θ, {BEST}, lowest seed ({runs}). Left: "
        f"L(θ + α·δ) at {slices.POINTS_1D} points α ∈ [−{slices.RADIUS:g}, "
        f"{slices.RADIUS:g}], one line per optimizer. Other panels: log10 L(θ + α·δ + β·η) "
        f"on a {slices.POINTS_2D}×{slices.POINTS_2D} grid (labelled contours, one colour "
        "scale for all panels), θ at the star. δ and η are "
        "Gaussian random directions, filter-normalized as in Li et al. (2018): each output "
        "unit's (neuron's or conv filter's) part is scaled to that unit's norm in θ, and "
        "biases are not moved; every optimizer gets the same random draw, normalized to its "
        "own θ, so α = 1 is a step as large as the weights. The training path on its top-2 "
        "PCA directions is the next figure (with keep_params = \"best\")."), figure)


def training_paths(data: ReportData) -> list[Drawn]:
    """Li et al. 2018, section 7: each optimizer's training path projected on its top-2 PCA
    directions, over the training loss on that plane (see :mod:`optbench.report.slices`)."""
    if not any(slices.params_folder(data.directory).glob("*.path.npz")):
        raise Skip('no kept parameter paths in this folder (keep_params = "best" keeps the '
                   "path of each network block's best setting)")
    chosen = {t: slices.chosen_runs(data.best_runs(), t, data.optimizers, data.directory,
                                    kept.path_name)
              for t in _network_tasks(data)}
    found = {t: slices.task_paths(data.directory, data.config, t, c)
             for t, c in chosen.items() if c}
    found = {t: f for t, f in found.items() if f}
    if not found:
        raise Skip("kept paths, but none of a network task's best runs")
    return [_path_figure(data, task, planes) for task, planes in found.items()]


def _path_figure(data: ReportData, task: str, planes: list[slices.PathPlane]) -> Drawn:
    look = style.looks(data.optimizers)
    figure, axes = style.grid(len(planes), cols=3, legend_rows=_rows(data))
    for ax, p in zip(axes, planes, strict=True):
        values = _log10_loss(p.values_2d)
        ax.contourf(*p.axes, values, levels=15, cmap=style.HEATMAP_CMAP)
        lines = ax.contour(*p.axes, values, levels=8, colors="white", linewidths=0.5,
                           linestyles="solid")
        ax.clabel(lines, fontsize=7, fmt="%.1f")
        ax.plot(*p.coords.T, marker=".", color=look[p.optimizer].color,
                linestyle=look[p.optimizer].linestyle, label=p.optimizer, linewidth=1.6)
        ax.plot(*p.coords[0], marker="o", color="white", markeredgecolor="black")
        ax.plot(0, 0, marker="*", color="white", markeredgecolor="black", markersize=11)
        ax.set_xlabel(f"PC1 ({p.explained[0]:.0%} of the path's variance)")
        ax.set_ylabel(f"PC2 ({p.explained[1]:.0%})")
        ax.set_title(f"{p.optimizer}: log10 train loss")
    style.legend_below(figure, *_handles(figure, data))
    runs = ", ".join(f"{p.optimizer}: {p.run_id}" for p in planes)
    return Drawn(f"training-paths-{task}", f"Training paths on {task}", (
        f"Each optimizer's parameters at the record points, {BEST}, lowest seed ({runs}), "
        "projected on the top-2 principal directions of that path (PCA of the points "
        "relative to the final one, as in Li et al. 2018, section 7), over log10 of the "
        "training loss on that plane (labelled contours; each panel its own scale). The "
        "path starts at the circle and ends at the star; axes are distances in parameter "
        "space, and the share of the path's variance that each direction holds is in its "
        "label: near 100 % together, the path is almost flat in this plane."), figure)


def interpolations(data: ReportData) -> list[Drawn]:
    """Goodfellow et al. 2015, Lucas et al. 2021: the losses along the segments from
    initialization to each solution and between two solutions of one seed (see
    :mod:`optbench.report.interpolation`), with their barriers."""
    if not slices.params_folder(data.directory).is_dir():
        raise Skip("no kept network parameters in this folder (linear interpolations need a "
                   "network task that keeps its trained parameters: keep_params = true)")
    found = {t: interpolation.task_segments(data.directory, data.config, t, data.best_runs(),
                                            data.optimizers)
             for t in _network_tasks(data)}
    found = {t: s for t, s in found.items() if s}
    if not found:
        raise Skip("kept parameters, but of no network task's best setting")
    return [_interpolation_figure(data, task, segments) for task, segments in found.items()]


def _interpolation_panel(ax: plt.Axes, segments: list[interpolation.Segment], split: int,
                         colors: list, lines: list[str]) -> None:
    """One split's loss along ``segments``: the median over runs (line) and their range
    (band), labelled with the median barrier; exact zeros on the marked floor."""
    values = np.concatenate([s.losses[:, split] for s in segments])
    floor = style.zero_floor(values)
    for s, color, line in zip(segments, colors, lines, strict=True):
        mine = np.where(s.losses[:, split] <= 0, floor, s.losses[:, split])
        b = s.barriers[:, split]
        spread = f" [{b.min():.3g}, {b.max():.3g}]" if len(b) > 1 else ""
        ax.plot(interpolation.ALPHAS, np.median(mine, axis=0), color=color, linestyle=line,
                marker=".", label=f"{s.label}: barrier {np.median(b):.3g}{spread}")
        if len(mine) > 1:
            ax.fill_between(interpolation.ALPHAS, mine.min(axis=0), mine.max(axis=0),
                            color=color, alpha=0.15, linewidth=0)
    style.log_axis(ax, "y")
    if (values <= 0).any():
        style.mark_zero(ax, floor)
    ax.set_xlim(0, 1)
    ax.legend(loc="best", fontsize=7)


def _interpolation_figure(data: ReportData, task: str,
                          segments: list[interpolation.Segment]) -> Drawn:
    starts = [s for s in segments if len(s.optimizers) == 1]
    pairs = [s for s in segments if len(s.optimizers) == 2]
    look = style.looks(data.optimizers)
    rows = [(starts, [look[s.optimizers[0]].color for s in starts],
             [look[s.optimizers[0]].linestyle for s in starts], "θ₀ → θ_T",
             "α (0: initialization θ₀, 1: solution θ_T)")]
    if pairs:
        rows.append((pairs, sns.color_palette("dark", len(pairs)), ["-"] * len(pairs),
                     "between solutions", "α (0: the first optimizer's θ_T, 1: the second's)"))
    figure, axes = style.grid(2 * len(rows), cols=2, width=4.2, height=3.0)
    for k, (group, colors, lines, what, xlabel) in enumerate(rows):
        for split, name in enumerate(interpolation.SPLITS):
            ax = axes[2 * k + split]
            _interpolation_panel(ax, group, split, colors, lines)
            ax.set_title(f"{task}: {name} loss, {what}")
            ax.set_xlabel(xlabel)
            ax.set_ylabel(f"{name} loss (log)")
    seeds = ", ".join(str(v) for v in sorted({int(x) for s in starts for x in s.seeds}))
    no_pairs = "" if pairs else (" No two optimizers have kept parameters of the same seed "
                                 "and start on this task, so there is no second row.")
    return Drawn(f"interpolation-{task}", f"Linear interpolation on {task}", (
        "The mean training and test loss (the task's loss, no dropout) along "
        "θ(α) = (1 − α)·θ_a + α·θ_b at "
        f"{interpolation.POINTS} evenly spaced α from 0 to 1 (Goodfellow, Vinyals & Saxe "
        "2015; Lucas et al. 2021). Top: from each run's initialization θ₀ to its final "
        f"parameters θ_T, for every run of each optimizer's best setting ({BEST}; seeds "
        f"{seeds}). Bottom: between two optimizers' final parameters from the same seed and "
        "start, which trained from the same θ₀. Line: the median over the runs (pairs) at "
        "each α; band: their range. The barrier of a segment is the largest loss on the grid "
        "minus the larger of its two ends (0: the loss never rises above its ends; exactly "
        "0, the ends being grid points); the legend gives its median over the runs and, in "
        "brackets, its range; the table "
        f"interpolation-{task}.csv (under Tables) gives every number.{no_pairs}"),
        figure, interpolation.barrier_table(task, segments))


def gradient_norms(data: ReportData) -> list[Drawn]:
    layers = sorted((c for c in data.curves if c.startswith("grad_norm_layer")),
                    key=lambda c: int(c.removeprefix("grad_norm_layer")))
    if not layers or "grad_norm" not in data.curves:
        raise Skip("no per-layer gradient-norm columns (grad_norm_*) in the curves")
    runs = data.best_runs()
    curves = data.curves.dropna(subset=["grad_norm"])
    tasks = [t for t in data.tasks
             if runs.loc[runs["task"] == t, "run_id"].isin(curves["run_id"]).any()]
    figure, axes = style.grid(len(tasks), cols=3)
    palette = sns.color_palette("rocket", len(layers))  # dark: the first layer
    for ax, task in zip(axes, tasks, strict=True):
        mine = curves[curves["run_id"].isin(runs.loc[runs["task"] == task, "run_id"])]
        medians = mine.groupby("step")[["grad_norm", *layers]].median()
        ax.plot(medians.index, medians["grad_norm"], color="black", linestyle="--",
                label="all layers")
        for color, column in zip(palette, layers, strict=True):
            if medians[column].notna().any():  # shallower networks lack the deep layers
                ax.plot(medians.index, medians[column], color=color,
                        label=f"layer {column.removeprefix('grad_norm_layer')}")
        style.log_axis(ax, "y")
        ax.set_xlabel(style.STEP)
        ax.set_ylabel("gradient norm (log)")
        ax.set_title(task)
    axes[-1].legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), title="layer")
    figure.tight_layout()
    return [Drawn("gradient-norms", "Per-layer gradient norms", (
        "The median, over the runs at each optimizer's best setting, of each weighted "
        "layer's gradient norm (layer 1 is the first dense or conv layer, darkest) and of "
        "the whole gradient (dashed), against step, on each network task; a norm falling "
        "by decades from the last layer to the first shows vanishing gradients, a rising "
        "one exploding gradients."), figure)]


def generalization_gap(data: ReportData) -> list[Drawn]:
    if not {"train_loss", "test_loss"} <= set(data.curves):
        raise Skip("no train_loss and test_loss curves (the dropout train/test gap needs a "
                   "data task)")
    runs = data.best_runs()
    curves = data.curves.dropna(subset=["train_loss", "test_loss"]).copy()
    curves["gap"] = curves["test_loss"] - curves["train_loss"]
    tasks = [t for t in data.tasks if t in set(runs.loc[runs["run_id"].isin(curves["run_id"]),
                                                        "task"])]
    look = style.looks(data.optimizers)
    figure, axes = style.grid(len(tasks), cols=3, legend_rows=_rows(data))
    for ax, task in zip(axes, tasks, strict=True):
        mine = runs[runs["task"] == task]
        c = curves.merge(mine[["run_id", "optimizer"]], on="run_id")
        for optimizer, group in c.groupby("optimizer", sort=False):
            median = group.groupby("step")["gap"].median()
            ax.plot(median.index, median.to_numpy(), color=look[optimizer].color,
                    linestyle=look[optimizer].linestyle, label=optimizer)
        ax.axhline(0, color="grey", linewidth=0.6)
        ax.set_xlabel(style.STEP)
        ax.set_ylabel("test − train loss (the task's loss)")
        ax.set_title(task)
    limits = [ax.get_ylim() for ax in axes]
    for ax in axes:  # one scale, so that the gaps compare across tasks
        ax.set_ylim(min(lo for lo, _ in limits), max(hi for _, hi in limits))
    style.legend_below(figure, *_handles(figure, data))
    return [Drawn("generalization-gap", "Train/test gap", (
        f"Test loss minus train loss against step, median over seeds, {BEST}, on one scale "
        "for all panels. With dropout tasks in the sweep, compare tasks with and without "
        "dropout: a smaller gap is less overfitting."), figure)]


def gradient_sources(data: ReportData) -> list[Drawn]:
    """GD vs SGD vs mini-batch SGD: on each surface that ran all three, per step; on each
    dataset whose networks ran all three (one task, or one per method with its own step
    budget), per training example seen."""
    if "method" not in data.runs:
        raise Skip("no task was run with all of gd, sgd and minibatch")
    runs = data.best_runs()
    runs = runs[runs["method"].isin(SOURCES)]
    surfaces = runs[runs["kind"] == "surface"] if "kind" in runs else runs.iloc[:0]
    networks = runs[runs["dataset"].notna()] if "dataset" in runs else runs.iloc[:0]
    tasks = [t for t in data.tasks
             if set(SOURCES) <= set(surfaces.loc[surfaces["task"] == t, "method"])]
    datasets = [] if networks.empty else [d for d, group in networks.groupby("dataset", sort=False)
                                          if set(SOURCES) <= set(group["method"])]
    drawn = []
    if tasks and "f_gap" in data.curves:
        drawn.append(_sources_per_step(data, surfaces[surfaces["task"].isin(tasks)], tasks))
    if datasets:
        drawn.append(_sources_per_example(data, networks[networks["dataset"].isin(datasets)],
                                          datasets))
    if not drawn:
        raise Skip("no task (or, for networks, no dataset) was run with all of gd, sgd and "
                   "minibatch")
    return drawn


def _sources_per_step(data: ReportData, runs: pd.DataFrame, tasks: list[str]) -> Drawn:
    stats = _curve_quartiles(data, runs, "f_gap")
    figure, axes = style.grid(len(tasks), cols=3, legend_rows=_rows(data))
    for ax, task in zip(axes, tasks, strict=True):
        _metric_panel(ax, data, stats[stats["task"] == task], "f_gap", _noise(data, task),
                      _diverged_notes(runs[runs["task"] == task]))
        ax.set_title(f"{task} (gradient noise {_noise(data, task):g})")
    style.legend_below(figure, *_handles(figure, data))
    return Drawn("gradient-sources", "GD vs SGD vs mini-batch SGD", (
        "Full-batch gradient descent, single-sample SGD and mini-batch SGD on each task that "
        f"ran all three, {BEST}: median and inter-quartile range over seeds. On a surface "
        "with gradient noise, SGD sees the per-sample noise and a mini-batch of B samples "
        f"1/√B of it; without noise the three are one method and their curves coincide. "
        f"{ZERO}"), figure)


def _sources_per_example(data: ReportData, runs: pd.DataFrame, datasets: list[str]) -> Drawn:
    """Train loss and the primary metric against training examples seen: a GD step sees
    the whole training split, an SGD step one example, a mini-batch step its batch."""
    per_step = np.select([runs["method"] == "gd", runs["method"] == "sgd"],
                         [runs["n_train"], 1], runs["batch_size"])
    # each (task, optimizer) its own: one task may run all three methods
    per_step = pd.Series(per_step, runs.index).groupby([runs["task"], runs["optimizer"]]).first()
    look = style.looks(data.optimizers)
    figure, axes = style.grid(2 * len(datasets), cols=2, legend_rows=_rows(data))
    for k, dataset in enumerate(datasets):
        mine = runs[runs["dataset"] == dataset]
        metric = mine["metric"].iloc[0]  # valid_accuracy, or valid_r2 for regression
        for ax, column in zip(axes[2 * k:2 * k + 2], ("train_loss", metric), strict=True):
            stats = _curve_quartiles(data, mine, column)
            for (task, optimizer), s in stats.groupby(["task", "optimizer"], sort=False):
                seen = s["step"] * per_step[task, optimizer]
                ax.plot(seen, s["median"], color=look[optimizer].color,
                        linestyle=look[optimizer].linestyle, label=optimizer, linewidth=1.5)
                ax.fill_between(seen, s["q25"], s["q75"], color=look[optimizer].color,
                                alpha=0.15, linewidth=0)
            style.log_axis(ax, "x")
            if column.endswith("loss"):
                style.log_axis(ax, "y")
            ax.set_xlabel("training examples seen (log)")
            ax.set_ylabel(style.metric_label(column))
            ax.set_title(dataset)
    style.legend_below(figure, *_handles(figure, data))
    return Drawn("gradient-sources-examples", "GD vs SGD vs mini-batch SGD per example seen", (
        f"Networks on each dataset that ran all three, {BEST}: the train loss and the "
        "task's metric (validation accuracy, or R²) against the training examples the optimizer "
        "has seen "
        "(a GD step sees the whole training split, an SGD step one example, a mini-batch "
        "step its batch), median and inter-quartile range over seeds. Equal x is an equal "
        "budget of examples (the nn-gd-sgd-minibatch example gives each method its own "
        "task with the step count that makes the three budgets equal)."), figure)


def init_activation(data: ReportData) -> list[Drawn]:
    """The course's initialization study: the final metric per initializer and activation."""
    runs = data.best_runs()
    if not {"initializer", "activation"} <= set(runs):
        raise Skip("no network runs (initializer and activation columns)")
    runs = runs[runs["initializer"].notna() & runs["activation"].notna()]
    if runs["initializer"].nunique() < 2 or runs["activation"].nunique() < 2:
        raise Skip("the network tasks do not vary both initializer and activation")
    metric = runs["metric"].iloc[0]
    grid = runs.pivot_table(index="initializer", columns="activation", values="final",
                            aggfunc="median")
    figure, ax = plt.subplots(figsize=(1.8 + 1.2 * grid.shape[1], 1.2 + 0.5 * grid.shape[0]))
    sns.heatmap(grid, annot=True, fmt=".3g", cmap=style.HEATMAP_CMAP, ax=ax,
                cbar_kws={"label": f"final {metric.replace('_', ' ')}"})
    figure.tight_layout()
    return [Drawn("init-activation", "Initialization × activation", (
        f"The median final {metric.replace('_', ' ')} over the runs at each optimizer's "
        "best setting, per weight initialization and activation (tasks that differ in "
        "both, e.g. the nn-initialization example)."), figure)]


def sharpness(data: ReportData) -> list[Drawn]:
    """One figure per task that recorded ``sharpness``: median and IQR against step at each
    optimizer's best setting, with 2/eta dashed for the plain gradient methods."""
    if "sharpness" not in data.curves:
        raise Skip("no sharpness curves (set sharpness = true in a [[tasks]] table)")
    runs = data.best_runs()
    measured = data.curves.dropna(subset=["sharpness"])["run_id"]
    return [_sharpness_figure(data, task, runs[(runs["task"] == task)
                                               & runs["run_id"].isin(measured)])
            for task in data.tasks if runs.loc[runs["task"] == task, "run_id"].isin(
                measured).any()]


def _sharpness_figure(data: ReportData, task: str, runs: pd.DataFrame) -> Drawn:
    look = style.looks(data.optimizers)
    stats = _curve_quartiles(data, runs, "sharpness")
    figure, (ax,) = style.grid(1, cols=1, width=5.6, height=3.4, legend_rows=_rows(data))
    lines = []
    for optimizer in [o for o in data.optimizers if o in set(stats["optimizer"])]:
        mine = stats[stats["optimizer"] == optimizer]
        colour = look[optimizer].color
        ax.plot(mine["step"], mine["median"], color=colour, label=optimizer, lw=1.5)
        ax.fill_between(mine["step"], mine["q25"], mine["q75"], color=colour, alpha=0.15,
                        linewidth=0)
        threshold = _stability_threshold(runs[runs["optimizer"] == optimizer].iloc[0])
        if threshold is not None:
            lines.append((threshold, colour, optimizer))
    # the axis follows the medians: a few runs frozen where they diverged (far out, sharp)
    # would otherwise stretch the bands over decades
    top = float(np.nanmax(stats["median"]))
    shown = [t for t, _, _ in lines if t <= 1.5 * top]
    for threshold, colour, _ in lines:
        if threshold <= 1.5 * top:
            ax.axhline(threshold, color=colour, ls="--", lw=1)
    notes = [_coincide_note(g, None) for g in coinciding(stats, data.optimizers)]
    notes += [f"limit of {o} = {t:.3g}, above the axis" for t, _, o in lines if t > 1.5 * top]
    # from 0 (or the lowest median, where that is negative: a concave region) to the top,
    # 8 % beyond either end that is not 0
    peak, floor = max([0.0, top, *shown]), min(0.0, float(np.nanmin(stats["median"])))
    pad = 0.08 * (peak - floor) or 1.0
    low, high = floor - (pad if floor < 0 else 0.0), peak + pad
    if float(np.nanmax(stats["q75"])) > high:
        notes.append(f"IQR bands cut at the axis (largest upper quartile "
                     f"{float(np.nanmax(stats['q75'])):.3g})")
    style.panel_note(ax, notes)
    ax.set(xlabel=style.STEP, ylabel="sharpness (top Hessian eigenvalue)", title=task,
           ylim=(low, high))
    style.legend_below(figure, *_handles(figure, data))
    return Drawn(f"sharpness-{task}", f"Sharpness on {task}", (
        f"The top eigenvalue of the Hessian of the training loss (full training split; f on "
        f"a surface) against step, {BEST}: median over seeds (line) and inter-quartile "
        "range (band). Dashed, in the optimizer's colour: the sharpness above which the "
        "method is unstable on a quadratic at its chosen setting, 2/eta for gd, sgd and "
        "minibatch (where full-batch GD's sharpness settles, Cohen et al. 2021) and "
        "2(1 + beta)/eta for heavy-ball momentum."), figure)


def _stability_threshold(run: pd.Series) -> float | None:
    """The sharpness above which a run's method diverges on a quadratic at its setting:
    2/eta for plain gradient steps, 2(1 + beta)/eta for heavy ball; None for others."""
    eta = float(run.get("learning_rate", np.nan))
    if run["method"] in SOURCES:
        return 2 / eta
    if run["method"] == "momentum":
        return 2 * (1 + float(run["momentum"])) / eta
    return None
