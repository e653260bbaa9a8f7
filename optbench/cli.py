"""The ``optbench`` command line: thin wrappers that parse arguments and call the library."""

from __future__ import annotations

import argparse
import atexit
import contextlib
import errno
import functools
import os
import sys
import threading
import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from optbench.errors import Interrupted, OptbenchError

if TYPE_CHECKING:  # pandas and jax load only where a command needs them: --help stays fast
    import pandas as pd


def optimizer_table() -> pd.DataFrame:
    """One row per registered optimizer: rule, defaults, optax counterpart."""
    import pandas as pd

    from optbench import optimizers

    rows = []
    for name in optimizers.names():
        spec = optimizers.get(name)
        rows.append({
            "optimizer": name,
            "update rule": spec.summary,
            "defaults": ", ".join(f"{k}={v:g}" for k, v in spec.defaults.items()),
            "optax counterpart": spec.optax_call,
        })
    return pd.DataFrame(rows)


def optimizer_sources() -> list[str]:
    """Each optimizer's source and how implementations differ, as lines of at most
    :data:`optbench.render.WIDTH` columns."""
    import textwrap

    from optbench import optimizers
    from optbench.render import WIDTH

    lines = []
    for name in optimizers.names():
        spec = optimizers.get(name)
        text = f"{name}: {spec.reference}" + (f". {spec.notes}" if spec.notes else "")
        lines += textwrap.wrap(text, WIDTH, subsequent_indent="    ")
    return lines


def literal(value) -> str:
    """A default as a TOML value (``"relu"``, ``[32, 64]``, ``true``); a default in words
    (a :class:`~optbench.tasks.registry.Rule`) as it is."""
    import json

    from optbench.tasks.registry import Rule

    return value if isinstance(value, Rule) else json.dumps(value)


def landscape_table(kind: str | None = None) -> pd.DataFrame:
    """One row per registered landscape: class, supported dimensions, minimum."""
    import pandas as pd

    from optbench import landscapes

    rows = []
    for name in landscapes.names(kind=kind):
        surface = landscapes.get(name)
        low, high = surface.dims
        rows.append({
            "landscape": name,
            "class": surface.kind,
            "dims": f"{low}" if low == high else f"{low}..{high or 'n'}",
            "f_min": "unbounded" if not surface.bounded else f"{surface.f_min:.10g}",
            "over": surface.minimum_over,
            "minimizers": len(surface.minimizers),
        })
    return pd.DataFrame(rows)


def landscape_parameters(kind: str | None = None) -> list[str]:
    """The parameters of each landscape that has any (a surface task's ``params`` table),
    with their defaults and allowed values, as lines of at most
    :data:`optbench.render.WIDTH` columns."""
    import textwrap

    from optbench import landscapes
    from optbench.render import WIDTH

    lines = []
    for name in landscapes.names(kind=kind):
        params = landscapes.base.parameters(name)
        text = ", ".join(f"{k} = {literal(p.default)} ({p.allowed})" for k, p in params.items())
        if text:
            lines += textwrap.wrap(f"{name}: {text}", WIDTH, subsequent_indent="    ")
    return lines


def task_table() -> pd.DataFrame:
    """One row per task kind usable in a ``[[tasks]]`` table (``kind = ...``)."""
    import pandas as pd

    from optbench.tasks import registry

    return pd.DataFrame([{"kind": name, "what it is": registry.get(name).about()}
                         for name in registry.names()])


def task_fields_table(name: str) -> pd.DataFrame:
    """One row per field of the task kind ``name``: its default, and (for a kind with
    sweepable fields) whether a list of values in it stands for one task per value."""
    import pandas as pd

    from optbench.tasks import registry

    if name not in registry.names():
        raise OptbenchError(f"optbench list tasks KIND: found {name!r}; allowed one of "
                            f"{', '.join(registry.names())}")
    kind = registry.get(name)
    rows = [{"field": f, "default": literal(v)} for f, v in (kind.fields or dict)().items()]
    if kind.sweepable:
        for row in rows:
            row["a list sweeps it"] = "yes" if row["field"] in kind.sweepable else ""
    return pd.DataFrame(rows)


def _print_table(title: str, table: pd.DataFrame) -> None:
    from optbench.render import plain

    print(f"\n{title}")
    print(plain(table))


