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
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import (  # noqa: E402
    Formatter,
    LogLocator,
    MaxNLocator,
    NullFormatter,
    NullLocator,
)

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
    "valid_loss": "validation loss (the task's loss, log)",
    "test_loss": "test loss (the task's loss, log)",
    "train_accuracy": "train accuracy (fraction correct)",
    "valid_accuracy": "validation accuracy (fraction correct)",
    "test_accuracy": "test accuracy (fraction correct)",
    "valid_r2": "validation R²",
    "test_r2": "test R²",
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
MIN_LABELS = 3  # labelled ticks a log axis shows at least, so that a reader can read values


def _is_decade(value: float) -> bool:
    return bool(np.isclose(np.log10(value), round(np.log10(value))))


def power_of_ten(value: float) -> str:
    """``10⁻⁴`` (``1`` for 10⁰): plain text, no mathtext to typeset."""
    exponent = round(np.log10(value))
    return "1" if exponent == 0 else "10" + str(exponent).translate(_SUPERSCRIPT)


def number(value: float, plain: bool = False, digits: int = 3) -> str:
    """A positive value as a log axis labels it: plain (``0.25``, ``20``) if asked, else
    ``10⁻⁴`` at a decade and ``2.5×10⁻⁵`` elsewhere; ``digits`` significant digits."""
    if plain:
        return f"{value:.{digits}g}"
    mantissa, exponent = f"{value:.{digits - 1}e}".split("e")  # rounded: 9.97 is 1.0e+01
    mantissa, decade = f"{float(mantissa):g}", power_of_ten(10.0 ** int(exponent))
    return decade if mantissa == "1" else mantissa if decade == "1" else f"{mantissa}×{decade}"


def _multiples(lo: float, hi: float, subs: tuple[int, ...]) -> np.ndarray:
    """``subs`` times every power of ten from below ``lo`` to above ``hi``."""
    decades = 10.0 ** np.arange(np.floor(np.log10(lo)), np.ceil(np.log10(hi)) + 1)
    return np.sort(np.outer(decades, subs).ravel())


def log_ticks(vmin: float, vmax: float) -> np.ndarray:
    """Tick values for a log axis over [vmin, vmax]: decades where at least
    :data:`MIN_LABELS` fall inside, else 1-2-5 per decade, else evenly spaced plain values
    (a range under a decade or so, where a log axis is nearly linear), finer until enough
    fall inside."""
    lo, hi = sorted((vmin, vmax))
    if not (hi > 0 and np.isfinite(hi)):
        return np.array([])
    lo = lo if lo > 0 else hi / 10
    plain = [lambda n=n: MaxNLocator(nbins=n, steps=[1, 2, 2.5, 5, 10]).tick_values(lo, hi)
             for n in (5, 8, 12)]
    for candidate in (lambda: LogLocator(10, numticks=9).tick_values(lo, hi),
                      lambda: _multiples(lo, hi, (1, 2, 5)), *plain):
        ticks = np.asarray(candidate(), float)
        ticks = ticks[ticks > 0]
        inside = (ticks >= lo * (1 - 1e-9)) & (ticks <= hi * (1 + 1e-9))
        if np.count_nonzero(inside) >= MIN_LABELS:
            break
    return ticks


class _LogTicks(LogLocator):
    """:func:`log_ticks` at the axis's view limits (log autoscaling as matplotlib's)."""

    def tick_values(self, vmin, vmax):
        return log_ticks(vmin, vmax)


def tick_labels(ticks, digits: int = 3) -> list[str]:
    """Labels of log-spaced ``ticks``: ``10ⁿ`` where all are decades, plain values where
    some are not and all lie in [10⁻³, 10⁴), else ``2×10⁻⁵``; ``digits`` significant
    digits, more where neighbours would read alike. Nothing for a tick that is not
    positive."""
    positive = [t for t in ticks if t > 0]
    plain = (not all(_is_decade(t) for t in positive)
             and all(1e-3 <= t < 1e4 for t in positive))
    digits = next((d for d in range(digits, 10)
                   if len({number(t, plain, d) for t in positive}) == len(positive)), 10)
    return [number(t, plain, digits) if t > 0 else "" for t in ticks]


class _LogLabels(Formatter):
    """:func:`tick_labels` for a log axis's ticks."""

    def format_ticks(self, values):
        return tick_labels(values)

    def __call__(self, value, pos=None):
        return tick_labels([value])[0]


def log_axis(ax: plt.Axes, which: str) -> None:
    """A log scale on ``which`` ("x" or "y") with at least :data:`MIN_LABELS` labelled ticks
    in any range: decades over wide ranges, 1-2-5 or plain values under a decade. Every log
    axis of the report and the gallery goes through here."""
    axis = ax.xaxis if which == "x" else ax.yaxis
    (ax.set_xscale if which == "x" else ax.set_yscale)("log")
    axis.set_major_locator(_LogTicks())
    axis.set_major_formatter(_LogLabels())
    no_minor_ticks(axis)


def no_minor_ticks(axis) -> None:
    """No minor ticks on ``axis``: this theme neither draws nor labels them, and making them
    took a tenth of a report's drawing."""
    axis.set_minor_locator(NullLocator())
    axis.set_minor_formatter(NullFormatter())


