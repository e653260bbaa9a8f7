"""The gallery's cases: each a sweep config shipped with the package, a published claim
asserted on its results (:mod:`optbench.gallery.verdicts`) and a figure
(:mod:`optbench.gallery.figures`)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from optbench.config import SweepConfig, load
from optbench.errors import OptbenchError
from optbench.gallery import figures, verdicts
from optbench.gallery.verdicts import Verdict
from optbench.store import ResultStore, write_json

DEFAULT_ROOT = Path("results") / "gallery"


class UnknownCase(OptbenchError, ValueError):
    """No gallery case has that name."""


@dataclass(frozen=True)
class Case:
    """One reproduced failure: where it is published, what it claims, how it is checked
    (``verdict``) and drawn (``draw``). Its config is ``cases/<name>.toml``."""

    name: str
    source: str
    claim: str
    verdict: Callable[[ResultStore], Verdict]
    draw: Callable[[ResultStore, Path], list[Path]]

    def config(self) -> SweepConfig:
        folder = resources.files("optbench.gallery") / "cases"
        with resources.as_file(folder / f"{self.name}.toml") as path:
            return load(path)


CASES: dict[str, Case] = {case.name: case for case in (
    Case("adam-nonconvergence",
         "Reddi, Kale & Kumar (2018), On the convergence of Adam and beyond, ICLR, §3 "
         "(online example, Theorem 1)",
         "on f_t(x) = 3x (t mod 3 = 1), -x otherwise, over [-1, 1], Adam (b1 = 0, "
         "b2 = 1/(1 + C^2), step 0.5/sqrt(t)) drifts to x = +1, the worst point, while "
         "AMSGrad goes to the optimum x = -1",
         verdicts.adam_nonconvergence, figures.adam_nonconvergence),
    Case("heavy-ball-cycle",
         "Lessard, Recht & Packard (2016), Analysis and design of optimization algorithms "
         "via integral quadratic constraints, SIAM J. Optim., §4.6",
         "heavy-ball with its quadratic-optimal tuning (alpha = 1/9, beta = 4/9) settles "
         "into the period-3 cycle 0.6465, -1.8024, 2.1159 on a strongly convex piecewise "
         "quadratic (L = 25, mu = 1) from x0 in [3.07, 3.46]; GD at 1/L converges",
         verdicts.heavy_ball_cycle, figures.heavy_ball_cycle),
    Case("gd-stability-edge",
         "the classical step-size bound: GD on a quadratic is stable iff lr < 2/L; "
         "heavy ball iff lr < 2(1 + beta)/L (Polyak 1964)",
         "the divergence edge of a learning-rate sweep lies within 1 % of 2/L for GD and "
         "of 2(1 + beta)/L for heavy-ball momentum (beta = 0.5, 0.9)",
         verdicts.gd_stability_edge, figures.gd_stability_edge),
    Case("saddle-escape",
         "Ge, Huang, Jin & Yuan (2015), Escaping from saddle points, COLT; Jin et al. "
         "(2017), How to escape saddle points efficiently, ICML",
         "started on the stable manifold of x^2 - y^2, GD converges to the saddle while "
         "SGD with gradient noise escapes, sooner the larger the noise",
         verdicts.saddle_escape, figures.saddle_escape),
    Case("adagrad-moving-target",
         "Duchi, Hazan & Singer (2011), JMLR; the motivation of RMSprop (Tieleman & Hinton "
         "2012, lecture 6e) and Adadelta (Zeiler 2012, §2)",
         "after the minimum jumps, Adagrad (whose step divides by the root of ALL past "
         "squared gradients) closes the distance far more slowly than RMSprop or Adam: "
         ">= 10x farther 100 steps after the jump",
         verdicts.adagrad_moving_target, figures.adagrad_moving_target),
    Case("ravine-zigzag",
         "the course's momentum motivation; Polyak (1964), Nesterov (1983), optimal "
         "tunings as in Lessard et al. (2016), §3",
         "on x^2 + 100 y^2, GD flips the sign of the steep coordinate >= 5x as often as "
         "heavy-ball and Nesterov momentum before reaching f <= 1e-6 (each at its optimal "
         "tuning)",
         verdicts.ravine_zigzag, figures.ravine_zigzag),
    Case("edge-of-stability",
         "Cohen, Kaur, Li, Kolter & Talwalkar (2021), Gradient descent on neural networks "
         "typically occurs at the edge of stability, ICLR",
         "under full-batch GD the training loss's sharpness rises (progressive sharpening), "
         "then hovers at 2/eta (within 15 %) while the loss keeps falling, not "
         "monotonically; at an eta whose 2/eta is out of reach it stays below",
         verdicts.edge_of_stability, figures.edge_of_stability),
)}


def names() -> tuple[str, ...]:
    return tuple(CASES)


def get(name: str) -> Case:
    """The case ``name``; :class:`UnknownCase` listing the cases otherwise."""
    if name not in CASES:
        raise UnknownCase(f"unknown gallery case {name!r}; cases: {', '.join(CASES)}")
    return CASES[name]


@dataclass(frozen=True)
class Outcome:
    """A case's verdict, its results folder, the figures drawn and the seconds it took."""

    verdict: Verdict
    directory: Path
    figures: tuple[Path, ...]
    seconds: float


def run(selected: Sequence[str] = (), root: str | Path = DEFAULT_ROOT, *, draw: bool = True,
        quiet: bool = True, report: Callable[[Outcome], None] | None = None
        ) -> list[Outcome]:
    """Run the ``selected`` cases (all by default) through the sweep engine into
    ``root/<name>/``, check each claim and draw each figure there; ``report`` is called
    after each case. Each folder also gets ``verdict.json``."""
    from optbench import sweep

    cases = [get(name) for name in (selected or names())]  # every name checked first
    outcomes = []
    for case in cases:
        started = time.perf_counter()
        directory = sweep(case.config(), Path(root) / case.name, force=True, quiet=quiet)
        store = ResultStore(directory)
        verdict = case.verdict(store)
        drawn = tuple(case.draw(store, directory)) if draw else ()
        write_json(directory / "verdict.json", {
            "case": case.name, "source": case.source, "claim": case.claim,
            "reproduced": verdict.reproduced, "expected": verdict.expected,
            "got": verdict.got, "numbers": verdict.numbers})
        outcome = Outcome(verdict, directory, drawn, time.perf_counter() - started)
        outcomes.append(outcome)
        if report is not None:
            report(outcome)
    return outcomes
