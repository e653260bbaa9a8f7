"""What a reader sees on a drawn matplotlib figure: labelled ticks, texts, colour bars."""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.text import Text


def labelled_ticks(axis) -> list[str]:
    """The non-empty major tick labels inside the axis's view, as drawn."""
    axis.axes.figure.canvas.draw()
    lo, hi = sorted(axis.get_view_interval())
    return [tick.label1.get_text() for tick in axis.get_major_ticks()
            if tick.label1.get_text() and lo <= tick.get_loc() <= hi]


def log_axes(figure: plt.Figure):
    """Every visible log axis (x or y) of the figure's panels."""
    return [axis for ax in figure.axes if ax.get_visible() and ax.get_label() != "<colorbar>"
            for axis, scale in ((ax.xaxis, ax.get_xscale()), (ax.yaxis, ax.get_yscale()))
            if scale == "log"]


def texts(artist) -> list[str]:
    """Every text drawn on a figure or axes (titles, notes, legends, annotations)."""
    return [t.get_text() for t in artist.findobj(Text) if t.get_visible() and t.get_text()]


def panels(figure: plt.Figure) -> list[plt.Axes]:
    """The visible panels, colour bars left out."""
    return [ax for ax in figure.axes if ax.get_visible() and ax.get_label() != "<colorbar>"
            and not hasattr(ax, "_colorbar")]
