"""One figure per gallery case, drawn from its stored results (``<case>.png`` in its folder).

Each figure shows the quantity its verdict asserts, so a reader sees the claim and the
number behind it: Adam's and AMSGrad's x, the heavy-ball cycle, the stability edge, escape
times against noise, the distance after the jump, and the steep coordinate's sign flips.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from optbench.gallery import verdicts
from optbench.report import style
from optbench.store import ResultStore


def _looks(store: ResultStore) -> dict[str, style.Look]:
    style.apply()
    return style.looks(list(store.table("runs")["optimizer"].unique()))


def adam_nonconvergence(store: ResultStore, directory: Path) -> list[Path]:
    """x against step (log) for each optimizer, with the optimum and the worst point."""
    looks = _looks(store)
    points = verdicts.paths(store)
    figure, ax = plt.subplots(figsize=(6.4, 3.6))
    for label, run in points.groupby("optimizer", sort=False):
        run = run[run["step"] > 0]
        ax.plot(run["step"], run["x0"], color=looks[label].color, label=label, lw=1.8)
    ax.axhline(-1, color="0.3", ls="--", lw=0.8)
    ax.axhline(1, color="0.3", ls=":", lw=0.8)
    ax.text(1.2, -0.93, "optimum x* = -1", fontsize=8, color="0.3")
    ax.text(1.2, 0.87, "worst point x = +1", fontsize=8, color="0.3")
    style.log_axis(ax, "x")
    ax.set(xlabel=style.STEP, ylabel="x (projected onto [-1, 1])",
           ylim=(-1.1, 1.1),
           title="Reddi et al. (2018): f_t = 3x if t mod 3 = 1 else -x; step 0.5/sqrt(t)")
    ax.legend(loc="upper right", bbox_to_anchor=(1.0, 0.9))
    figure.tight_layout()  # the report style saves without re-layout
    return style.save(figure, directory / "adam-nonconvergence")


def heavy_ball_cycle(store: ResultStore, directory: Path) -> list[Path]:
    """Left: x_k for heavy-ball (each start) and GD. Right: f with the 3-cycle marked."""
    looks = _looks(store)
    points = verdicts.paths(store)
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6),
                                         gridspec_kw={"width_ratios": [1.6, 1]})
    for label, runs in points.groupby("optimizer", sort=False):
        for i, (_, run) in enumerate(runs.groupby("run_id", sort=False)):
            run = run[run["step"] <= 60]
            left.plot(run["step"], run["x0"], color=looks[label].color, lw=1.2,
                      alpha=1.0 if i == 0 else 0.35, label=label if i == 0 else None)
    for value in verdicts.LESSARD_CYCLE:
        left.axhline(value, color="0.4", ls=":", lw=0.8)
    left.set(xlabel=style.STEP, ylabel="x_k",
             title="heavy-ball (alpha = 1/9, beta = 4/9) from x0 in [3.07, 3.46] vs GD (1/L)")
    left.legend(loc="upper right")
    (task,) = verdicts.tasks_of(store)
    x = np.linspace(-2.5, 3.6, 400)
    right.plot(x, np.asarray(task.surface.fn(x[:, None])), color="0.2", lw=1.2)
    cycle = np.asarray([0.6465, -1.8024, 2.1159])
    f_cycle = np.asarray(task.surface.fn(cycle[:, None]))
    colour = looks["heavy-ball"].color
    right.plot(cycle, f_cycle, "o", color=colour, ms=6)
    for i in range(3):
        right.annotate("", xy=(cycle[(i + 1) % 3], f_cycle[(i + 1) % 3]),
                       xytext=(cycle[i], f_cycle[i]),
                       arrowprops={"arrowstyle": "->", "color": colour, "lw": 1.2})
    right.set(xlabel="x", ylabel="f(x)", title="the period-3 cycle on f (L = 25, mu = 1)")
    figure.tight_layout()
    return style.save(figure, directory / "heavy-ball-cycle")


def gd_stability_edge(store: ResultStore, directory: Path) -> list[Path]:
    """Final over initial f against lr / (2(1 + beta)/L): every method's edge falls at 1.
    The axis spans the meaningful range: from a decade under the target (relative to the
    start) to the diverged runs' crosses; ratios below, exact zeros included, sit on the
    floor as triangles, not at float32's 1e-37."""
    looks = _looks(store)
    edges = verdicts.stability_edges(store).set_index("optimizer")
    runs = store.table("runs")
    curves = store.table("curves")
    start = curves[curves["step"] == 0].set_index("run_id")["f_gap"]
    floor = _ratio_floor(store, float(start.max()))
    figure, ax = plt.subplots(figsize=(6.4, 3.8))
    ratios = {}
    for label, group in runs.groupby("optimizer", sort=False):
        last = curves[curves["run_id"].isin(group["run_id"])].sort_values("step")
        last = last.groupby("run_id").tail(1).set_index("run_id")["f_gap"]
        ratio = (last / start).reindex(group["run_id"]).to_numpy()
        ratios[label] = np.where(group["diverged"].to_numpy(), np.nan, ratio)
    finite = np.concatenate([r[np.isfinite(r)] for r in ratios.values()])
    ceiling = 10.0 ** (np.ceil(np.log10(max(finite.max(), 1.0))) + 1)
    for k, (label, group) in enumerate(runs.groupby("optimizer", sort=False)):
        ratio, colour = ratios[label], looks[label].color
        scaled = group["learning_rate"].to_numpy() / edges.loc[label, "theory"]
        name = f"{label} (edge {edges.loc[label, 'edge']:.4f}, theory " \
               f"{edges.loc[label, 'theory']:.4f})"
        ax.plot(scaled, np.maximum(ratio, floor), "o-", ms=2.5, lw=1, color=colour, label=name)
        low = ratio < floor
        ax.plot(scaled[low], np.full(low.sum(), floor), "v", ms=4, color=colour)
        diverged = group["diverged"].to_numpy()
        ax.plot(scaled[diverged], np.full(diverged.sum(), ceiling * 10.0 ** k), "x",
                ms=3, color=colour)  # one row of crosses per optimizer
    ax.axvline(1.0, color="0.3", ls="--", lw=0.8)
    ax.axhline(1.0, color="0.6", lw=0.6)
    ax.axhline(floor, color="0.6", lw=0.6, ls=":")
    ax.text(0.99, floor, f"▼: below {style.number(floor)} (exact 0 included)",
            transform=ax.get_yaxis_transform(), ha="right", va="bottom", fontsize=7,
            color="0.3")
    style.log_axis(ax, "y")
    ax.set(xlabel="learning rate / (2(1 + momentum)/L)", xlim=(0.97, 1.03),
           ylim=(floor / 10, ceiling * 10.0 ** len(ratios)),
           ylabel="final f / initial f (log; x: diverged)",
           title="stability edge on x^2 + 10 y^2 (L = 20), 2000 steps")
    ax.legend(loc="center left", fontsize=7)
    figure.tight_layout()  # the report style saves without re-layout
    return style.save(figure, directory / "gd-stability-edge")


