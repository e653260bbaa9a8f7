"""Each case's published claim, asserted on its stored results.

A verdict function reads a finished results folder (the ordinary sweep store) and returns a
:class:`Verdict`: whether the claim holds, what was expected and what was measured. Nothing
here runs an optimizer, so the claims can be re-checked on stored results at any time.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from optbench.config import parse
from optbench.store import ResultStore, target_column
from optbench.tasks import registry


@dataclass(frozen=True)
class Verdict:
    """The outcome of one case: ``reproduced``, the claim's ``expected`` values, what was
    ``got``, and the measured ``numbers`` behind it."""

    name: str
    reproduced: bool
    expected: str
    got: str
    numbers: dict[str, float] = field(default_factory=dict)

    def line(self) -> str:
        """``NAME: reproduced (got ...)`` or ``NAME: NOT reproduced (expected ..., got ...)``."""
        if self.reproduced:
            return f"{self.name}: reproduced ({self.got})"
        return f"{self.name}: NOT reproduced (expected {self.expected}, got {self.got})"


# --------------------------------------------------------------------------------------
# Reading the store
# --------------------------------------------------------------------------------------


def paths(store: ResultStore) -> pd.DataFrame:
    """Trajectories joined with each run's optimizer label, task, start and hyperparameters."""
    runs = store.table("runs")
    return store.table("trajectories").merge(runs.drop(columns=["final", "best"]),
                                             on="run_id")


def final_points(store: ResultStore) -> pd.DataFrame:
    """The last recorded point of each run (one row per run)."""
    return paths(store).sort_values("step").groupby("run_id").tail(1).set_index("run_id")


def metric_at(store: ResultStore, metric: str, step: int) -> pd.Series:
    """``metric`` at the recorded ``step``, by optimizer label (first run of each)."""
    curves = store.table("curves").merge(store.table("runs")[["run_id", "optimizer"]],
                                         on="run_id")
    at = curves[curves["step"] == step]
    if at.empty:
        raise ValueError(f"step {step} is not a recorded step")
    return at.groupby("optimizer", sort=False)[metric].first()


def tasks_of(store: ResultStore) -> list:
    """The sweep's tasks, rebuilt from the stored config."""
    return registry.build(parse(store.meta()["config"]).tasks)


def sign_changes(values: np.ndarray) -> int:
    """How many times consecutive values have strictly opposite signs."""
    values = np.asarray(values)
    return int(np.sum(values[1:] * values[:-1] < 0))


def largest_curvature(fn, point: np.ndarray) -> float:
    """The largest eigenvalue of the Hessian of ``fn`` at ``point`` (float64)."""
    with jax.enable_x64(True):
        hessian = jax.hessian(fn)(jnp.asarray(point, jnp.float64))
        return float(np.linalg.eigvalsh(np.asarray(hessian)).max())


def _verdict(name: str, ok: bool, expected: str, got: str, **numbers: float) -> Verdict:
    return Verdict(name, bool(ok), expected, got, {k: float(v) for k, v in numbers.items()})


# --------------------------------------------------------------------------------------
# The cases' claims
# --------------------------------------------------------------------------------------

ADAM_LIMIT = 0.9  # Adam's final x above this, AMSGrad's below its negative


def adam_nonconvergence(store: ResultStore) -> Verdict:
    """Adam ends near x = +1 (the worst point), AMSGrad near the optimum x = -1."""
    final = final_points(store).groupby("optimizer")["x0"].first()
    adam, amsgrad = final.get("adam", np.nan), final.get("amsgrad", np.nan)
    ok = adam > ADAM_LIMIT and amsgrad < -ADAM_LIMIT
    return _verdict("adam-nonconvergence", ok,
                    f"Adam's x > {ADAM_LIMIT} and AMSGrad's x < -{ADAM_LIMIT}",
                    f"Adam x = {adam:.4f}, AMSGrad x = {amsgrad:.4f}",
                    adam_x=adam, amsgrad_x=amsgrad)


LESSARD_CYCLE = (-1.8024, 0.6465, 2.1159)  # sorted; Lessard et al. (2016), Section 4.6
CYCLE_TOLERANCE = 1e-3


