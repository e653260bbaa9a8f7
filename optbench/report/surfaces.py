"""Trajectories on the contours of 2-D surfaces (static small multiples, optional animation).

The surface is evaluated once per task on a 512 x 512 grid over its plotting window; the
small multiples, the overlay panel and the animation all draw from that one grid.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import jax
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.cm import ScalarMappable
from matplotlib.colors import BoundaryNorm, ListedColormap
from PIL import Image

from optbench import landscapes
from optbench.report import style
from optbench.report.data import ReportData

GRID_POINTS = 512
LEVELS = 14  # about one band per decade of f - f_min
ANIMATION_DPI, FPS = 80, 8  # the animation's resolution and frames per second


@dataclass
class Contours:
    """f - f_min on a grid over a surface's plotting window."""

    x: np.ndarray
    y: np.ndarray
    gap: np.ndarray  # (len(y), len(x)), clipped to a positive floor for log levels
    window: tuple[tuple[float, float], tuple[float, float]]
    minimizers: tuple[np.ndarray, ...]

    @cached_property
    def levels(self) -> np.ndarray:
        """``LEVELS`` log-spaced band edges of the gap, from its 2nd percentile (so that
        the bands spread over the window, not only the minima) to its maximum."""
        return np.geomspace(max(np.percentile(self.gap, 2), self.gap.min()), self.gap.max(),
                            LEVELS)

    @cached_property
    def colors(self) -> np.ndarray:
        """One RGBA colour per band, dark near the minima."""
        return plt.get_cmap(style.CONTOUR_CMAP)(np.linspace(0.35, 0.97, LEVELS - 1))

    @cached_property
    def image(self) -> np.ndarray:
        """RGBA bands: the gap binned at :attr:`levels`."""
        band = np.clip(np.searchsorted(self.levels, self.gap) - 1, 0, LEVELS - 2)
        return self.colors[band]


def contours(surface: landscapes.Landscape, n: int = GRID_POINTS,
             window: tuple[tuple[float, float], tuple[float, float]] | None = None) -> Contours:
    """f - f_min on an ``n`` x ``n`` grid over ``window`` (the surface's plotting window)."""
    window = window or surface.window
    (xlo, xhi), (ylo, yhi) = window
    x, y = np.linspace(xlo, xhi, n), np.linspace(ylo, yhi, n)
    points = np.stack(np.meshgrid(x, y), axis=-1)
    f_min = surface.f_min if surface.bounded else float(np.nan)
    values = np.asarray(jax.jit(surface.fn)(points), float)
    gap = values - (f_min if surface.bounded else np.nanmin(values))
    positive = gap[gap > 0]
    floor = max(positive.min(), positive.max() * 1e-10) if positive.size else 1e-12
    return Contours(x, y, np.clip(gap, floor, None), window, surface.minimizers)


def draw_contours(ax: plt.Axes, grid: Contours) -> None:
    """Filled contours at log-spaced levels, drawn as a banded image: the same picture as
    ``contourf`` at this resolution, coloured once per surface rather than once per panel."""
    ax.imshow(grid.image, origin="lower", extent=(*grid.window[0], *grid.window[1]),
              interpolation="nearest", aspect="auto", rasterized=True)
    for point in grid.minimizers:
        ax.plot(point[0], point[1], marker="*", markersize=11, color="white",
                markeredgecolor="black", linestyle="none", zorder=5)
    (xlo, xhi), (ylo, yhi) = grid.window
    ax.set_xlim(xlo, xhi)
    ax.set_ylim(ylo, yhi)
    ax.set_xlabel("x₁")
    ax.set_ylabel("x₂")
    ax.grid(False)


def paths(data: ReportData, task: str) -> dict[str, list[np.ndarray]]:
    """Per optimizer, the (steps, 2) paths of its best setting's runs; the first (lowest
    seed and start) is drawn bold."""
    runs = data.best_runs()
    runs = runs[runs["task"] == task].sort_values(["optimizer", "seed", "start"])
    traj = data.trajectories
    traj = traj[traj["run_id"].isin(runs["run_id"])].sort_values(["run_id", "step"], kind="stable")
    ids = traj["run_id"].to_numpy()
    points = traj[["x0", "x1"]].to_numpy(float)
    names, first = np.unique(ids, return_index=True)
    by_run = dict(zip(names, np.split(points, first[1:]), strict=True))
    out: dict[str, list[np.ndarray]] = {}
    for optimizer, group in runs.groupby("optimizer", sort=False):
        out[optimizer] = [by_run[r] for r in group["run_id"] if r in by_run]
    return out


def leaves(path: np.ndarray, window) -> bool:
    (xlo, xhi), (ylo, yhi) = window
    x, y = path[:, 0], path[:, 1]
    return bool(np.any(~np.isfinite(path)) or np.any((x < xlo) | (x > xhi) | (y < ylo)
                                                      | (y > yhi)))


def draw_path(ax: plt.Axes, path: np.ndarray, look: style.Look, bold: bool) -> None:
    ax.plot(path[:, 0], path[:, 1], color=look.color, linestyle=look.linestyle,
            linewidth=2.0 if bold else 1.0, alpha=1.0 if bold else 0.55, zorder=4 if bold else 3)
    if not bold:
        ax.plot(path[0, 0], path[0, 1], marker="o", markersize=3, color="black", alpha=0.6,
                zorder=3)
    else:
        ax.plot(path[0, 0], path[0, 1], marker="o", markersize=6, color="black",
                markeredgecolor="white", zorder=6)
        ax.plot(path[-1, 0], path[-1, 1], marker="X", markersize=6, color=look.color,
                markeredgecolor="black", zorder=6)


ZOOM = 0.05  # bold paths spanning under this share of the window (both ways): zoom to them