def _ratio_floor(store: ResultStore, start: float) -> float:
    """A decade under the case's tightest target as a share of the starting f: below it a
    run has converged, and how far float32 took it says nothing about the edge."""
    targets = store.meta()["config"]["targets"]
    return 10.0 ** (np.floor(np.log10(min(targets) / start)) - 1)


def saddle_escape(store: ResultStore, directory: Path) -> list[Path]:
    """Left: paths on x^2 - y^2 (GD and a few SGD seeds). Right: escape step vs noise."""
    looks = _looks(store)
    points = verdicts.paths(store)
    escapes = verdicts.escape_steps(store)
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    grid = np.linspace(-1.5, 1.5, 200)
    xx, yy = np.meshgrid(grid, grid)
    left.contourf(xx, yy, xx**2 - yy**2, levels=20, cmap="Greys_r", alpha=0.6)
    noises = sorted(points["noise"].unique())
    widest = points[(points["optimizer"] == "sgd") & (points["noise"] == noises[-1])]
    for i, (_, run) in enumerate(widest.groupby("run_id", sort=False)):
        if i >= 8:
            break
        run = run[(run["x0"].abs() < 1.5) & (run["x1"].abs() < 1.5)]
        left.plot(run["x0"], run["x1"], color=looks["sgd"].color, lw=1, alpha=0.8,
                  label=f"sgd, noise {noises[-1]:g}" if i == 0 else None)
    gd = points[points["optimizer"] == "gd"]
    gd = gd[gd["run_id"] == gd["run_id"].iloc[0]]
    left.plot(gd["x0"], gd["x1"], color=looks["gd"].color, lw=2.5,
              label="gd (never escapes)")
    left.plot([0], [0], "k*", ms=9)
    left.set(xlabel="x", ylabel="y", xlim=(-1.5, 1.5), ylim=(-1.5, 1.5),
             title="x^2 - y^2 from (0.5, 0): the stable manifold")
    left.legend(loc="lower left")
    sgd = escapes[escapes["optimizer"] == "sgd"]
    for k, noise in enumerate(noises):
        steps = sgd.loc[sgd["noise"] == noise, "escape_step"].dropna()
        jitter = np.random.default_rng(k).uniform(-0.08, 0.08, len(steps))
        right.plot(np.log10(noise) + jitter, steps, "o", ms=3, alpha=0.6,
                   color=looks["sgd"].color)
        right.plot([np.log10(noise) - 0.2, np.log10(noise) + 0.2], [steps.median()] * 2,
                   color="k", lw=2)
    lr = float(store.table("runs")["learning_rate"].iloc[0])
    sigma = np.logspace(np.log10(noises[0]) - 0.3, np.log10(noises[-1]) + 0.3, 50)
    right.plot(np.log10(sigma), np.log(1 / (lr * sigma)) / np.log(1 + 2 * lr), "--",
               color="0.4", lw=1, label="log(1/(lr·noise)) / log(1 + 2 lr)")
    right.set(xlabel="log10 gradient noise scale", ylabel="escape step (first |y| >= 1)",
              title=f"SGD escape step, {len(sgd) // len(noises)} seeds per noise (bar: median)")
    right.legend(loc="upper right", fontsize=8)
    figure.tight_layout()
    return style.save(figure, directory / "saddle-escape")


