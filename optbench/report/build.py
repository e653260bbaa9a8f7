"""Draw every figure, write the tables and the page into a (staging) folder.

Figures are independent jobs: with ``workers > 1`` they run in that many processes, each
reading the store once; every 2-D surface's contour grid is evaluated once, in the job that
draws its trajectories (and animation).
"""

from __future__ import annotations

import html
import os
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd

from optbench.analysis import (
    LEGEND,
    add_compile_columns,
    compact,
    metric_groups,
    metric_title,
    write_tables,
)
from optbench.engine.sweep import float32_warning
from optbench.report import page
from optbench.report.data import ReportData
from optbench.report.workers import held_data, pool
from optbench.store import REPORT, write_atomic

TRAJECTORIES = "Trajectories on contours"
FIGURES_MODULE = "optbench.report.figures"
# (section title, figure function), in the page's order; trajectories come first, separately.
# The functions are named (pkgutil.resolve_name), so that listing the jobs imports nothing
# that draws: the workers draw while the process that lists them writes the page's text.
FIGURES = [
    ("Convergence curves", f"{FIGURES_MODULE}:convergence"),
    ("Training curves (network tasks)", f"{FIGURES_MODULE}:training_curves"),
    ("Learning-rate sensitivity", f"{FIGURES_MODULE}:lr_sensitivity"),
    ("Data profile (ECDF)", f"{FIGURES_MODULE}:ecdf"),
    ("Success heatmap", f"{FIGURES_MODULE}:success_heatmap"),
    ("Comparison with optax", f"{FIGURES_MODULE}:optax_comparison"),
    ("Loss-landscape slices", f"{FIGURES_MODULE}:landscape_slices"),
    ("Training paths (PCA)", f"{FIGURES_MODULE}:training_paths"),
    ("Linear interpolation", f"{FIGURES_MODULE}:interpolations"),
    ("Per-layer gradient norms", f"{FIGURES_MODULE}:gradient_norms"),
    ("Sharpness", f"{FIGURES_MODULE}:sharpness"),
    ("Initialization × activation", f"{FIGURES_MODULE}:init_activation"),
    ("Train/test gap", f"{FIGURES_MODULE}:generalization_gap"),
    ("GD vs SGD vs mini-batch", f"{FIGURES_MODULE}:gradient_sources"),
    ("Tuning budget", "optbench.report.comparisons:tuning_budget"),
    ("Across tasks: performance profiles and aggregate scores",
     "optbench.report.comparisons:across_tasks"),
]
# the figure job that takes longest (1.3 of the default report's 7 s of jobs) unless the
# trajectories are animated: parallel workers start it first, so that it does not run alone
# at the end; the page keeps its order
LONGEST = ("optbench.report.comparisons:across_tasks",)
T = TypeVar("T")


@dataclass(frozen=True)
class Job:
    """One figure job: a FIGURES entry (by index) or a surface's trajectories."""

    section: str
    index: int = -1  # into FIGURES
    task: str = ""  # for trajectories


@dataclass
class Done:
    section: str
    shown: list[page.Shown]
    skipped: str | None = None
    tables: list[tuple[str, str, list[str]]] = field(default_factory=list)  # as tables()


def jobs(data: ReportData) -> list[Job]:
    surfaces = [t for t in data.tasks if _is_2d_surface(data, t)]
    return ([Job(TRAJECTORIES, task=t) for t in surfaces]
            + [Job(title, index=i) for i, (title, _) in enumerate(FIGURES)])


def _is_2d_surface(data: ReportData, task: str) -> bool:
    spec = data.task_config(task)
    if spec.get("kind") != "surface" or spec.get("dim") != 2 or data.trajectories is None:
        return False
    runs = data.runs.loc[data.runs["task"] == task, "run_id"]
    return bool(data.trajectories["run_id"].isin(runs).any())


@dataclass(frozen=True)
class Options:
    """What the user asked of the figures: animated trajectories, the success heatmap's
    target, and vector copies (SVG beside each PNG: a third of the drawing time, so on
    request)."""

    animate: bool = False
    target: float | None = None
    vector: bool = False

    def links(self, name: str) -> list[str]:
        """The other formats of figure ``name`` the page links to."""
        return [f"{name}.svg"] if self.vector else []


