"""One look for every report figure: a fixed colour per optimizer, labelled axes, log scales.

Colours come from seaborn's ``colorblind`` palette, assigned in the sweep's optimizer order,
so an optimizer keeps its colour in every figure of a report. Beyond ten optimizers the
palette repeats with a dashed line style, so no two optimizers look alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never a window

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.ticker import FuncFormatter, NullFormatter  # noqa: E402

PALETTE = "colorblind"
CONTOUR_CMAP = "Greys_r"  # light background, so the coloured paths stand out
HEATMAP_CMAP = "cividis"  # sequential and colourblind-safe
DPI = 110

# axis labels, with units
STEP = "step (optimizer updates)"
F_GAP = "f − f_min (log)"
LEARNING_RATE = "learning rate (log)"
SOLVED = "fraction of (run, target) pairs solved"
METRIC_LABELS = {
    "f_gap": F_GAP,
    "train_loss": "train loss (the task's loss, log)",
    "test_loss": "test loss (the task's loss, log)",
    "train_accuracy": "train accuracy (fraction correct)",
    "test_accuracy": "test accuracy (fraction correct)",
}


@dataclass(frozen=True)
class Look:
    """How one optimizer is drawn."""

    color: tuple[float, float, float]
    linestyle: str


def looks(optimizers: list[str]) -> dict[str, Look]:
    """A fixed look per optimizer label, in the order given (the sweep's order)."""
    colors = sns.color_palette(PALETTE, 10)
    styles = ["-", "--", ":", "-."]
    return {name: Look(tuple(colors[i % 10]), styles[(i // 10) % len(styles)])
            for i, name in enumerate(optimizers)}


def metric_label(metric: str) -> str:
    return METRIC_LABELS.get(metric, f"{metric.replace('_', ' ')} (log)")


def is_accuracy(metric: str) -> bool:
    return "accuracy" in metric


_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def _power_of_ten(value: float, _position=None) -> str:
    """``10⁻⁴`` at decades, nothing elsewhere: plain text, no mathtext to typeset."""
    if value <= 0:
        return ""
    exponent = np.log10(value)
    if not np.isclose(exponent, round(exponent)):
        return ""
    return "1" if round(exponent) == 0 else "10" + str(round(exponent)).translate(_SUPERSCRIPT)


def log_axis(ax: plt.Axes, which: str) -> None:
    """A log scale on ``which`` ("x" or "y") with ``10ⁿ`` labels at the decades."""
    axis = ax.xaxis if which == "x" else ax.yaxis
    (ax.set_xscale if which == "x" else ax.set_yscale)("log")
    axis.set_major_formatter(FuncFormatter(_power_of_ten))
    axis.set_minor_formatter(NullFormatter())


def apply() -> None:
    """seaborn's paper-like theme, readable when printed."""
    sns.set_theme(context="paper", style="whitegrid", palette=PALETTE, font_scale=1.1,
                  rc={"svg.fonttype": "none", "axes.titlesize": "medium",
                      "figure.dpi": DPI, "savefig.dpi": DPI, "legend.frameon": False})


def save(figure: plt.Figure, stem: Path) -> list[Path]:
    """Write ``stem.png`` and ``stem.svg`` and close the figure."""
    # not with_suffix: a stem may hold dots ("trajectories-rosen-a0.5")
    paths = [stem.with_name(f"{stem.name}.png"), stem.with_name(f"{stem.name}.svg")]
    for path in paths:
        figure.savefig(path)  # laid out already: "tight" would draw it once more
    plt.close(figure)
    return paths


# margins of panel grids, in inches: fixed, so that no layout pass measures every label
LEFT, RIGHT, TOP, BOTTOM, GAP_W, GAP_H = 0.85, 0.15, 0.35, 0.6, 0.75, 0.75
LEGEND_ROW = 0.22  # inches per legend row


def grid(n: int, cols: int, width: float = 3.4, height: float = 2.9, legend_rows: int = 0,
         **kw):
    """``n`` panels of ``width`` x ``height`` inches in rows of ``cols``, with fixed margins
    (and room for a legend of ``legend_rows`` rows below); unused panels hidden."""
    cols = max(1, min(cols, n))
    rows = -(-n // cols)
    bottom = BOTTOM + (LEGEND_ROW * (legend_rows + 1) + 0.25 if legend_rows else 0)
    fig_w = LEFT + RIGHT + cols * width + (cols - 1) * GAP_W
    fig_h = TOP + bottom + rows * height + (rows - 1) * GAP_H
    figure, axes = plt.subplots(rows, cols, figsize=(fig_w, fig_h), squeeze=False, **kw)
    figure.subplots_adjust(left=LEFT / fig_w, right=1 - RIGHT / fig_w, top=1 - TOP / fig_h,
                           bottom=bottom / fig_h, wspace=GAP_W / width, hspace=GAP_H / height)
    flat = list(axes.ravel())
    for ax in flat[n:]:
        ax.set_visible(False)
    return figure, flat[:n]


def legend_rows(labels: list[str], cols: int = 5) -> int:
    return -(-len(labels) // cols)


def legend_below(figure: plt.Figure, handles, labels, cols: int = 5) -> None:
    """The optimizers' legend in the room :func:`grid` left below the panels."""
    figure.legend(handles, labels, loc="lower center", ncol=min(cols, len(labels)),
                  bbox_to_anchor=(0.5, 0.0), title="optimizer")
