"""``index.html``: one static page (no script, no network) that shows the report's figures,
tables and warnings, and prints well."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pandas as pd

CSS = """
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: #222;
       max-width: 1100px; margin: 2em auto; padding: 0 1em; background: #fff; }
h1 { font-size: 1.7em; margin-bottom: 0.2em; }
h2 { border-bottom: 1px solid #ddd; padding-bottom: 0.2em; margin-top: 2em; }
figure { margin: 1em 0 2em; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: 0.92em; color: #444; margin-top: 0.4em; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.6em 0 1.2em; }
th, td { border: 1px solid #ddd; padding: 0.2em 0.5em; text-align: left; }
th { background: #f4f4f4; }
.skipped { color: #666; font-style: italic; }
.warnings { background: #fff8e5; border-left: 4px solid #e0a800; padding: 0.5em 1em; }
.files a { margin-right: 0.8em; }
nav ol { columns: 2; }
@media print {
  body { max-width: none; margin: 0; font-size: 11pt; }
  nav, .files { display: none; }
  figure, table { break-inside: avoid; }
  h2 { break-after: avoid; }
}
"""


@dataclass
class Shown:
    """A figure on the page: image file, other formats, title, caption."""

    image: str
    title: str
    caption: str
    other_files: list[str] = field(default_factory=list)


@dataclass
class Section:
    """A page section: figures, or the reason it has none."""

    title: str
    figures: list[Shown] = field(default_factory=list)
    skipped: str | None = None

    @property
    def anchor(self) -> str:
        return "".join(c if c.isalnum() else "-" for c in self.title.lower()).strip("-")


def _table(frame: pd.DataFrame, float_format=None) -> str:
    return frame.to_html(index=False, border=0, escape=True, na_rep="–",
                         float_format=float_format)


def _figure(shown: Shown) -> str:
    files = " ".join(f'<a href="{html.escape(f)}">{html.escape(f.rsplit(".", 1)[-1].upper())}'
                     "</a>" for f in [shown.image, *shown.other_files])
    return (f'<figure><img src="{html.escape(shown.image)}" alt="{html.escape(shown.title)}">'
            f"<figcaption><b>{html.escape(shown.title)}.</b> {html.escape(shown.caption)} "
            f'<span class="files">{files}</span></figcaption></figure>')


def render(title: str, run_summary: pd.DataFrame, setup: dict[str, pd.DataFrame],
           sections: list[Section], tables: list[tuple[str, str, list[str]]],
           warnings: list[str], protocol: str | None = None) -> str:
    """The whole page. ``tables``: (title, HTML, files beside it); ``protocol``: a paragraph
    of HTML opening "What was run" (a stage-2 sweep's)."""
    nav = ["What was run", *(s.title for s in sections), "Tables", "Warnings"]
    anchors = ["run", *(s.anchor for s in sections), "tables", "warnings"]
    toc = "".join(f'<li><a href="#{a}">{html.escape(n)}</a></li>'
                  for n, a in zip(nav, anchors, strict=True))
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p>Written {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by <code>optbench report</code>."
        "</p>",
        f"<nav><h2>Contents</h2><ol>{toc}</ol></nav>",
        '<h2 id="run">What was run</h2>', protocol or "", _table(run_summary),
    ]
    for name, frame in setup.items():
        parts += [f"<h3>{html.escape(name)}</h3>", _table(frame)]
    for section in sections:
        parts.append(f'<h2 id="{section.anchor}">{html.escape(section.title)}</h2>')
        if section.skipped:
            parts.append(f'<p class="skipped">Skipped: {html.escape(section.skipped)}.</p>')
        parts += [_figure(f) for f in section.figures]
    parts.append('<h2 id="tables">Tables</h2>')
    for name, body, files in tables:
        links = " ".join(f'<a href="{html.escape(f)}">{html.escape(f)}</a>' for f in files)
        parts += [f"<h3>{html.escape(name)}</h3>", f'<p class="files">{links}</p>', body]
    parts.append('<h2 id="warnings">Warnings</h2>')
    if warnings:
        items = "".join(f"<li>{html.escape(w)}</li>" for w in warnings)
        parts.append(f'<div class="warnings"><ul>{items}</ul></div>')
    else:
        parts.append("<p>None: every block of the config is in the store and no run "
                     "diverged.</p>")
    parts.append("</body></html>")
    return "\n".join(parts)
