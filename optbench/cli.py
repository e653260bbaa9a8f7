"""The ``optbench`` command line: thin wrappers that parse arguments and call the library."""

from __future__ import annotations

import argparse
import functools
import sys
import warnings
from collections.abc import Sequence

import pandas as pd

from optbench.errors import OptbenchError


def optimizer_table() -> pd.DataFrame:
    """One row per registered optimizer: rule, defaults, optax counterpart."""
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


def landscape_table(kind: str | None = None) -> pd.DataFrame:
    """One row per registered landscape: class, supported dimensions, minimum."""
    import landscapes

    rows = []
    for name in landscapes.names(kind=kind):
        surface = landscapes.get(name)
        low, high = surface.dims
        rows.append({
            "landscape": name,
            "class": surface.kind,
            "dims": f"{low}" if low == high else f"{low}..{high or 'n'}",
            "f_min": "unbounded" if not surface.bounded else f"{surface.f_min:.10g}",
            "minimizers": len(surface.minimizers),
        })
    return pd.DataFrame(rows)


def task_table() -> pd.DataFrame:
    """One row per task kind usable in a ``[[tasks]]`` table (``kind = ...``)."""
    from optbench.tasks import registry

    return pd.DataFrame([{"kind": name, "what it is": registry.get(name).description}
                         for name in registry.names()])


def _print_table(title: str, table: pd.DataFrame) -> None:
    print(f"\n{title}")
    print(table.to_string(index=False))


def cmd_list(args: argparse.Namespace) -> int:
    if args.what in ("all", "optimizers"):
        _print_table("Optimizers", optimizer_table())
    if args.what in ("all", "landscapes"):
        _print_table("Landscapes", landscape_table(args.kind))
    if args.what in ("all", "tasks"):
        _print_table("Task kinds", task_table())
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from optbench.optimizers.reference import deviation_table

    table = pd.DataFrame(deviation_table(steps=args.steps))
    print(f"Max relative deviation from optax, float64, {args.steps} steps "
          "(max over steps of ||ours - optax||_inf / ||optax||_inf):")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.1e}"))
    worst = float(table["max"].max())
    print(f"\nworst: {worst:.1e} (tolerance 1e-10)")
    return 0 if worst <= 1e-10 else 1


def cmd_run(args: argparse.Namespace) -> int:
    """The default job: the built-in sweep into results/default, then its table."""
    from optbench.config import example

    return _sweep_and_report(example("default"), args)


def cmd_sweep(args: argparse.Namespace) -> int:
    from optbench.config import example, load
    from optbench.engine.distributed import initialize

    if (args.config is None) == (args.example is None):
        raise OptbenchError("give a CONFIG.toml or --example NAME (not both)")
    config = example(args.example) if args.example else load(args.config)
    initialize(args.coordinator, args.num_processes, args.process_id, args.distributed,
               args.join_timeout)
    return _sweep_and_report(config, args)


def _sweep_and_report(config, args: argparse.Namespace) -> int:
    import jax

    from optbench.analysis import tables_for
    from optbench.engine import run_sweep

    directory = run_sweep(config, args.out, force=args.force, yes=args.yes, quiet=args.quiet,
                          compile_cache=False if args.no_compile_cache else None)
    if jax.process_index() != 0:
        return 0  # process 0 writes and prints
    _, text = tables_for(directory)
    print(text)
    print(f"\nresults: {directory}/ (runs.parquet, curves.parquet, convergence.md/.csv/.tex)")
    return 0


def cmd_table(args: argparse.Namespace) -> int:
    from optbench.analysis import reference_deviation, tables_for
    from optbench.engine.sweep import run_reference
    from optbench.store import ResultStore

    store = ResultStore(args.directory)
    if not store.meta_path.exists():
        raise OptbenchError(f"{args.directory} holds no sweep results (no meta.json)")
    deviation = None
    if args.reference == "optax":
        reference = ResultStore(run_reference(args.directory, quiet=args.quiet))
        deviation = reference_deviation(store.table("curves"), reference.table("curves"),
                                        store.table("runs"))
    _, text = tables_for(args.directory, deviation)
    print(text)
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    if args.what == "seeds":
        from optbench.bench_seeds import main

        main(quick=args.quick)
        return 0
    from optbench.bench import bench_sweep

    bench_sweep(quick=args.quick)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
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
    p.add_argument("--kind", help="only landscapes of this class")
    p.set_defaults(func=cmd_list)

    p = command("verify", help="compare every optimizer with optax (float64)")
    p.add_argument("--steps", type=int, default=500)
    p.set_defaults(func=cmd_verify)

    p = command("run", help="run the default sweep and print its convergence table")
    _sweep_options(p)
    p.set_defaults(func=cmd_run)

    p = command("sweep", help="run a sweep from a TOML config")
    p.add_argument("config", nargs="?", help="the sweep's TOML file")
    p.add_argument("--example", help="a config shipped with optbench instead of a file")
    _sweep_options(p)
    cluster = p.add_argument_group("several processes (jax.distributed; see the README)")
    cluster.add_argument("--coordinator", metavar="HOST:PORT",
                         help="address of process 0, which every process connects to")
    cluster.add_argument("--num-processes", type=int, metavar="N")
    cluster.add_argument("--process-id", type=int, metavar="I")
    cluster.add_argument("--distributed", action="store_true",
                         help="read the three from SLURM (srun) or Open MPI (mpirun)")
    cluster.add_argument("--join-timeout", type=int, default=60, metavar="SECONDS",
                         help="how long to wait for the other processes (default 60)")
    p.set_defaults(func=cmd_sweep)

    p = command("table", help="convergence tables of a stored sweep")
    p.add_argument("directory")
    p.add_argument("--reference", choices=["optax"],
                   help="re-run every block with optax and report the max deviation")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_table)

    p = command("bench", help="benchmarks (ratios measured in one run)")
    p.add_argument("what", choices=["sweep", "seeds"])
    p.add_argument("--quick", action="store_true", help="a smaller grid, for a smoke test")
    p.set_defaults(func=cmd_bench)
    return parser


def _sweep_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", help="results folder (default: results/<sweep name>)")
    p.add_argument("--force", action="store_true",
                   help="replace results of a different config in that folder")
    p.add_argument("--yes", action="store_true", help="run even an enormous sweep")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--no-compile-cache", action="store_true",
                   help="compile every program afresh instead of loading it from the user cache "
                   "folder (also: OPTBENCH_COMPILE_CACHE=off, or compile_cache = false)")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    warnings.formatwarning = lambda message, *_, **__: f"optbench: warning: {message}\n"
    try:
        return args.func(args)
    except OptbenchError as error:
        if args.debug:
            raise
        print(f"optbench: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