def apply() -> None:
    """seaborn's paper-like theme, readable when printed."""
    sns.set_theme(context="paper", style="whitegrid", palette=PALETTE, font_scale=1.1,
                  rc={"svg.fonttype": "none", "axes.titlesize": "medium",
                      "figure.dpi": DPI, "savefig.dpi": DPI, "legend.frameon": False})


def save(figure: plt.Figure, stem: Path, vector: bool = True) -> list[Path]:
    """Write ``stem.png`` (and, with ``vector``, ``stem.svg``) and close the figure."""
    # not with_suffix: a stem may hold dots ("trajectories-rosen-a0.5")
    paths = [stem.with_name(f"{stem.name}.{ext}") for ext in ("png", "svg")[:1 + vector]]
    for path in paths:
        figure.savefig(path)  # laid out already: "tight" would draw it once more
    plt.close(figure)
    return paths


# margins of panel grids, in inches: fixed, so that no layout pass measures every label
LEFT, RIGHT, TOP, BOTTOM, GAP_W, GAP_H = 0.85, 0.15, 0.35, 0.6, 0.75, 0.75
LEGEND_ROW = 0.22  # inches per legend row


COLORBAR = 1.2  # inches right of the panels for a colour bar and its labels


def grid(n: int, cols: int, width: float = 3.4, height: float = 2.9, legend_rows: int = 0,
         colorbar: bool = False, **kw):
    """``n`` panels of ``width`` x ``height`` inches in rows of ``cols``, with fixed margins
    (and room for a legend of ``legend_rows`` rows below, and for :func:`colorbar_beside`
    if ``colorbar``); unused panels hidden."""
    cols = max(1, min(cols, n))
    rows = -(-n // cols)
    bottom = BOTTOM + (LEGEND_ROW * (legend_rows + 1) + 0.25 if legend_rows else 0)
    right = RIGHT + (COLORBAR if colorbar else 0)
    fig_w = LEFT + right + cols * width + (cols - 1) * GAP_W
    fig_h = TOP + bottom + rows * height + (rows - 1) * GAP_H
    figure, axes = plt.subplots(rows, cols, figsize=(fig_w, fig_h), squeeze=False, **kw)
    figure.subplots_adjust(left=LEFT / fig_w, right=1 - right / fig_w, top=1 - TOP / fig_h,
                           bottom=bottom / fig_h, wspace=GAP_W / width, hspace=GAP_H / height)
    flat = list(axes.ravel())
    for ax in flat[n:]:
        ax.set_visible(False)
    return figure, flat[:n]


def colorbar_beside(figure: plt.Figure, axes: list[plt.Axes], mappable, label: str,
                    ticks: np.ndarray) -> None:
    """A colour bar as tall as ``axes``, in the room :func:`grid` left at their right,
    labelled at ``ticks`` as a log axis would be (:func:`tick_labels`, 2 digits)."""
    boxes = [ax.get_position() for ax in axes if ax.get_visible()]
    width = figure.get_figwidth()
    bottom, top = min(b.y0 for b in boxes), max(b.y1 for b in boxes)
    cax = figure.add_axes((max(b.x1 for b in boxes) + 0.2 / width, bottom, 0.15 / width,
                           top - bottom), label="<colorbar>")
    bar = figure.colorbar(mappable, cax=cax)
    bar.set_ticks(ticks, labels=tick_labels(ticks, digits=2))  # levels: 2 digits read
    bar.set_label(label)


def legend_rows(labels: list[str], cols: int = 5) -> int:
    return -(-len(labels) // cols)


def legend_below(figure: plt.Figure, handles, labels, cols: int = 5) -> None:
    """The optimizers' legend in the room :func:`grid` left below the panels."""
    figure.legend(handles, labels, loc="lower center", ncol=min(cols, len(labels)),
                  bbox_to_anchor=(0.5, 0.0), title="optimizer")


def zero_floor(values) -> float:
    """Where exact zeros are drawn on a log axis: half a decade below the decade of the
    smallest positive value (the data's own floor, never a fixed one), between tick decades,
    so that no zero passes for a small value. 1 where nothing is positive."""
    values = np.asarray(values, float)
    positive = values[np.isfinite(values) & (values > 0)]
    return 10.0 ** (np.floor(np.log10(positive.min())) - 0.5) if positive.size else 1.0


def mark_zero(ax: plt.Axes, floor: float) -> None:
    """A dotted line at ``floor``, labelled "0 (exact)": where :func:`zero_floor` put zeros."""
    ax.axhline(floor, color="grey", linewidth=0.6, linestyle=":", zorder=1)
    ax.text(0.01, floor, "0 (exact)", transform=ax.get_yaxis_transform(), ha="left",
            va="bottom", fontsize=7, color="dimgrey")


def panel_note(ax: plt.Axes, lines: list[str]) -> None:
    """Notes a reader needs to read a panel (hidden curves, a changed drawing), where they
    cover the least data (a handle-less legend at matplotlib's "best" place)."""
    if lines:
        blank = Line2D([], [], linestyle="none")
        ax.legend([blank] * len(lines), lines, loc="best", handlelength=0, handletextpad=0,
                  fontsize=7, frameon=True, framealpha=0.8, edgecolor="none",
                  borderpad=0.3, labelspacing=0.2)