def heavy_ball_cycle(store: ResultStore) -> Verdict:
    """Heavy-ball ends in the period-3 cycle from every start; GD converges to 0."""
    points = paths(store).sort_values("step")
    cycles, periodic = [], []
    for _, run in points[points["optimizer"] == "heavy-ball"].groupby("run_id"):
        x = run["x0"].to_numpy()
        cycles.append(np.sort(x[-3:]))
        periodic.append(np.max(np.abs(x[-3:] - x[-6:-3])))
    cycles = np.asarray(cycles)
    runs = store.table("runs")
    gd_final = runs.loc[runs["optimizer"] == "gd", "final"].max()
    error = float(np.max(np.abs(cycles - LESSARD_CYCLE))) if len(cycles) else np.inf
    ok = error < CYCLE_TOLERANCE and max(periodic, default=np.inf) < 1e-9 and gd_final < 1e-10
    found = ", ".join(f"{v:.4f}" for v in (cycles[0] if len(cycles) else []))
    return _verdict("heavy-ball-cycle", ok,
                    f"heavy-ball cycles through {LESSARD_CYCLE} (within {CYCLE_TOLERANCE:g}) "
                    "from every start and GD reaches f < 1e-10",
                    f"heavy-ball cycle ({found}) from {len(cycles)} starts, max deviation "
                    f"{error:.1e}; GD final f = {gd_final:.1e}",
                    cycle_deviation=error, gd_final_f=gd_final,
                    **{f"cycle_{i}": v for i, v in enumerate(cycles[0] if len(cycles) else [])})


EDGE_TOLERANCE = 0.01  # the measured edge within 1 % of theory


def stability_edges(store: ResultStore) -> pd.DataFrame:
    """Per optimizer label: the largest stable and smallest unstable learning rate, the
    measured edge (their midpoint), the theoretical edge 2(1 + momentum)/L and whether the
    grid splits cleanly (every stable rate below every unstable one). Stable: the run ended
    below its starting value without diverging."""
    runs = store.table("runs")
    start = store.table("curves").query("step == 0").set_index("run_id")["f_gap"]
    runs = runs.assign(stable=~runs["diverged"] & (runs["final"] < runs["run_id"].map(start)))
    (task,) = tasks_of(store)
    curvature = largest_curvature(task.surface.fn, task.surface.minimizers[0])
    rows = []
    for label, group in runs.groupby("optimizer", sort=False):
        beta = float(group["momentum"].iloc[0]) if "momentum" in group else 0.0
        beta = 0.0 if np.isnan(beta) else beta
        stable = group.loc[group["stable"], "learning_rate"]
        unstable = group.loc[~group["stable"], "learning_rate"]
        low, high = stable.max(), unstable.min()
        theory = 2 * (1 + beta) / curvature
        edge = (low + high) / 2
        rows.append({"optimizer": label, "momentum": beta, "L": curvature,
                     "largest_stable": low, "smallest_unstable": high, "edge": edge,
                     "theory": theory, "relative_error": abs(edge - theory) / theory,
                     "clean_split": bool(low < high)})
    return pd.DataFrame(rows)


def gd_stability_edge(store: ResultStore) -> Verdict:
    """Each method's divergence edge lies within 1 % of 2(1 + momentum)/L."""
    edges = stability_edges(store)
    ok = bool((edges["relative_error"] < EDGE_TOLERANCE).all() and edges["clean_split"].all())
    got = "; ".join(f"{r.optimizer}: edge {r.edge:.5f} vs 2(1+{r.momentum:g})/L = "
                    f"{r.theory:.5f} ({100 * r.relative_error:.2f} %)"
                    for r in edges.itertuples())
    return _verdict("gd-stability-edge", ok,
                    f"each edge within {100 * EDGE_TOLERANCE:g} % of 2(1 + momentum)/L",
                    got, **{f"{r.optimizer}_edge": r.edge for r in edges.itertuples()},
                    **{f"{r.optimizer}_relative_error": r.relative_error
                       for r in edges.itertuples()})


ESCAPED = 1.0  # |y| at which a run has left the saddle


def escape_steps(store: ResultStore) -> pd.DataFrame:
    """Per run: optimizer, noise, the first step with |y| >= 1 (NaN if never) and the final
    distance to the saddle."""
    rows = []
    for run_id, run in paths(store).sort_values("step").groupby("run_id", sort=False):
        out = np.flatnonzero(np.abs(run["x1"].to_numpy()) >= ESCAPED)
        last = run.iloc[-1]
        rows.append({"run_id": run_id, "optimizer": last["optimizer"], "noise": last["noise"],
                     "escape_step": run["step"].iloc[out[0]] if len(out) else np.nan,
                     "final_distance": float(np.hypot(last["x0"], last["x1"]))})
    return pd.DataFrame(rows)


