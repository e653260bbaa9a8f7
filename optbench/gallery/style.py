"""The gallery's figure style: a stand-in with the report style's interface (``apply``,
``looks``, ``save``), to be replaced by :mod:`optbench.report.style` where that exists."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never a window

import matplotlib.pyplot as plt  # noqa: E402
import seaborn as sns  # noqa: E402

PALETTE = "colorblind"
DPI = 110
STEP = "step (optimizer updates)"


@dataclass(frozen=True)
class Look:
    """How one optimizer is drawn."""

    color: tuple[float, float, float]
    linestyle: str


def looks(optimizers: list[str]) -> dict[str, Look]:
    """A fixed colour per optimizer label, in the order given."""
    colors = sns.color_palette(PALETTE, 10)
    return {name: Look(tuple(colors[i % 10]), "-") for i, name in enumerate(optimizers)}


def apply() -> None:
    sns.set_theme(context="paper", style="whitegrid", palette=PALETTE, font_scale=1.1,
                  rc={"figure.dpi": DPI, "savefig.dpi": DPI, "legend.frameon": False,
                      "axes.titlesize": "medium"})


def save(figure: plt.Figure, stem: Path) -> list[Path]:
    """Write ``stem.png`` and close the figure."""
    path = stem.with_suffix(".png")
    figure.savefig(path, bbox_inches="tight")
    plt.close(figure)
    return [path]