def adagrad_moving_target(store: ResultStore, directory: Path) -> list[Path]:
    """Distance to the new minimum against step (log), the jump marked."""
    looks = _looks(store)
    (task,) = verdicts.tasks_of(store)
    curves = store.table("curves").merge(store.table("runs")[["run_id", "optimizer"]],
                                         on="run_id")
    jump = task.config.jump_step
    figure, ax = plt.subplots(figsize=(6.4, 3.8))
    after = curves[curves["step"] >= jump]
    floor = style.zero_floor(after["distance"])
    for label, run in after.groupby("optimizer", sort=False):
        ax.plot(run["step"] - jump, np.where(run["distance"] <= 0, floor, run["distance"]),
                color=looks[label].color, label=label, lw=1.8)
    if (after["distance"] <= 0).any():
        style.mark_zero(ax, floor)
    ax.axvline(verdicts.AFTER_JUMP, color="0.4", ls=":", lw=0.8)
    style.log_axis(ax, "y")
    ax.set(xlabel=f"steps after the jump (at step {jump})",
           ylabel="|x - new minimum| (log)",
           title="the minimum jumps by 7.07 at step 500; lr = 0.1 for all three")
    ax.legend(loc="upper right", bbox_to_anchor=(1.0, 0.9))
    figure.tight_layout()  # the report style saves without re-layout
    return style.save(figure, directory / "adagrad-moving-target")


