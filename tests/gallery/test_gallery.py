"""The pathology gallery: every case reproduces its published claim, the claims can fail,
and the engine pieces the cases need (step-dependent tasks, projection, lr decay) do what
they say."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import matplotlib.image
import numpy as np
import optax
import pytest

from optbench import landscapes
from optbench.cli import main
from optbench.engine import run_sweep
from optbench.gallery import cases, figures, verdicts
from optbench.optimizers import get as get_optimizer
from optbench.optimizers.schedule import LR_DECAY, decayed
from optbench.report import style
from optbench.store import ResultStore
from optbench.tasks import registry
from optbench.validate import ConfigError
from tests.report.figure_checks import labelled_ticks, texts


@pytest.fixture(scope="module")
def gallery(tmp_path_factory):
    """Every case at its shipped size (the whole gallery takes seconds), figures included."""
    root = tmp_path_factory.mktemp("gallery")
    return {o.verdict.name: o for o in cases.run((), root, quiet=True)}


def test_every_case_reproduces_its_claim(gallery):
    assert set(gallery) == set(cases.names())
    failed = [o.verdict.line() for o in gallery.values() if not o.verdict.reproduced]
    assert not failed, failed


def test_adam_drifts_to_the_worst_point_and_amsgrad_to_the_optimum(gallery):
    numbers = gallery["adam-nonconvergence"].verdict.numbers
    assert numbers["adam_x"] > 0.9
    assert numbers["amsgrad_x"] < -0.9


def test_heavy_ball_cycles_through_lessards_three_points(gallery):
    numbers = gallery["heavy-ball-cycle"].verdict.numbers
    found = sorted(numbers[f"cycle_{i}"] for i in range(3))
    np.testing.assert_allclose(found, [-1.8024, 0.6465, 2.1159], atol=1e-3)
    assert numbers["gd_final_f"] < 1e-10


def test_the_divergence_edge_lies_within_one_percent_of_theory(gallery):
    numbers = gallery["gd-stability-edge"].verdict.numbers
    for label in ("gd", "momentum-0.5", "momentum-0.9"):
        assert numbers[f"{label}_relative_error"] < 0.01
    assert numbers["gd_edge"] == pytest.approx(2 / 20, rel=0.01)  # L = 20
    assert numbers["momentum-0.9_edge"] == pytest.approx(2 * 1.9 / 20, rel=0.01)


def test_gd_stays_on_the_saddle_and_sgd_escapes_sooner_with_more_noise(gallery):
    numbers = gallery["saddle-escape"].verdict.numbers
    assert numbers["gd_final_distance"] < 1e-6
    medians = [numbers[f"sgd_median_escape_noise_{n}"] for n in ("1e-06", "0.0001", "0.01")]
    assert medians[0] > medians[1] > medians[2]


def test_adagrad_is_far_behind_rmsprop_and_adam_after_the_jump(gallery):
    numbers = gallery["adagrad-moving-target"].verdict.numbers
    assert numbers["ratio_adagrad_rmsprop"] >= 10 and numbers["ratio_adagrad_adam"] >= 10
    assert numbers["distance_adagrad"] > 1.0  # still most of the 7.07 jump away


def test_gd_zigzags_many_times_more_than_momentum_and_nesterov(gallery):
    numbers = gallery["ravine-zigzag"].verdict.numbers
    assert numbers["sign_changes_gd"] >= 5 * numbers["sign_changes_momentum"]
    assert numbers["sign_changes_gd"] >= 5 * max(numbers["sign_changes_nesterov"], 1)


def test_gd_sharpness_rises_to_two_over_eta_and_hovers_there(gallery):
    """Cohen et al. (2021): each eta's late median sharpness within 15 % of 2/eta, after
    rising from below it; the loss falls, not monotonically; the contrast stays below."""
    numbers = gallery["edge-of-stability"].verdict.numbers
    for eta in (0.03, 0.04, 0.05):
        assert numbers[f"late_over_threshold_eta_{eta:g}"] == pytest.approx(1.0, abs=0.15)
        assert numbers[f"late_sharpness_eta_{eta:g}"] == pytest.approx(2 / eta, rel=0.15)
    assert numbers["min_sharpening"] >= 1.25
    assert numbers["max_loss_ratio"] <= 0.25 and numbers["min_loss_rises"] > 0
    assert numbers["contrast_peak"] < numbers["contrast_threshold"] == 200


def test_edge_of_stability_is_not_reproduced_before_sharpness_reaches_two_over_eta(tmp_path):
    """Stopped after 300 steps, no eta has reached 2/eta yet: claim (b) fails, and the
    verdict says so with the measured ratios."""
    raw = cases.get("edge-of-stability").config().to_dict()
    raw.update(steps=300, seeds=1)
    verdict = verdicts.edge_of_stability(ResultStore(run_sweep(raw, tmp_path, quiet=True)))
    assert not verdict.reproduced
    assert all(verdict.numbers[f"late_over_threshold_eta_{eta:g}"] < 0.85
               for eta in (0.03, 0.04, 0.05))
    assert verdict.line().startswith("edge-of-stability: NOT reproduced (expected (a)")


def test_each_case_writes_its_figure_and_verdict(gallery):
    for name, outcome in gallery.items():
        assert (outcome.directory / "verdict.json").exists()
        assert {p.name for p in outcome.figures} == {f"{name}.png", f"{name}.svg"}
        image = matplotlib.image.imread(outcome.directory / f"{name}.png")
        assert image.shape[0] > 100 and image.shape[1] > 100 and image.std() > 0


def test_the_stability_edge_figure_spans_the_meaningful_range(gallery, monkeypatch, tmp_path):
    """Not float32's 1e-37: from a decade under the target to the diverged runs; ratios
    below (exact zeros included) on the floor, and said so."""
    shown = []
    monkeypatch.setattr(style, "save", lambda figure, stem: shown.append(figure) or [])
    figures.gd_stability_edge(ResultStore(gallery["gd-stability-edge"].directory), tmp_path)
    ((ax,),) = [figure.axes for figure in shown]
    low, high = ax.get_ylim()
    assert 1e-12 < low < 1e-6 and high < 1e16
    assert any("exact 0 included" in text for text in texts(ax))
    assert len(labelled_ticks(ax.yaxis)) >= 3


def test_a_claim_that_does_not_hold_is_reported_as_not_reproduced(tmp_path):
    """With beta2 = 0.999 (Adam's default) Adam solves Reddi's example: the verdict says so."""
    raw = cases.get("adam-nonconvergence").config().to_dict()
    raw["optimizers"]["adam"]["b2"] = [0.999]
    raw["steps"] = 30_000
    verdict = verdicts.adam_nonconvergence(ResultStore(run_sweep(raw, tmp_path, quiet=True)))
    assert not verdict.reproduced
    assert verdict.numbers["adam_x"] < -0.9
    assert verdict.line().startswith("adam-nonconvergence: NOT reproduced (expected Adam's x")


# --------------------------------------------------------------------------------------
# The command line
# --------------------------------------------------------------------------------------


def test_an_unknown_case_is_a_one_line_error_listing_the_cases(capsys):
    assert main(["gallery", "no-such-case"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "'no-such-case'" in err
    assert all(name in err for name in cases.names())


def test_list_names_every_case_with_its_source(capsys):
    assert main(["gallery", "--list"]) == 0
    out = capsys.readouterr().out
    for case in cases.CASES.values():
        assert case.name in out and case.source in out


def test_one_case_runs_from_the_command_line(tmp_path, capsys):
    assert main(["gallery", "heavy-ball-cycle", "--out", str(tmp_path), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("heavy-ball-cycle: reproduced")
    assert (tmp_path / "heavy-ball-cycle" / "heavy-ball-cycle.png").exists()


# --------------------------------------------------------------------------------------
# The pieces the cases need
# --------------------------------------------------------------------------------------


def _task(**fields):
    return registry.build([registry.parse(fields, "tasks[0]")])[0]


def test_the_online_losses_cycle_with_the_step_and_updates_are_projected():
    task = _task(kind="online-linear", coefficients=[3.0, -1.0, -1.0], bounds=[-1.0, 1.0])
    args, program = task.args("any"), task.program("any")
    x = jnp.asarray([0.25])
    grads = [float(program.loss_and_grad(args, x, None, jnp.int32(t))[1][0])
             for t in range(6)]
    assert grads == [3.0, -1.0, -1.0, 3.0, -1.0, -1.0]  # f_t = 3x when t mod 3 = 1 (1-based)
    np.testing.assert_array_equal(program.project(args, jnp.asarray([1.7])), [1.0])
    np.testing.assert_array_equal(program.project(args, jnp.asarray([-3.0])), [-1.0])
    # the average loss (x/3) is worst at +1 and best at -1
    assert float(program.evaluate(args, jnp.asarray([1.0]))["f_gap"]) == pytest.approx(2 / 3)
    assert float(program.evaluate(args, jnp.asarray([-1.0]))["f_gap"]) == 0.0


def test_a_projection_without_a_feasible_set_for_the_dimension_names_task_and_dim():
    with pytest.raises(ConfigError) as error:
        _task(kind="online-linear", name="reddi", coefficients=[3.0, -1.0, -1.0], dim=2,
              bounds=[[-1.0, 1.0], [-1.0, 1.0], [-1.0, 1.0]])
    message = str(error.value)
    assert "tasks[0].bounds" in message and "'reddi'" in message and "dim = 2" in message


def test_the_moving_target_jumps_at_its_step():
    task = _task(kind="moving-target", dim=2, before=0.0, after=[5.0, 5.0], jump_step=3)
    args, program = task.args("any"), task.program("any")
    x = jnp.zeros(2)
    before = program.loss_and_grad(args, x, None, jnp.int32(2))[1]
    after = program.loss_and_grad(args, x, None, jnp.int32(3))[1]
    np.testing.assert_array_equal(before, [0.0, 0.0])
    np.testing.assert_array_equal(after, [-5.0, -5.0])


def test_lr_decay_scales_each_update_by_t_to_the_minus_power():
    rule = decayed(get_optimizer("gd").pure)
    hparams = {"learning_rate": 0.5, LR_DECAY: 0.5}
    params = jnp.zeros(1)
    state = rule.init(params, hparams)
    steps = []
    for _ in range(4):
        update, state = rule.update(jnp.ones(1), state, params, hparams)
        steps.append(float(update[0]))
    np.testing.assert_allclose(steps, [-0.5 / np.sqrt(t) for t in (1, 2, 3, 4)], rtol=1e-6)
    assert decayed(get_optimizer("gd").pure) is rule  # one object: programs are shared


def test_lr_decay_power_is_checked_in_the_config():
    raw = cases.get("adam-nonconvergence").config().to_dict()
    raw["optimizers"]["adam"][LR_DECAY] = 1.5
    with pytest.raises(ConfigError, match=r"optimizers\.adam\.lr_decay_power: found 1\.5"):
        from optbench.config import parse
        parse(raw)


def test_optbench_momentum_is_polyaks_heavy_ball_with_the_same_alpha_and_beta():
    """v <- g + b v; p <- p - lr v  equals  x+ = x - lr grad + b (x - x-), with x- = x0."""
    f = landscapes.get("lessard", 1)
    grad = jax.grad(lambda x: f(x))
    alpha, beta = 1 / 9, 4 / 9
    spec = get_optimizer("momentum")
    hparams = {"learning_rate": alpha, "momentum": beta}
    with jax.enable_x64(True):
        p = jnp.asarray([3.3])
        state = spec.init(p, hparams)
        x, previous = jnp.asarray([3.3]), jnp.asarray([3.3])
        for _ in range(50):
            update, state = spec.update(grad(p), state, p, hparams)
            p = p + update
            x, previous = x - alpha * grad(x) + beta * (x - previous), x
            np.testing.assert_allclose(p, x, rtol=1e-12, atol=1e-12)


def test_lessards_function_has_its_curvatures_and_matches_at_the_breaks():
    f = landscapes.get("lessard", 1)
    with jax.enable_x64(True):
        second = jax.grad(jax.grad(lambda u: f(jnp.reshape(u, (1,)))))
        assert [float(second(jnp.float64(u))) for u in (0.5, 1.5, 2.5)] == [25.0, 1.0, 25.0]
        for u in (1.0, 2.0):
            left = float(f(jnp.asarray([u - 1e-9])))
            assert float(f(jnp.asarray([u]))) == pytest.approx(left, abs=1e-6)


def test_lr_decay_is_optaxs_learning_rate_schedule_for_adam():
    """decayed(adam) with power 0.5 equals optax.adam with lr(t) = 0.5 / sqrt(t + 1)."""
    spec = get_optimizer("adam")
    rule = decayed(spec.pure)
    hparams = {**spec.defaults, "learning_rate": 0.5, "b1": 0.0, "b2": 0.1, LR_DECAY: 0.5}
    reference = optax.adam(lambda count: 0.5 / jnp.sqrt(count + 1.0), b1=0.0, b2=0.1)
    grads = np.random.default_rng(0).normal(size=(50, 3))
    with jax.enable_x64(True):
        params = jnp.zeros(3)
        ours, theirs = rule.init(params, hparams), reference.init(params)
        for g in jnp.asarray(grads):
            mine, ours = rule.update(g, ours, params, hparams)
            expected, theirs = reference.update(g, theirs, params)
            np.testing.assert_allclose(mine, expected, rtol=1e-12)


def test_decay_applies_only_to_the_optimizers_that_ask_for_it(tmp_path):
    """In a sweep whose rules are bundled, an optimizer without lr_decay_power is not decayed."""
    task = {"landscape": "sphere", "dim": 2, "start": [1.0, -1.0]}
    def final(optimizers, folder):
        raw = {"name": "decay", "steps": 50, "tasks": [task], "optimizers": optimizers}
        runs = ResultStore(run_sweep(raw, tmp_path / folder, quiet=True)).table("runs")
        return runs.set_index("optimizer")["final"]
    mixed = final({"gd": {"learning_rate": 0.1, LR_DECAY: 0.5},
                   "momentum": {"learning_rate": 0.1}}, "mixed")
    alone = final({"momentum": {"learning_rate": 0.1}}, "alone")
    decayed_alone = final({"gd": {"learning_rate": 0.1, LR_DECAY: 0.5}}, "gd")
    assert mixed["momentum"] == pytest.approx(alone["momentum"], rel=1e-5)  # float32 rounding
    assert mixed["gd"] == pytest.approx(decayed_alone["gd"], rel=1e-6)
