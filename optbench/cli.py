"""The ``optbench`` command line: thin wrappers that parse arguments and call the library."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import pandas as pd


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


def _print_table(title: str, table: pd.DataFrame) -> None:
    print(f"\n{title}")
    print(table.to_string(index=False))


def cmd_list(args: argparse.Namespace) -> int:
    if args.what in ("all", "optimizers"):
        _print_table("Optimizers", optimizer_table())
    if args.what in ("all", "landscapes"):
        _print_table("Landscapes", landscape_table(args.kind))
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
    from optbench.quickrun import quick_table

    print(quick_table(steps=args.steps).to_string(index=False, float_format=lambda v: f"{v:.2e}"))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="optbench", description="Optimizer and loss-landscape benchmarking on JAX."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    p = commands.add_parser("list", help="list the optimizers and landscapes")
    p.add_argument("what", nargs="?", choices=["all", "optimizers", "landscapes"], default="all")
    p.add_argument("--kind", help="only landscapes of this class")
    p.set_defaults(func=cmd_list)

    p = commands.add_parser("verify", help="compare every optimizer with optax (float64)")
    p.add_argument("--steps", type=int, default=500)
    p.set_defaults(func=cmd_verify)

    p = commands.add_parser("run", help="run the default benchmark and print its table")
    p.add_argument("--steps", type=int, default=2000)
    p.set_defaults(func=cmd_run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except ValueError as error:
        print(f"optbench: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