def run(job: Job, data: ReportData, folder: Path, options: Options) -> Done:
    """Draw one job's figures into ``folder``."""
    from optbench.report import figures, style

    style.apply()
    if job.section == TRAJECTORIES:
        from optbench.report import surfaces

        grid = surfaces.contours(data.surface(job.task))
        stem = folder / f"trajectories-{job.task}"
        style.save(surfaces.small_multiples(data, job.task, grid), stem, options.vector)
        shown = [page.Shown(stem.name + ".png", f"Trajectories on {job.task}", (
            f"f − f_min of {job.task} (log-spaced filled contours over its plotting window, "
            "their levels on the colour bar; white stars: the global minimizers; where the "
            "bold paths are tiny on that window, the panels zoom to them and the last panel "
            "says so). One panel per optimizer at its best "
            f"setting ({figures.BEST}): the run of the lowest seed bold, from its start "
            "(black dot) to its end (cross), the other seeds' runs faint; a note counts the "
            "paths that leave the window. The last panel overlays every optimizer's bold "
            "path."), options.links(stem.name))]
        if options.animate:
            gif = surfaces.animate(data, job.task, grid, folder / f"animation-{job.task}")
            shown.append(page.Shown(gif.name, f"Animated trajectories on {job.task}", (
                "Every optimizer's bold path from the panels above, growing record by "
                "record.")))
        return Done(job.section, shown)
    title, name = FIGURES[job.index]
    draw = pkgutil.resolve_name(name)
    try:
        drawn = (draw(data, options.target) if draw is figures.success_heatmap
                 else draw(data))
    except figures.Skip as skip:
        return Done(title, [], str(skip))
    shown, numbers = [], []
    for d in drawn:
        style.save(d.figure, folder / d.name, options.vector)
        shown.append(page.Shown(d.name + ".png", d.title, d.caption, options.links(d.name)))
        if d.table is not None:
            numbers.append(figure_table(d.title, d.name, d.table, folder))
    return Done(title, shown, tables=numbers)


def figure_table(title: str, name: str, table: pd.DataFrame, folder: Path
                 ) -> tuple[str, str, list[str]]:
    """A figure's numbers as ``<name>.csv`` (full precision) and ``<name>.md`` in
    ``folder``, and as the page's table (3 significant digits), each followed by the
    table's ``legend`` attribute where it has one."""
    legend = table.attrs.get("legend", "")
    write_atomic(folder / f"{name}.csv", lambda tmp: table.to_csv(tmp, index=False))
    write_atomic(folder / f"{name}.md", lambda tmp: tmp.write_text(
        table.to_markdown(index=False, floatfmt=".3g") + (f"\n\n{legend}" if legend else "")
        + "\n"))
    shown = page._table(table, lambda v: f"{v:.3g}") + (
        f"<p>{html.escape(legend)}</p>" if legend else "")
    return title, shown, [f"{name}.csv", f"{name}.md"]


def _run_in_worker(job: Job, folder: Path, options: Options) -> Done:
    return run(job, held_data(), folder, options)


def draw_all(data: ReportData, folder: Path, options: Options, workers: int,
             meanwhile: Callable[[], T],
             progress: Callable[[str], None] = lambda message: None
             ) -> tuple[list[Done], T]:
    """Draw every job; call ``meanwhile`` here while the workers draw, and ``progress`` as
    the jobs finish. Returns both results."""
    todo = jobs(data)

    def told(k: int, done: Done) -> Done:
        progress(f"report: {k} of {len(todo)} figure jobs drawn")
        return done

    if workers <= 1 or len(todo) <= 1:
        return [told(k, run(j, data, folder, options))
                for k, j in enumerate(todo, 1)], meanwhile()
    data.convergence  # noqa: B018  (computed once, before the workers get the data)
    longest_first = todo if options.animate else sorted(  # animated: the trajectories
        todo, key=lambda j: j.index < 0 or FIGURES[j.index][1] not in LONGEST)
    with pool(workers, data) as executor:
        futures = {j: executor.submit(_run_in_worker, j, folder, options)
                   for j in longest_first}
        extra = meanwhile()
        return [told(k, futures[j].result()) for k, j in enumerate(todo, 1)], extra