def cmd_list(args: argparse.Namespace) -> int:
    if args.kind is not None and args.what not in ("all", "landscapes"):
        raise OptbenchError(f"optbench list {args.what}: --kind applies only to landscapes "
                            "(optbench list landscapes --kind KIND)")
    if args.name is not None and args.what != "tasks":
        raise OptbenchError(f"optbench list {args.what}: found KIND {args.name!r}; allowed only "
                            "after tasks (optbench list tasks KIND)")
    if args.what in ("all", "optimizers"):
        _print_table("Optimizers", optimizer_table())
        print("\nSources, and where implementations differ")
        print("\n".join(optimizer_sources()))
    if args.what in ("all", "landscapes"):
        _print_table("Landscapes", landscape_table(args.kind))
        lines = landscape_parameters(args.kind)
        if lines:
            print("\nParameters (default, allowed values), set in a surface task's table as "
                  "params = { ... }")
            print("\n".join(lines))
    if args.what in ("all", "tasks") and args.name is None:
        _print_table("Task kinds", task_table())
        print("\noptbench list tasks KIND: a kind's fields with their defaults")
    if args.name is not None:
        _print_task_fields(args.name)
    return 0


def _print_task_fields(name: str) -> None:
    """The fields of the task kind ``name`` under its description."""
    import textwrap

    from optbench.render import WIDTH
    from optbench.tasks import registry

    table = task_fields_table(name)
    title = textwrap.wrap(f"Task kind {name}: {registry.get(name).about()}", WIDTH)
    _print_table("\n".join(title), table)
    if "a list sweeps it" in table:
        print("\nA list of values in a field marked 'yes' stands for one task per value.")


def cmd_verify(args: argparse.Namespace) -> int:
    import pandas as pd

    from optbench.optimizers.reference import deviation_table, variant_table

    with _status_line() as status:
        table = pd.DataFrame(deviation_table(steps=args.steps, progress=status))
    print(f"Max relative deviation from optax, float64, {args.steps} steps "
          "(max over steps of ||ours - optax||_inf / ||optax||_inf):")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.1e}"))
    variants = pd.DataFrame(variant_table(steps=args.steps))
    print("\noptax's other options (optbench.optimizers.X(...) vs optax.X(...), 50-d quadratic):")
    print(variants.to_string(index=False, float_format=lambda v: f"{v:.1e}"))
    worst = max(float(table["max"].max()), float(variants["max"].max()))
    print(f"\nworst: {worst:.1e} (tolerance 1e-10)")
    return 0 if worst <= 1e-10 else 1


def cmd_run(args: argparse.Namespace) -> int:
    """The default job: the built-in sweep into results/default, then its table."""
    from optbench.config import example

    return _sweep_and_report(example("default"), args, report=True)


def cmd_sweep(args: argparse.Namespace) -> int:
    from optbench.config import example, load
    from optbench.engine.distributed import initialize

    if [args.config, args.example, args.best_of].count(None) != 2:
        raise OptbenchError("give one of CONFIG.toml, --example NAME or --best-of DIR")
    if args.seeds is not None and args.best_of is None:
        raise OptbenchError("--seeds applies to --best-of DIR only (a config sets its seeds)")
    out, meta = args.out, None
    if args.best_of:
        from optbench.config import parse
        from optbench.tuning import DEFAULT_SEEDS, rerun_best, stage_1, stage_2_folder

        config = parse(rerun_best(args.best_of, args.seeds or DEFAULT_SEEDS),
                       source="--best-of")
        out, meta = out or stage_2_folder(args.best_of), {"stage1": stage_1(args.best_of)}
    else:
        config = example(args.example) if args.example else load(args.config)
    initialize(args.coordinator, args.num_processes, args.process_id, args.distributed,
               args.join_timeout)
    return _sweep_and_report(config, args, report=args.report, out=out, meta=meta)


