"""``optbench gallery``: run the cases, print one verdict line each, or list them."""

from __future__ import annotations

import time
from collections.abc import Sequence

from optbench.gallery import cases


def case_table() -> str:
    """The cases with their sources and claims, for ``optbench gallery --list``."""
    lines = []
    for case in cases.CASES.values():
        lines += [case.name, f"    source: {case.source}", f"    claim:  {case.claim}"]
    return "\n".join(lines)


def main(names: Sequence[str], out: str | None = None, list_only: bool = False, draw: bool = True,
         quiet: bool = False) -> int:
    """0 when every selected case reproduced, 1 otherwise."""
    if list_only:
        for name in names:
            cases.get(name)
        print(case_table())
        return 0
    started = time.perf_counter()
    out = out or str(cases.DEFAULT_ROOT)

    def report(outcome: cases.Outcome) -> None:
        print(outcome.verdict.line(), flush=True)

    outcomes = cases.run(names, out, draw=draw, quiet=quiet, report=report)
    failed = sum(not o.verdict.reproduced for o in outcomes)
    print(f"\n{len(outcomes) - failed}/{len(outcomes)} reproduced in "
          f"{time.perf_counter() - started:.1f} s; results and figures in {out}/<case>/")
    return 1 if failed else 0