def saddle_escape(store: ResultStore) -> Verdict:
    """GD converges to the saddle; SGD escapes at every noise scale, sooner with more noise."""
    escapes = escape_steps(store)
    gd = escapes[escapes["optimizer"] == "gd"]
    sgd = escapes[escapes["optimizer"] == "sgd"]
    by_noise = sgd.groupby("noise")["escape_step"]
    escaped = by_noise.apply(lambda s: s.notna().mean())
    median = by_noise.median()
    gd_distance = gd["final_distance"].max()
    ok = (gd["escape_step"].isna().all() and gd_distance < 1e-6 and (escaped == 1).all()
          and bool(np.all(np.diff(median.to_numpy()) < 0)))
    gd_escaped = int(gd["escape_step"].notna().sum())
    got = (f"GD: distance to the saddle {gd_distance:.1e}, escaped {gd_escaped}/{len(gd)}; "
           "SGD median escape step " + ", ".join(
               f"{m:.0f} at noise {n:g} ({100 * e:.0f} % escaped)"
               for n, m, e in zip(median.index, median, escaped, strict=True)))
    return _verdict("saddle-escape", ok,
                    "GD within 1e-6 of the saddle, SGD escapes in every run, median escape "
                    "step decreasing with the noise", got, gd_final_distance=gd_distance,
                    **{f"sgd_median_escape_noise_{n:g}": m for n, m in median.items()})


AFTER_JUMP = 100  # steps after the jump at which the distances are compared
RATIO_AT_LEAST = 10.0


def adagrad_moving_target(store: ResultStore) -> Verdict:
    """100 steps after the jump, Adagrad is >= 10x farther from the new minimum than RMSprop
    and Adam."""
    (task,) = tasks_of(store)
    distance = metric_at(store, "distance", task.config.jump_step + AFTER_JUMP)
    ratios = {o: distance["adagrad"] / distance[o] for o in ("rmsprop", "adam")}
    ok = all(r >= RATIO_AT_LEAST for r in ratios.values())
    got = (f"distance at jump + {AFTER_JUMP}: " + ", ".join(
        f"{o} {d:.3g}" for o, d in distance.items()) + "; ratios " + ", ".join(
        f"adagrad/{o} = {r:.3g}" for o, r in ratios.items()))
    return _verdict("adagrad-moving-target", ok,
                    f"Adagrad's distance >= {RATIO_AT_LEAST:g}x RMSprop's and Adam's", got,
                    **{f"distance_{o}": d for o, d in distance.items()},
                    **{f"ratio_adagrad_{o}": r for o, r in ratios.items()})


ZIGZAG_RATIO = 5.0  # GD's sign changes at least this many times the others'


def zigzags(store: ResultStore) -> pd.DataFrame:
    """Per optimizer: the steps to f <= the tightest target and the sign changes of the
    steep coordinate y up to then."""
    config = store.meta()["config"]
    column = target_column(min(config["targets"]))
    runs = store.table("runs").set_index("run_id")
    rows = []
    for run_id, run in paths(store).sort_values("step").groupby("run_id", sort=False):
        hit = runs.loc[run_id, column]
        until = run[run["step"] <= (hit if np.isfinite(hit) else np.inf)]
        rows.append({"optimizer": runs.loc[run_id, "optimizer"], "steps_to_target": hit,
                     "sign_changes": sign_changes(until["x1"].to_numpy())})
    return pd.DataFrame(rows)


def ravine_zigzag(store: ResultStore) -> Verdict:
    """GD's sign changes of y, until it reaches the target, are >= 5x momentum's and
    Nesterov's."""
    table = zigzags(store).set_index("optimizer")
    counts = table["sign_changes"]
    reached = bool(table["steps_to_target"].notna().all())
    ok = reached and all(counts["gd"] >= ZIGZAG_RATIO * max(counts[o], 1)
                         for o in ("momentum", "nesterov"))
    got = ", ".join(f"{o}: {int(c)} sign changes in {s:.0f} steps"
                    for o, c, s in zip(counts.index, counts, table["steps_to_target"],
                                       strict=True))
    return _verdict("ravine-zigzag", ok,
                    f"every method reaches f <= target and GD's sign changes >= "
                    f"{ZIGZAG_RATIO:g}x momentum's and Nesterov's", got,
                    **{f"sign_changes_{o}": c for o, c in counts.items()},
                    **{f"steps_{o}": s for o, s in table["steps_to_target"].items()})


EOS_TOLERANCE = 0.15  # the late median sharpness within 15 % of 2/eta
SHARPENING_AT_LEAST = 1.25  # the late median sharpness / the initial one, every run
EOS_LOSS_FALL = 0.25  # the final training loss at most this share of the initial one
CONTRAST = "gd-contrast"  # the optimizer label whose 2/eta is out of reach