def _sweep_and_report(config, args: argparse.Namespace, report: bool = False,
                      out=None, meta: dict | None = None) -> int:
    """Run ``config`` into ``out`` (default: ``--out``, else ``results/<name>``), with
    ``meta`` added to its meta.json; print its table, and write its report if asked."""
    import jax

    from optbench.analysis import write_finished_tables
    from optbench.engine import SweepTooLarge, run_sweep
    from optbench.engine.distributed import use_every_core

    one_process = not (getattr(args, "distributed", False) or getattr(args, "coordinator", None))
    if one_process:
        use_every_core()
    if report and one_process:
        from optbench.report.workers import start_early

        with contextlib.suppress(OSError):  # only a head start: the report tries again
            start_early()  # the figure workers' imports, while the sweep runs

    def sweep(yes: bool):
        return run_sweep(config, out or args.out, force=args.force, yes=yes, quiet=args.quiet,
                         rerun=args.rerun, meta=meta,
                         compile_cache=False if args.no_compile_cache else None)

    try:
        directory = sweep(args.yes)
    except SweepTooLarge as error:
        if not sys.stdin.isatty() or not _confirm(f"{error}. Run it now?"):
            raise
        directory = sweep(True)
    if jax.process_index() != 0:
        return 0  # process 0 writes and prints
    print(write_finished_tables(directory))
    print(f"\nresults: {directory}/ (runs.parquet, curves.parquet, convergence.md/.csv/.tex)")
    if report:
        from optbench.report import write_report

        print(f"report: {write_report(directory)}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from optbench.report import write_report
    from optbench.store import ResultStore

    _warn_if_partial(ResultStore(args.directory))
    with _status_line() as status:
        index = write_report(args.directory, args.out, animate=args.animate,
                             target=args.target, workers=args.workers, vector=args.svg,
                             progress=status)
    print(index)
    return 0


@contextlib.contextmanager
def _status_line():
    """On a terminal, a function showing one changing status line on stderr (what a long
    command is doing), erased at the end; elsewhere (a log) one that says nothing."""
    if not sys.stderr.isatty():
        yield lambda message: None
        return
    try:
        yield lambda message: print(f"\r{message[:99]}\x1b[K", end="", file=sys.stderr,
                                    flush=True)
    finally:
        print("\r\x1b[K", end="", file=sys.stderr, flush=True)


def _confirm(question: str) -> bool:
    """Ask on the terminal; only an answer starting with y is a yes."""
    try:
        return input(f"optbench: {question} [y/N] ").strip().lower().startswith("y")
    except EOFError:
        return False


def cmd_table(args: argparse.Namespace) -> int:
    """Print the convergence tables; write them only with --write (into the results folder)
    or --out (another folder): a reading command leaves the folder as it is."""
    from pathlib import Path

    from optbench.analysis import reference_deviation, tables_for, write_tables
    from optbench.store import ResultStore, write_atomic

    store = ResultStore(args.directory)
    _warn_if_partial(store)
    deviation = None
    if args.reference == "optax":
        from optbench.engine.sweep import run_reference  # JAX: only to run the reference

        reference = ResultStore(run_reference(args.directory, quiet=args.quiet))
        deviation = reference_deviation(store.table("curves"), reference.table("curves"),
                                        store.table("runs"))
    table, text = tables_for(args.directory, deviation)
    print(text)
    if args.write:
        with store:
            store.lock()
            write_tables(table, store.write)
    if args.out:
        out = Path(args.out)
        try:
            write_tables(table, lambda name, write: write_atomic(out / name, write))
        except OSError as error:
            raise OptbenchError(f"cannot write into {out} ({error.strerror}); choose a folder "
                                "you can write to") from None
    return 0


def _warn_if_partial(store) -> None:
    """Readers say so when a sweep is still writing the folder they read."""
    if store.meta_path.is_file() and (message := store.partial_warning()):
        warnings.warn(message, stacklevel=2)


def cmd_store_check(args: argparse.Namespace) -> int:
    from optbench.store import ResultStore

    store = ResultStore(args.directory)
    report = store.repair() if args.repair else store.check()
    print(report.text())
    return 0 if report.ok or args.repair else 1


def cmd_bench(args: argparse.Namespace) -> int:
    from optbench import bench

    bench.run(args.what, device=args.device, quick=args.quick, json_path=args.json)
    return 0


VERIFY_MAX_STEPS = 10**6  # verify keeps every step: 1e6 steps are tens of MB per comparison


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (exit code 2), like every other optbench error."""

    def error(self, message: str):
        self.exit(2, f"optbench: error: {self.prog}: {message}\n")


def int_option(low: int, high: int | None = None) -> Callable[[str], int]:
    """An argparse type: an integer in [low, high], with the config's one-line wording."""

    def parse(text: str) -> int:
        from optbench.validate import ConfigError, integer

        try:
            value: int | str = int(text)
        except ValueError:
            value = text
        try:
            return integer(value, "", low, high)
        except ConfigError as error:
            raise argparse.ArgumentTypeError(f"found {text!r}; allowed {error.allowed}"
                                             ) from None

    return parse


def cmd_gallery(args: argparse.Namespace) -> int:
    from optbench.engine.distributed import use_every_core
    from optbench.gallery import cli

    use_every_core()
    return cli.main(args.names, args.out, list_only=args.list, draw=not args.no_figures,
                    quiet=args.quiet)


def build_parser() -> argparse.ArgumentParser:
    from optbench import bench  # its names only: the benchmarks load when they run

    parser = _Parser(
        prog="optbench", description="Optimizer and loss-landscape benchmarking on JAX."
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    # --debug is accepted after the subcommand too; SUPPRESS keeps the subcommand's parser
    # from resetting a --debug given before it
    debug = argparse.ArgumentParser(add_help=False)
    debug.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="show tracebacks of errors")
    commands = parser.add_subparsers(dest="command", required=True)
    command = functools.partial(commands.add_parser, parents=[debug])

    p = command("list", help="list the optimizers, landscapes and task kinds")
    p.add_argument("what", nargs="?", choices=["all", "optimizers", "landscapes", "tasks"],
                   default="all")
    p.add_argument("name", nargs="?", metavar="KIND",
                   help="with tasks: this task kind's fields and their defaults")
    p.add_argument("--kind", help="only landscapes of this class")
    p.set_defaults(func=cmd_list)

    p = command("verify", help="compare every optimizer with optax (float64)")
    p.add_argument("--steps", type=int_option(1, VERIFY_MAX_STEPS), default=500,
                   help=f"steps per comparison, 1..{VERIFY_MAX_STEPS} (default 500; verify "
                   "keeps every step's parameters)")
    p.set_defaults(func=cmd_verify)

    p = command("run", help="run the default sweep, print its convergence table and write "
                "its report")
    _sweep_options(p)
    p.set_defaults(func=cmd_run)

    p = command("sweep", help="run a sweep from a TOML config")
    p.add_argument("config", nargs="?", help="the sweep's TOML file")
    p.add_argument("--example", help="a config shipped with optbench instead of a file")
    p.add_argument("--best-of", metavar="DIR",
                   help="stage 2 of DeepOBS-style tuning: rerun each (task, optimizer)'s best "
                   "setting in the finished sweep DIR on --seeds fresh seeds (the smallest "
                   "ones DIR did not run), into DIR-best beside DIR unless --out says "
                   "otherwise; its meta.json and report name DIR and its tuning budget")
    p.add_argument("--seeds", type=int_option(1), metavar="N",
                   help="seeds of the --best-of rerun (default 10, as DeepOBS)")
    _sweep_options(p)
    cluster = p.add_argument_group("several processes (jax.distributed; see the README)")
    cluster.add_argument("--coordinator", metavar="HOST:PORT",
                         help="address of process 0, which every process connects to")
    cluster.add_argument("--num-processes", type=int_option(1), metavar="N")
    cluster.add_argument("--process-id", type=int_option(0), metavar="I")
    cluster.add_argument("--distributed", action="store_true",
                         help="read the three from SLURM (srun) or Open MPI (mpirun)")
    cluster.add_argument("--join-timeout", type=int_option(1), default=60, metavar="SECONDS",
                         help="how long to wait for the other processes (default 60)")
    p.add_argument("--report", action="store_true",
                   help="then write the HTML report (as optbench report) and print its path")
    p.set_defaults(func=cmd_sweep)

    p = command("table", help="convergence tables of a stored sweep")
    p.add_argument("directory")
    p.add_argument("--reference", choices=["optax"],
                   help="re-run every block with optax and report the max deviation")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--write", action="store_true",
                   help="also write convergence.{md,csv,tex} into DIRECTORY")
    p.add_argument("--out", metavar="FOLDER", help="write convergence.{md,csv,tex} into FOLDER")
    p.set_defaults(func=cmd_table)

    p = command("store", help="check a results folder against its manifest")
    p.add_argument("what", choices=["check"])
    p.add_argument("directory")
    p.add_argument("--repair", action="store_true",
                   help="delete damaged files and leftovers, rebuild meta.json; rerunning the "
                   "sweep then recomputes what was deleted")
    p.set_defaults(func=cmd_store_check)

    p = command("report", help="figures, tables and an offline index.html of a stored sweep")
    p.add_argument("directory", help="the sweep's results folder")
    p.add_argument("--out", help="write the report here instead of DIRECTORY/report")
    p.add_argument("--animate", action="store_true",
                   help="also animated trajectories (GIF) on each 2-D surface")
    p.add_argument("--target", type=float,
                   help="the success heatmap's target (default: the most telling one)")
    p.add_argument("--workers", type=int, help="processes drawing figures (default: CPUs, "
                   "at most 4)")
    p.add_argument("--svg", action="store_true",
                   help="also each figure as SVG, for print (about a third slower)")
    p.set_defaults(func=cmd_report)

    p = command("gallery", help="reproduce published optimizer failures, assert and draw them")
    p.add_argument("names", nargs="*", metavar="NAME", help="cases to run (default: all)")
    p.add_argument("--list", action="store_true", help="list the cases with their sources")
    p.add_argument("--out", help="results root (default: results/gallery)")
    p.add_argument("--no-figures", action="store_true", help="check the claims only")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_gallery)

    p = command("bench", help="head-to-heads with optax, torch and the hardware limit "
                "(ratios measured in one run)")
    p.add_argument("what", nargs="+", choices=["all", *bench.names()])
    p.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke test")
    p.add_argument("--device", help="cpu or gpu (default: JAX's default device)")
    p.add_argument("--json", metavar="FILE", help="also write the tables to FILE as JSON")
    p.set_defaults(func=cmd_bench)
    return parser