def zoom_window(bold: list[np.ndarray], window) -> tuple | None:
    """Where the bold paths span under :data:`ZOOM` of ``window`` in both directions (a few
    pixels on the full window, as on Rastrigin), a window around them: twice their extent
    (at least 2 % of ``window``), with ``window``'s aspect. None where they are readable."""
    points = np.concatenate(bold) if bold else np.empty((0, 2))
    points = points[np.isfinite(points).all(axis=1)]
    if not len(points):
        return None
    spans = np.array([hi - lo for lo, hi in window])
    lo, hi = points.min(axis=0), points.max(axis=0)
    if np.any(hi - lo >= ZOOM * spans):
        return None
    half = max(float(((hi - lo) / spans).max()) * 2, 0.02) * spans / 2
    return tuple((float(c - h), float(c + h)) for c, h in zip((lo + hi) / 2, half, strict=True))


def small_multiples(data: ReportData, task: str, grid: Contours) -> plt.Figure:
    """One panel per optimizer and a last panel overlaying every optimizer's bold path, a
    colour bar for the contour levels; zoomed to the bold paths where they are tiny on the
    surface's window (:func:`zoom_window`; its contours evaluated afresh)."""
    by_optimizer = paths(data, task)
    names = [o for o in data.optimizers if by_optimizer.get(o)]
    look = style.looks(data.optimizers)
    zoom = zoom_window([by_optimizer[n][0] for n in names], grid.window)
    if zoom:
        grid = contours(data.surface(task), window=zoom)
    figure, axes = style.grid(len(names) + 1, cols=4, width=3.0, height=2.8, colorbar=True,
                              sharex=True, sharey=True)
    for ax, name in zip(axes, names, strict=False):
        draw_contours(ax, grid)
        runs = by_optimizer[name]
        for i, path in enumerate(runs):
            draw_path(ax, path, look[name], bold=i == 0)
        ax.set_title(f"{name} ({setting(data, task, name)})")
        out = sum(leaves(p, grid.window) for p in runs)
        if out:
            where = "the zoomed view" if zoom else "the window"
            ax.text(0.02, 0.02, f"{out} of {len(runs)} path(s) leave {where}",
                    transform=ax.transAxes, fontsize=8, color="black",
                    bbox={"facecolor": "white", "alpha": 0.8, "linewidth": 0})
    overlay = axes[-1]
    draw_contours(overlay, grid)
    for name in names:
        draw_path(overlay, by_optimizer[name][0], look[name], bold=True)
    overlay.set_title("all optimizers (bold paths)")
    if zoom:
        style.panel_note(overlay, ["zoomed to the bold paths; the surface's window:",
                                   _window_text(data.surface(task).window)])
    for ax in axes:
        ax.label_outer()
    cmap = ListedColormap(grid.colors)
    style.colorbar_beside(figure, axes, ScalarMappable(BoundaryNorm(grid.levels, cmap.N), cmap),
                          "f − f_min (contour levels)", grid.levels[::2])
    return figure


def _window_text(window) -> str:
    (xlo, xhi), (ylo, yhi) = window
    return f"x₁ ∈ [{xlo:g}, {xhi:g}], x₂ ∈ [{ylo:g}, {yhi:g}]"


def setting(data: ReportData, task: str, optimizer: str) -> str:
    """The best learning rate of ``optimizer`` on ``task``, for panel titles."""
    runs = data.best_runs()
    row = runs[(runs["task"] == task) & (runs["optimizer"] == optimizer)].iloc[0]
    return f"lr={row['learning_rate']:.3g}" if "learning_rate" in row else "best"


def animate(data: ReportData, task: str, grid: Contours, stem: Path, frames: int = 40) -> Path:
    """An animated GIF of every optimizer's bold path growing over the steps.

    The contours, axes and legend are drawn once; each frame restores them and draws only
    the paths, the title and the minimizers' stars over them (matplotlib's blitting): 1 s
    per surface, where redrawing the whole figure per frame took 5.5 s."""
    by_optimizer = paths(data, task)
    names = [o for o in data.optimizers if by_optimizer.get(o)]
    look = style.looks(data.optimizers)
    figure, ax = plt.subplots(figsize=(7.0, 4.6), dpi=ANIMATION_DPI)
    draw_contours(ax, grid)
    lines = {n: ax.plot([], [], color=look[n].color, linestyle=look[n].linestyle,
                        linewidth=2, label=n, animated=True)[0] for n in names}
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), title="optimizer")
    length = max(len(by_optimizer[n][0]) for n in names)
    title = ax.set_title(f"{task}: first {length} of {length} records", animated=True)
    figure.tight_layout()  # with the longest title, so that every frame's title fits
    figure.canvas.draw()  # all but the animated paths and title
    background = figure.canvas.copy_from_bbox(figure.bbox)
    above = [line for line in ax.get_lines()  # the minimizers' stars: over the paths
             if not line.get_animated() and line.get_zorder() > 2]
    images = []
    for k in range(frames):
        upto = max(1, round((k + 1) * length / frames))
        figure.canvas.restore_region(background)
        for n in names:
            path = by_optimizer[n][0][:upto]
            lines[n].set_data(path[:, 0], path[:, 1])
            ax.draw_artist(lines[n])
        for line in above:
            ax.draw_artist(line)
        title.set_text(f"{task}: first {upto} of {length} records")
        ax.draw_artist(title)
        images.append(Image.fromarray(np.asarray(figure.canvas.buffer_rgba())).convert("RGB"))
    plt.close(figure)
    path = stem.with_name(f"{stem.name}.gif")  # with_suffix would cut a dotted task name
    images[0].save(path, save_all=True, append_images=images[1:], duration=1000 // FPS,
                   loop=0)
    return path