def sharpness_curves(store: ResultStore) -> pd.DataFrame:
    """Each run's curves (step, sharpness, train_loss) with its optimizer label, learning
    rate and 2/eta (``threshold``)."""
    runs = store.table("runs")[["run_id", "optimizer", "learning_rate", "seed"]]
    curves = store.table("curves").merge(runs, on="run_id").sort_values(["run_id", "step"])
    return curves.assign(threshold=2 / curves["learning_rate"])


def stability_summary(store: ResultStore) -> pd.DataFrame:
    """Per run: 2/eta, the initial, peak and late (median over the last half of the steps)
    sharpness, the late median over 2/eta, the training loss's initial and final values
    and its rises between consecutive record points."""
    curves = sharpness_curves(store)
    half = curves["step"].max() / 2
    rows = []
    for run_id, run in curves.groupby("run_id", sort=False):
        sharpness, loss = run["sharpness"].to_numpy(), run["train_loss"].to_numpy()
        late = float(np.median(sharpness[run["step"].to_numpy() >= half]))
        threshold = float(run["threshold"].iloc[0])
        rows.append({"run_id": run_id, "optimizer": run["optimizer"].iloc[0],
                     "learning_rate": float(run["learning_rate"].iloc[0]),
                     "threshold": threshold, "initial": sharpness[0],
                     "peak": sharpness.max(), "late": late, "late_ratio": late / threshold,
                     "loss_initial": loss[0], "loss_final": loss[-1],
                     "loss_rises": int(np.sum(np.diff(loss) > 0))})
    return pd.DataFrame(rows)


def edge_of_stability(store: ResultStore) -> Verdict:
    """(a) every run's sharpness starts below 2/eta and rises (late median >= 1.25x the
    initial); (b) at each eta that reaches it, the late median lies within 15 % of 2/eta;
    (c) the training loss falls (final <= 0.1x initial) though not monotonically; the
    contrast eta's sharpness stays below its 2/eta throughout."""
    table = stability_summary(store)
    edge, contrast = table[table["optimizer"] != CONTRAST], table[table["optimizer"] == CONTRAST]
    sharpening = bool(((table["initial"] < table["threshold"])
                       & (table["late"] >= SHARPENING_AT_LEAST * table["initial"])).all())
    by_eta = edge.groupby("learning_rate")["late_ratio"]
    hovering = bool((np.abs(edge["late_ratio"] - 1) <= EOS_TOLERANCE).all())
    falling = bool(((edge["loss_final"] <= EOS_LOSS_FALL * edge["loss_initial"])
                    & (edge["loss_rises"] > 0)).all())
    below = bool((contrast["peak"] < contrast["threshold"]).all()) and len(contrast) > 0
    ok = sharpening and hovering and falling and below and len(edge) > 0
    rises = table["late"] / table["initial"]
    loss_ratio = edge["loss_final"] / edge["loss_initial"]
    got = (f"(a) late / initial sharpness >= {rises.min():.2f}; (b) late median / (2/eta) "
           + ", ".join(f"eta {eta:g}: {lo:.3f} to {hi:.3f}" for eta, lo, hi in zip(
               by_eta.min().index, by_eta.min(), by_eta.max(), strict=True))
           + f"; (c) final / initial loss <= {loss_ratio.max():.3f}, "
           f"{int(edge['loss_rises'].min())} or more rises per run; contrast eta "
           f"{contrast['learning_rate'].min():g}: peak {contrast['peak'].max():.1f} < 2/eta "
           f"= {contrast['threshold'].min():.0f}")
    return _verdict("edge-of-stability", ok,
                    f"(a) sharpness rises >= {SHARPENING_AT_LEAST:g}x from below 2/eta, "
                    f"(b) late median within {100 * EOS_TOLERANCE:g} % of 2/eta, (c) loss "
                    f"final <= {EOS_LOSS_FALL:g}x initial yet not monotone; contrast below "
                    "2/eta", got,
                    **{f"late_over_threshold_eta_{eta:g}": v
                       for eta, v in by_eta.median().items()},
                    **{f"late_sharpness_eta_{eta:g}": v for eta, v in
                       edge.groupby("learning_rate")["late"].median().items()},
                    contrast_peak=contrast["peak"].max(),
                    contrast_threshold=contrast["threshold"].min(),
                    min_sharpening=rises.min(), max_loss_ratio=loss_ratio.max(),
                    min_loss_rises=edge["loss_rises"].min())