def sections(done: list[Done], data: ReportData) -> list[page.Section]:
    """Group the jobs' figures into the page's sections, in order."""
    out: dict[str, page.Section] = {}
    for d in done:
        section = out.setdefault(d.section, page.Section(d.section))
        section.figures += d.shown
        section.skipped = d.skipped
    if TRAJECTORIES not in out:
        out = {TRAJECTORIES: page.Section(TRAJECTORIES, skipped=(
            "no 2-D surface task with recorded trajectories in this folder")), **out}
    return list(out.values())


def tables(data: ReportData, folder: Path) -> list[tuple[str, str, list[str]]]:
    if data.runs.empty:
        return [("Convergence table", "<p>No finished blocks.</p>", [])]
    table = data.convergence.copy()
    table = add_compile_columns(table, data.timings.values())
    write_tables(table, lambda name, write: write_atomic(folder / name, write))
    files = ["convergence.md", "convergence.csv", "convergence.tex"]
    groups = "".join(f"<h3>{html.escape(metric_title(metric, part['maximize'].iloc[0]))}</h3>"
                     + page._table(compact(part)) for metric, part in metric_groups(table))
    legend = "".join(f"<p>{html.escape(paragraph.replace(chr(10), ' '))}</p>"
                     for paragraph in LEGEND.split("\n\n"))
    return [("Convergence table", groups + legend, files)]


def warnings(data: ReportData) -> list[str]:
    """A sweep still writing, missing blocks, diverged runs and targets below float32's
    resolution."""
    out = [data.partial] if data.partial else []
    if not data.runs.empty:
        out += data.convergence.attrs.get("caveats", [])
    out += [f"block {k.replace('__', ' on ')} is missing from the store (the sweep did not "
            "finish it)" for k in data.missing_blocks]
    runs = data.runs
    if not runs.empty and runs["diverged"].any():
        for (task, optimizer), group in runs.groupby(["task", "optimizer"], sort=False):
            bad = group[group["diverged"].astype(bool)]
            if bad.empty:
                continue
            where = ""
            if "learning_rate" in bad:
                where = " (learning rates " + ", ".join(
                    f"{v:g}" for v in sorted(bad["learning_rate"].unique())) + ")"
            out.append(f"{optimizer} on {task}: {len(bad)} of {len(group)} runs "
                       f"diverged{where}")
    if not data.config.get("float64", False):
        for task in data.tasks:
            surface = data.surface(task)
            if surface is None:
                continue
            message = float32_warning(task, data.plans[0].get(task, data.targets), surface)
            if message:
                out.append(message)
    return out


def summary(data: ReportData) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """What was run: the config in brief, device, versions, dates; tasks and optimizers."""
    meta, config = data.meta, data.config
    record = config.get("record_every") or f"log-spaced, at most {config.get('max_records')}"
    rows = {
        "sweep": config.get("name"),
        "config hash": meta.get("config_hash"),
        "steps per run": config.get("steps"),
        "seeds": ", ".join(str(s) for s in config.get("seeds", [])),
        "records": f"every {record} step(s)" if config.get("record_every") else record,
        "targets (of each task's primary metric, unless its table sets its own)": ", ".join(
            f"{t:g}" for t in config.get("targets", [])),
        "precision": "float64" if config.get("float64") else "float32",
        "runs in the store": len(data.runs),
        "device": f"{meta.get('device_count', '?')} × {meta.get('device_kind', '?')}, "
                  f"{meta.get('process_count', 1)} process(es)",
        "versions": ", ".join(f"{k} {meta[k]}" for k in ("optbench", "jax", "optax", "python")
                              if k in meta),
        "git commit": meta.get("git_commit") or "unknown",
        "started / finished": f"{meta.get('started', '?')} / {meta.get('finished', '?')}",
    }
    run = pd.DataFrame({"": list(rows), "value": [str(v) for v in rows.values()]})
    by_kind: dict[str, list[dict]] = {}  # one table per kind: their fields differ
    for t in config.get("tasks", []):
        by_kind.setdefault(t.get("kind", "surface"), []).append(
            {k: _task_cell(k, t[k]) for k in sorted(t, key=lambda k: k != "name")
             if k != "kind"})
    optimizer_rows = []
    for label, spec in config.get("optimizers", {}).items():
        name = spec.get("optimizer", label)
        settings = {k: v for k, v in spec.items() if k != "optimizer"}
        optimizer_rows.append({
            "label": label, "optimizer": name,
            "grid": "; ".join(_grid_cell(k, v) for k, v in settings.items()),
            "defaults": ", ".join(f"{k}={v:g}" for k, v in
                                  data.hyperparameters.get(label, {}).items() if v is not None),
        })
    tasks = {f"Tasks ({kind})": pd.DataFrame(rows) for kind, rows in by_kind.items()}
    return run, {**tasks, "Optimizers": pd.DataFrame(optimizer_rows)}


