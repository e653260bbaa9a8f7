"""The report's figures: each function draws from :class:`ReportData` or raises
:class:`Skip` saying which data it lacks. Every figure comes with a caption that says exactly
what is plotted and how settings were picked."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from optbench.analysis import reference_deviation
from optbench.engine import params as kept
from optbench.report import comparisons, slices, style
from optbench.report.data import ReportData, quartiles
from optbench.store import target_column

BEST = ("each optimizer at its best setting on the task (lowest median final value over "
        "seeds and starts, highest for a maximized metric such as test accuracy; ties: "
        "lowest ERT at the tightest target)")
NETWORK_METRICS = ("train_loss", "test_loss", "train_accuracy", "test_accuracy")



class Skip(Exception):  # noqa: N818  (a signal, not an error)
    """The data this figure needs is absent; the message says which."""


@dataclass
class Drawn:
    """A drawn figure: file stem, title, caption and the matplotlib figure."""

    name: str
    title: str
    caption: str
    figure: plt.Figure


def floor_of(data: ReportData) -> float:
    """Where values of f - f_min that reached 0 are drawn on a log axis."""
    return min(data.targets) / 10


def _curve_quartiles(data: ReportData, runs: pd.DataFrame, metric: str) -> pd.DataFrame:
    curves = data.curves[data.curves["run_id"].isin(runs["run_id"])][["run_id", "step", metric]]
    curves = curves.merge(runs[["run_id", "task", "optimizer"]], on="run_id")
    return quartiles(curves, ["task", "optimizer", "step"], metric)


def _metric_panel(ax: plt.Axes, data: ReportData, stats: pd.DataFrame, metric: str) -> None:
    look = style.looks(data.optimizers)
    log = not style.is_accuracy(metric)
    floor = floor_of(data)
    for optimizer in data.optimizers:
        s = stats[stats["optimizer"] == optimizer]
        if s.empty:
            continue
        lo, mid, hi = (s[c].to_numpy(float) for c in ("q25", "median", "q75"))
        if log:
            lo, mid, hi = (np.clip(v, floor, None) for v in (lo, mid, hi))
        ax.plot(s["step"], mid, color=look[optimizer].color, linestyle=look[optimizer].linestyle,
                label=optimizer, linewidth=1.5)
        ax.fill_between(s["step"], lo, hi, color=look[optimizer].color, alpha=0.15, linewidth=0)
    if log:
        style.log_axis(ax, "y")
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
        _metric_panel(ax, data, stats[stats["task"] == task], "f_gap")
        ax.set_title(task)
    style.legend_below(figure, *_handles(figure, data))
    return [Drawn("convergence", "Convergence curves", (
        f"f − f_min against step, {BEST}: the median over seeds and starts (line) and the "
        f"inter-quartile range (band). Records are those the sweep kept (every "
        f"{data.config.get('record_every') or 'log-spaced'} step(s)); values that reached 0 "
        f"are drawn at {floor_of(data):g}."), figure)]


def training_curves(data: ReportData) -> list[Drawn]:
    """Train loss, test loss and test accuracy against step, for tasks that record them."""
    metrics = [m for m in NETWORK_METRICS if m in data.curves]
    if not metrics:
        raise Skip("no network-task results: the curves have no train_loss, test_loss or "
                   "test_accuracy column")
    runs = data.best_runs()
    curves = data.curves.merge(runs[["run_id", "task"]], on="run_id")
    panels = [(t, m) for t in data.tasks for m in metrics
              if curves.loc[curves["task"] == t, m].notna().any()]
    figure, axes = style.grid(len(panels), cols=len(metrics), legend_rows=_rows(data))
    for ax, (task, metric) in zip(axes, panels, strict=True):
        task_runs = runs[runs["task"] == task]
        stats = _curve_quartiles(data, task_runs, metric)
        _metric_panel(ax, data, stats, metric)
        ax.set_title(f"{task}: {metric.replace('_', ' ')}")
    style.legend_below(figure, *_handles(figure, data))
    return [Drawn("training-curves", "Training curves of the data tasks", (
        f"{', '.join(m.replace('_', ' ') for m in metrics)} against step at the record "
        f"points, {BEST}: median over seeds (line) and inter-quartile range (band)."), figure)]


def _lr_stats(runs: pd.DataFrame) -> tuple[pd.DataFrame, str, bool]:
    """One task's runs as (task, optimizer, learning rate) quartiles of its final test
    accuracy where it has one, else of its final metric; the column, and whether larger is
    better. At each learning rate, other hyperparameters take their best setting."""
    column = ("final_test_accuracy" if "final_test_accuracy" in runs
              and runs["final_test_accuracy"].notna().any() else "final")
    stats = quartiles(runs, ["task", "optimizer", "config", "learning_rate"], column)
    stats["diverged"] = runs.groupby(["task", "optimizer", "config"], sort=False)[
        "diverged"].mean().to_numpy()
    stats["metric"] = runs["metric"].iloc[0]
    maximize = bool(runs["maximize"].iloc[0]) or column == "final_test_accuracy"
    stats = stats.sort_values("median", ascending=not maximize, na_position="last")
    return stats.drop_duplicates(["task", "optimizer", "learning_rate"]), column, maximize


def lr_sensitivity(data: ReportData) -> list[Drawn]:
    """DeepOBS-style: the final value against the learning rate, diverged runs marked."""
    if "learning_rate" not in data.runs or data.runs["learning_rate"].nunique() < 2:
        raise Skip("the sweep does not vary the learning rate")
    look = style.looks(data.optimizers)
    figure, axes = style.grid(len(data.tasks), cols=3, legend_rows=_rows(data))
    columns = set()
    for ax, task in zip(axes, data.tasks, strict=True):
        s, column, maximize = _lr_stats(data.runs[data.runs["task"] == task])
        columns.add(column)
        finite = s["median"].to_numpy(float)
        finite = finite[np.isfinite(finite)]
        ceiling = (finite.max() * 10 if finite.size else 1.0) if not maximize else 1.0
        for optimizer in data.optimizers:
            o = s[s["optimizer"] == optimizer].sort_values("learning_rate")
            if o.empty:
                continue
            lr = o["learning_rate"].to_numpy(float)
            mid, lo, hi = (o[c].to_numpy(float) for c in ("median", "q25", "q75"))
            if not maximize:
                mid, lo, hi = (np.clip(v, floor_of(data), None) for v in (mid, lo, hi))
            ok = np.isfinite(mid)
            ax.plot(lr[ok], mid[ok], marker="o", markersize=3, color=look[optimizer].color,
                    linestyle=look[optimizer].linestyle, label=optimizer)
            ax.fill_between(lr[ok], np.where(np.isfinite(lo[ok]), lo[ok], ceiling),
                            np.where(np.isfinite(hi[ok]), hi[ok], ceiling),
                            color=look[optimizer].color, alpha=0.12, linewidth=0)
            bad = o["diverged"].to_numpy() > 0
            ax.plot(lr[bad], np.full(bad.sum(), ceiling), marker="x", linestyle="none",
                    markersize=7, color=look[optimizer].color)
        style.log_axis(ax, "x")
        if not maximize:
            style.log_axis(ax, "y")
            ax.axhline(ceiling, color="grey", linewidth=0.6, linestyle=":")
        ax.set_title(task)
        ax.set_xlabel(style.LEARNING_RATE)
        metric = s["metric"].iloc[0] if "metric" in s else ""
        ax.set_ylabel("final test accuracy (fraction)" if column != "final"
                      else f"final {style.metric_label(str(metric))}")
        if not maximize and s["diverged"].gt(0).any():
            ax.text(0.99, ceiling, "diverged", transform=ax.get_yaxis_transform(),
                    ha="right", va="bottom", fontsize=8, color="grey")
    style.legend_below(figure, *_handles(figure, data))
    what = " or ".join(sorted("final test accuracy" if c != "final"
                              else "final value of the task's metric" for c in columns))
    return [Drawn("lr-sensitivity", "Learning-rate sensitivity", (
        f"The {what} against the learning rate, per optimizer: median over seeds and starts "
        "(line) and inter-quartile range (band). Where other hyperparameters vary too, each "
        "learning rate shows its best setting of them. A cross on the dotted line marks a "
        "learning rate at which at least one run diverged (diverged runs count as +inf in the "
        "median, so they are shown, not dropped)."), figure)]


def ecdf(data: ReportData) -> list[Drawn]:
    """COCO-style data profile: fraction of (task, target, run) solved by each step."""
    runs = data.best_runs()
    own_targets = data.plans[0]
    columns = {task: [target_column(t) for t in own_targets.get(task, data.targets)
                      if target_column(t) in runs] for task in data.tasks}
    if runs.empty or not any(columns.values()):
        raise Skip("no steps-to-target columns in the runs table")
    steps = np.unique(np.geomspace(1, max(data.steps, 1), 200).round())
    look = style.looks(data.optimizers)
    figure, ax = plt.subplots(figsize=(6.5, 4.2))
    for optimizer in data.optimizers:
        mine = runs[runs["optimizer"] == optimizer]
        if mine.empty:
            continue
        per_task = []
        for task, group in mine.groupby("task"):
            hits = group[columns[task]].to_numpy(float).ravel()  # (runs x targets) pairs
            hits = np.where(np.isnan(hits), np.inf, np.maximum(hits, 1))
            per_task.append((hits[None, :] <= steps[:, None]).mean(axis=1))
        ax.step(steps, np.mean(per_task, axis=0), where="post", color=look[optimizer].color,
                linestyle=look[optimizer].linestyle, label=optimizer, linewidth=1.6)
    style.log_axis(ax, "x")
    ax.set_ylim(0, 1.02)
    ax.set_xlabel(f"{style.STEP}, log")
    ax.set_ylabel(style.SOLVED)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), title="optimizer")
    figure.tight_layout()
    targets = ", ".join(f"{t:g}" for t in data.targets)
    return [Drawn("ecdf", "Data profile (ECDF of steps to target)", (
        f"The fraction of (run, target) pairs solved by each step, averaged over the "
        f"{runs['task'].nunique()} task(s) with equal weight, {BEST}. Targets on f − f_min "
        f"(or the task's metric; each task its own where it sets them): {targets}. A pair "
        "is solved at the first step the run's "
        "value reached the target before any divergence (COCO's runtime ECDF)."), figure)]


def chosen_target(table: pd.DataFrame, targets: list[float], target: float | None) -> float:
    """``target`` if given, else the target of the ladder at which the success rates of the
    (task, optimizer) pairs differ most (the loosest such), the most telling one."""
    if target is not None:
        return target
    spread = {t: float(np.nan_to_num(table[f"success@{t:g}"].std(ddof=0)))
              for t in sorted(targets, reverse=True)}
    return max(spread, key=spread.get)


def success_heatmap(data: ReportData, target: float | None = None) -> list[Drawn]:
    if data.runs.empty:
        raise Skip("no finished blocks")
    table = data.convergence
    target = chosen_target(table, data.targets, target)
    if f"success@{target:g}" not in table:
        raise Skip(f"the sweep's targets do not include {target:g}")
    grid = table.pivot(index="optimizer", columns="task", values=f"success@{target:g}")
    grid = grid.reindex(index=[o for o in data.optimizers if o in grid.index],
                        columns=[t for t in data.tasks if t in grid.columns])
    figure, ax = plt.subplots(figsize=(1.6 + 1.4 * grid.shape[1], 0.9 + 0.42 * grid.shape[0]))
    sns.heatmap(grid, annot=True, fmt=".0%", vmin=0, vmax=1, cmap=style.HEATMAP_CMAP, ax=ax,
                cbar_kws={"label": "success rate (fraction of runs)"}, linewidths=0.5)
    ax.set_xlabel("task")
    ax.set_ylabel("optimizer")
    plt.setp(ax.get_xticklabels(), rotation=20, ha="right")
    figure.tight_layout()
    return [Drawn("success-heatmap", f"Success rate at target {target:g}", (
        f"The fraction of runs that reached f − f_min ≤ {target:g} (for a maximized metric: "
        f"≥) before diverging, {BEST}. Unless chosen with --target, the target is the one of "
        "the sweep's ladder at which the success rates differ most."), figure)]


def optax_comparison(data: ReportData) -> list[Drawn]:
    if data.reference_curves is None:
        raise Skip("no optax re-run in this folder (run `optbench table DIR --reference "
                   "optax` first)")
    deviation = reference_deviation(data.curves, data.reference_curves, data.runs)
    deviation = deviation.reindex([o for o in data.optimizers if o in deviation.index])
    look = style.looks(data.optimizers)
    figure, ax = plt.subplots(figsize=(6.5, 3.2))
    shown = deviation.replace(0.0, 1e-17).clip(upper=1e3)
    ax.bar(shown.index, shown.to_numpy(float), color=[look[o].color for o in shown.index])
    style.log_axis(ax, "y")
    ax.set_ylabel("max relative deviation (log)")
    ax.set_xlabel("optimizer")
    ax.tick_params(axis="x", rotation=30)
    figure.tight_layout()
    worst = float(deviation.max())
    return [Drawn("optax-comparison", "Comparison with optax", (
        "Per optimizer, the maximum over its runs of max_t |f_t − g_t| / max_t |g_t|, where f "
        "is optbench's recorded f − f_min curve and g that of the same run re-done with "
        f"optax's implementation. The worst is {worst:.1e}: a deviation of 1e-6 means the two "
        "curves agree to about six significant digits; in float32, long trajectories on "
        "chaotic surfaces can drift further apart by rounding alone, and an infinite "
        "deviation means one of the two diverged where the other did not."), figure)]


def _network_tasks(data: ReportData) -> list[str]:
    """The sweep's network tasks with results (the loss-landscape figures need their
    training loss)."""
    from optbench.tasks.network import KINDS  # the network task kinds (imports jax)

    kinds = {t["name"]: t.get("kind") for t in data.config["tasks"]}
    return [t for t in data.tasks if kinds.get(t) in KINDS]


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


SOURCES = ("gd", "sgd", "minibatch")  # full batch, one example, a mini-batch


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
        _metric_panel(ax, data, stats[stats["task"] == task], "f_gap")
        noise = data.task_config(task).get("noise", 0.0)
        ax.set_title(f"{task} (gradient noise {noise:g})")
    style.legend_below(figure, *_handles(figure, data))
    return Drawn("gradient-sources", "GD vs SGD vs mini-batch SGD", (
        "Full-batch gradient descent, single-sample SGD and mini-batch SGD on each task that "
        f"ran all three, {BEST}: median and inter-quartile range over seeds. On a surface "
        "with gradient noise, SGD sees the per-sample noise and a mini-batch of B samples "
        "1/√B of it."), figure)


def _sources_per_example(data: ReportData, runs: pd.DataFrame, datasets: list[str]) -> Drawn:
    """Train loss and the primary metric against training examples seen: a GD step sees
    the whole training split, an SGD step one example, a mini-batch step its batch."""
    per_step = np.select([runs["method"] == "gd", runs["method"] == "sgd"],
                         [runs["n_train"], 1], runs["batch_size"])
    runs = runs.assign(per_step=per_step)
    look = style.looks(data.optimizers)
    figure, axes = style.grid(2 * len(datasets), cols=2, legend_rows=_rows(data))
    for k, dataset in enumerate(datasets):
        mine = runs[runs["dataset"] == dataset]
        metric = mine["metric"].iloc[0]  # test_accuracy, or test_r2 for regression
        for ax, column in zip(axes[2 * k:2 * k + 2], ("train_loss", metric), strict=True):
            stats = _curve_quartiles(data, mine, column)
            for (task, optimizer), s in stats.groupby(["task", "optimizer"], sort=False):
                seen = s["step"] * mine.loc[mine["task"] == task, "per_step"].iloc[0]
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
        "task's metric (test accuracy, or R²) against the training examples the optimizer "
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


Draw = Callable[[ReportData], list[Drawn]]

# (section title, figure function), in the page's order; trajectories come first, separately
FIGURES: list[tuple[str, Draw]] = [
    ("Convergence curves", convergence),
    ("Training curves (network tasks)", training_curves),
    ("Learning-rate sensitivity", lr_sensitivity),
    ("Data profile (ECDF)", ecdf),
    ("Success heatmap", success_heatmap),
    ("Comparison with optax", optax_comparison),
    ("Loss-landscape slices", landscape_slices),
    ("Training paths (PCA)", training_paths),
    ("Per-layer gradient norms", gradient_norms),
    ("Initialization × activation", init_activation),
    ("Train/test gap", generalization_gap),
    ("GD vs SGD vs mini-batch", gradient_sources),
    ("Tuning budget", comparisons.tuning_budget),
    ("Across tasks: performance profiles and aggregate scores", comparisons.across_tasks),
]