def ravine_zigzag(store: ResultStore, directory: Path) -> list[Path]:
    """Top: each method's path on x^2 + 100 y^2. Bottom: y against step, sign flips counted."""
    looks = _looks(store)
    points = verdicts.paths(store).sort_values("step")
    table = verdicts.zigzags(store).set_index("optimizer")
    labels = list(looks)
    figure, axes = plt.subplots(2, len(labels), figsize=(3.6 * len(labels), 5.6),
                                gridspec_kw={"height_ratios": [1, 1]})
    grid_x, grid_y = np.meshgrid(np.linspace(-5, 5, 200), np.linspace(-4, 4, 400))
    for k, label in enumerate(labels):
        run = points[points["optimizer"] == label]
        hit = table.loc[label, "steps_to_target"]
        run = run[run["step"] <= hit]
        colour = looks[label].color
        top, bottom = axes[0, k], axes[1, k]
        top.contour(grid_x, grid_y, grid_x**2 + 100 * grid_y**2,
                    levels=np.logspace(-2, 2.2, 12), colors="0.7", linewidths=0.6)
        top.plot(run["x0"], run["x1"], "-o", ms=1.5, lw=0.7, color=colour)
        reach = 1.1 * max(1.0, float(run["x1"].abs().max()))
        top.set(xlim=(-5, 1), ylim=(-reach, reach), xlabel="x", ylabel="y (steep)",
                title=label)
        bottom.plot(run["step"], run["x1"], lw=0.7, color=colour)
        bottom.set(xlabel=style.STEP, ylabel="y", title=f"{int(table.loc[label, 'sign_changes'])}"
                   f" sign changes in {hit:.0f} steps")
    figure.suptitle("x^2 + 100 y^2 until f <= 1e-6, each method at its optimal tuning")
    figure.tight_layout()
    return style.save(figure, directory / "ravine-zigzag")


def edge_of_stability(store: ResultStore, directory: Path) -> list[Path]:
    """Left: sharpness against step for each eta (median over seeds, each seed faint) with
    its 2/eta dashed. Right: the training loss (log), falling though not monotonically."""
    style.apply()
    curves = verdicts.sharpness_curves(store)
    etas = sorted(curves["learning_rate"].unique(), reverse=True)
    colours = dict(zip(etas, style.looks([f"eta {e:g}" for e in etas]).values(), strict=True))
    figure, (left, right) = plt.subplots(1, 2, figsize=(10.5, 4))
    top = 1.25 * curves["sharpness"].max()
    for eta in etas:
        group, colour = curves[curves["learning_rate"] == eta], colours[eta].color
        for _, run in group.groupby("run_id", sort=False):
            left.plot(run["step"], run["sharpness"], color=colour, lw=0.6, alpha=0.35)
            right.plot(run["step"], run["train_loss"], color=colour, lw=0.6, alpha=0.35)
        median = group.groupby("step")[["sharpness", "train_loss"]].median()
        contrast = group["optimizer"].iloc[0] == verdicts.CONTRAST
        label = f"eta = {eta:g}" + (" (contrast)" if contrast else "")
        left.plot(median.index, median["sharpness"], color=colour, lw=1.6, label=label)
        right.plot(median.index, median["train_loss"], color=colour, lw=1.2, label=label)
        if 2 / eta < top:
            left.axhline(2 / eta, color=colour, ls="--", lw=1)
            left.text(0, 2 / eta, f"2/eta = {2 / eta:.1f}", color=colour, ha="left",
                      va="bottom", fontsize=7)
        else:
            left.text(0.02, 0.97, f"eta = {eta:g}: 2/eta = {2 / eta:g}, above the axis",
                      transform=left.transAxes, color=colour, ha="left", va="top", fontsize=7)
    left.set(xlabel=style.STEP, ylabel="sharpness (top Hessian eigenvalue)", ylim=(0, top),
             title="sharpness rises to 2/eta and hovers there")
    left.legend(loc="lower right", fontsize=7)
    style.log_axis(right, "y")
    right.set(xlabel=style.STEP, ylabel="training loss (MSE, log)",
              title="the loss keeps falling, not monotonically")
    figure.suptitle("Cohen et al. (2021): full-batch GD, tanh MLP on diabetes, "
                    f"{curves['seed'].nunique()} seeds", fontsize=10)
    figure.tight_layout()
    return style.save(figure, directory / "edge-of-stability")