def protocol(data: ReportData, folder: Path) -> str | None:
    """A stage-2 sweep's protocol, in one sentence of HTML: what stage 1 tuned on which
    metric over how many settings x seeds, and on how many fresh seeds this sweep confirms
    it; None for any other sweep. ``folder``: where this page is written."""
    stage1 = data.meta.get("stage1")
    if not isinstance(stage1, dict):
        return None
    kinds = {t["name"]: t.get("kind", "surface") for t in data.config.get("tasks", [])}
    tuned_on: dict[str, set[str]] = {}
    for task, metric in stage1["metrics"].items():
        tuned_on.setdefault(metric, set()).add(kinds.get(task, task))
    metrics = " and ".join(f"{m} on {', '.join(sorted(k))} tasks" for m, k in tuned_on.items())
    trials = [n for by_optimizer in stage1["trials"].values() for n in by_optimizer.values()]
    starts = list(stage1["starts"].values())
    budget = f"{_span(trials)} settings × {len(stage1['seeds'])} seeds" + (
        f" × {_span(starts)} starts" if max(starts) > 1 else "")
    seeds = data.config.get("seeds", [])
    fresh = len(set(seeds) - set(stage1["seeds"]))
    rerun = (f"{len(seeds)} fresh seeds" if fresh == len(seeds)
             else f"{len(seeds)} seeds ({fresh} of them fresh)")
    return (f"<p><b>Protocol:</b> stage 2 of two-stage tuning: each (task, optimizer)'s "
            f"hyperparameters were tuned in stage 1 ({_stage_1_link(stage1, folder)}) by "
            f"{html.escape(metrics)}, over {budget}, and its best setting is confirmed here "
            f"on {rerun} ({html.escape(', '.join(map(str, seeds)))}).</p>")


def _stage_1_link(stage1: dict, folder: Path) -> str:
    """Stage 1's report, linked relative to ``folder``, or its folder where it has none; and
    its config hash."""
    where = Path(stage1["directory"])
    target = where / REPORT / "index.html"
    name = (f'<a href="{html.escape(os.path.relpath(target, folder))}">'
            f"{html.escape(where.name)}</a>" if target.is_file()
            else f"<code>{html.escape(str(where))}</code>")
    return f"{name}, config hash {html.escape(str(stage1['config_hash']))}"


def _span(values: list[int]) -> str:
    """``4``, or ``2–4`` where the values differ."""
    low, high = min(values), max(values)
    return f"{low}" if low == high else f"{low}–{high}"


def _task_cell(field: str, value: Any) -> str:
    """A task table's field as the page shows it: an optimizer's fixed values (``grids``)
    as ``adam: learning_rate=0.00582, b1=0.902``, one optimizer a line; others as written."""
    if field == "grids" and isinstance(value, dict):
        return "; ".join(f"{label}: " + ", ".join(
            f"{k}={v:.3g}" if isinstance(v, int | float) else f"{k}={v}"
            for k, v in fixed.items()) for label, fixed in value.items())
    return str(value)


def _grid_cell(name: str, value: Any) -> str:
    """A swept hyperparameter as ``name ∈ {...}``; a fixed option (a flag, an integer) as
    ``name = value``."""
    if isinstance(value, list | tuple):
        return f"{name} ∈ {{{', '.join(f'{x:g}' for x in value)}}}"
    return f"{name} = {value}"


def build(data: ReportData, folder: Path, options: Options = Options(), workers: int = 1,
          progress: Callable[[str], None] | None = None) -> None:
    def text():  # the page's parts that need no figure, written while the figures are drawn
        return summary(data), tables(data, folder), warnings(data)

    done, ((run_summary, setup), table_parts, warning_lines) = draw_all(
        data, folder, options, workers, text, progress or (lambda message: None))
    table_parts += [t for d in done for t in d.tables]
    body = page.render(f"optbench report: {data.config.get('name', data.directory.name)}",
                       run_summary, setup, sections(done, data), table_parts, warning_lines,
                       protocol=protocol(data, folder))
    (folder / "index.html").write_text(body, encoding="utf-8")
