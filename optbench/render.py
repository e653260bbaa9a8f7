"""Tables for a terminal: left-aligned, at most :data:`WIDTH` columns wide.

Files keep their tables whole; what is printed wraps long cells (:func:`plain`) or splits a
wide table into column groups that repeat its key columns (:func:`markdown_split`).
"""

from __future__ import annotations

import pandas as pd
from tabulate import tabulate

WIDTH = 100  # terminal columns the printed tables fit
_GAP = 2  # tabulate's "plain" format puts two spaces between columns
_MIN_COLUMN = 12  # a wrapped column keeps at least this many characters


def plain(table: pd.DataFrame, width: int = WIDTH) -> str:
    """``table`` left-aligned, long cells wrapped so that every line fits ``width``."""
    text = table.astype(str)
    widths = [max([len(str(c)), *map(len, text[c])]) for c in text.columns]
    words = [max(len(w) for cell in [str(c), *text[c]] for w in cell.split() or [""])
             for c in text.columns]
    budget = width - _GAP * (len(widths) - 1)
    for floor in ([max(w, _MIN_COLUMN) for w in words], [_MIN_COLUMN] * len(widths)):
        # shrink the widest column that can still shrink: first without breaking words
        while sum(widths) > budget:
            shrinkable = [i for i, w in enumerate(widths) if w > floor[i]]
            if not shrinkable:
                break
            widest = max(shrinkable, key=widths.__getitem__)
            widths[widest] -= 1
    return tabulate(text.values.tolist(), headers=list(text.columns), tablefmt="plain",
                    stralign="left", numalign="left", disable_numparse=True,
                    maxcolwidths=widths, maxheadercolwidths=widths)


def markdown_split(table: pd.DataFrame, keys: list[str], width: int = WIDTH) -> str:
    """``table`` as Markdown; when wider than ``width``, as several tables, each with the
    ``keys`` columns and as many of the others as fit."""
    others = [c for c in table.columns if c not in keys]
    parts, current = [], []
    for column in others:
        trial = current + [column]
        if current and _width(table[keys + trial]) > width:
            parts.append(current)
            trial = [column]
        current = trial
    if current or not parts:
        parts.append(current)
    return "\n\n".join(table[keys + part].to_markdown(index=False) for part in parts)


def _width(table: pd.DataFrame) -> int:
    return max(map(len, table.to_markdown(index=False).splitlines()))