def _sweep_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", help="results folder (default: results/<sweep name>)")
    p.add_argument("--force", action="store_true",
                   help="replace results of a different config in that folder (deletes only "
                   "the files its manifest lists)")
    p.add_argument("--rerun", action="store_true",
                   help="recompute the blocks already done instead of resuming")
    p.add_argument("--yes", action="store_true",
                   help="run a sweep estimated to take more than 10 minutes without asking")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--no-compile-cache", action="store_true",
                   help="compile every program afresh instead of loading it from the user cache "
                   "folder (also: OPTBENCH_COMPILE_CACHE=off, or compile_cache = false)")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    warnings.formatwarning = lambda message, *_, **__: f"optbench: warning: {message}\n"
    try:
        return args.func(args)
    except KeyboardInterrupt:
        if args.debug:
            raise
        print("optbench: interrupted; finished blocks are saved, run the same command again "
              "to resume", file=sys.stderr)
        return 130
    except Interrupted as error:
        print(f"optbench: {error}", file=sys.stderr)
        return 130
    except OptbenchError as error:
        if args.debug:
            raise
        print(f"optbench: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        if args.debug or error.errno not in FULL_DISK:
            raise
        print(f"optbench: error: {os.strerror(error.errno).lower()} (while writing "
              f"{error.filename or 'results'}); free some space and run the same command "
              "again: what was finished is kept, nothing half-written", file=sys.stderr)
        return 2


FULL_DISK = (errno.ENOSPC, errno.EDQUOT)  # a write that more space would let through


def console() -> None:
    """The ``optbench`` command: :func:`main`, then exit without Python's teardown of what
    pandas, scipy, matplotlib and JAX hold, which took 0.2 s after a table and 0.5 s after
    a report on 2 cores. Only once nothing is left to finish: no thread but this one
    running, the exit handlers run, the output flushed; otherwise Python exits as usual.
    Every file optbench writes is complete when written (``kill -9`` loses nothing), so
    skipping the teardown loses nothing either."""
    code = main()
    if any(t is not threading.main_thread() and not t.daemon and t.is_alive()
           for t in threading.enumerate()):
        sys.exit(code)  # Python waits for them, as ever
    atexit._run_exitfuncs()
    try:
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:  # None: started with that descriptor closed
                stream.flush()
    except (OSError, ValueError):  # a closed pipe or file: Python's own exit reports it
        sys.exit(code)
    os._exit(code)


if __name__ == "__main__":
    console()
