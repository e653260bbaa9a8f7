"""Every optimizer against its optax counterpart: float64 trajectories, float32 steps."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from optbench import landscapes, optimizers
from optbench.optimizers.reference import (
    VERIFY_LANDSCAPES,
    deviation_from_optax,
    max_relative_deviation,
    trajectory,
    verify_case,
    verify_hyperparameters,
)

NAMES = optimizers.names()


@pytest.mark.parametrize("case", list(VERIFY_LANDSCAPES))
@pytest.mark.parametrize("name", NAMES)
def test_float64_500_steps_match_optax(name, case):
    assert verify_case(case, name, steps=500) <= 1e-10


def test_an_optimizer_the_tables_do_not_list_is_verified_at_its_defaults(monkeypatch):
    """Registering an optimizer is enough for `optbench verify` (no KeyError): one that no
    verify case lists runs at its default hyperparameters."""
    from optbench.optimizers import registry

    monkeypatch.setitem(registry._REGISTRY, "adam_again", optimizers.get("adam"))
    assert verify_hyperparameters("rosenbrock-2d", "adam_again") == {}
    assert verify_case("rosenbrock-2d", "adam_again", steps=20) <= 1e-10


def test_verify_cases_are_not_chaotic():
    """A 1e-15 nudge of the start moves no verify run by more than 1e-9: otherwise
    the 1e-10 tolerance above would test rounding luck, not the update rule."""
    for case, setting in VERIFY_LANDSCAPES.items():
        name, params = setting["landscape"]
        with jax.enable_x64(True):
            surface = landscapes.get(name, **params)
            x0 = jnp.asarray(surface.start, jnp.float64)
            for optimizer in NAMES:  # every registered one, at what it is verified with
                tx = optimizers.get(optimizer).transformation(
                    **verify_hyperparameters(case, optimizer))
                a = trajectory(tx, surface.fn, x0, 500)
                b = trajectory(tx, surface.fn, x0 + 1e-15 * (1 + jnp.abs(x0)), 500)
                assert max_relative_deviation(a, b) < 1e-9, (case, optimizer)


NON_DEFAULT = [
    ("nesterov", {"learning_rate": 5e-4, "momentum": 0.8}),
    ("momentum", {"learning_rate": 5e-4, "momentum": 0.5}),
    ("adagrad", {"learning_rate": 0.05, "initial_accumulator_value": 0.5, "eps": 1e-4}),
    ("adagrad", {"learning_rate": 0.05, "initial_accumulator_value": 0.0}),
    ("adadelta", {"learning_rate": 0.5, "rho": 0.95, "eps": 1e-5}),
    ("rmsprop", {"learning_rate": 1e-3, "decay": 0.95, "eps": 1e-6, "initial_scale": 1.0}),
    ("rmsprop_centered", {"learning_rate": 1e-3, "decay": 0.99, "initial_scale": 0.5}),
    ("adam", {"learning_rate": 5e-3, "b1": 0.8, "b2": 0.99, "eps": 1e-6, "eps_root": 1e-8}),
]


@pytest.mark.parametrize(("name", "hparams"), NON_DEFAULT)
def test_non_default_hyperparameters_match_optax(name, hparams):
    with jax.enable_x64(True):
        surface = landscapes.get("ill_conditioned_quadratic", dim=50, condition_number=100.0)
        x0 = jnp.asarray(surface.start, jnp.float64)
        spec = optimizers.get(name)
        assert deviation_from_optax(spec, surface.fn, x0, 500, **hparams) <= 1e-10


def _random_tree(key, dtype=jnp.float32):
    k1, k2, k3 = jax.random.split(key, 3)
    return {
        "w": jax.random.normal(k1, (7, 5), dtype),
        "b": jax.random.normal(k2, (5,), dtype),
        "s": jax.random.normal(k3, (), dtype),
    }


@pytest.mark.parametrize("name", NAMES)
def test_float32_single_steps_match_optax(name):
    """Three steps fed the same random params and gradients give the same updates (1e-6)."""
    spec = optimizers.get(name)
    ours, theirs = spec.transformation(), spec.optax_counterpart()
    params = _random_tree(jax.random.key(0))
    state_ours, state_theirs = ours.init(params), theirs.init(params)
    for i in range(3):
        grads = _random_tree(jax.random.key(i + 1))
        u_ours, state_ours = jax.jit(ours.update)(grads, state_ours, params)
        u_theirs, state_theirs = jax.jit(theirs.update)(grads, state_theirs, params)
        for a, b in zip(jax.tree.leaves(u_ours), jax.tree.leaves(u_theirs), strict=True):
            assert a.dtype == jnp.float32
            assert float(jnp.max(jnp.abs(a - b)) / jnp.max(jnp.abs(b))) <= 1e-6, (name, i)


@pytest.mark.parametrize("name", NAMES)
def test_float32_200_steps_on_convex_quadratic(name):
    setting = VERIFY_LANDSCAPES["quadratic-50d"]
    surface = landscapes.get(*setting["landscape"][:1], **setting["landscape"][1])
    x0 = jnp.asarray(surface.start, jnp.float32)
    lr = setting["learning_rates"][name]
    deviation = deviation_from_optax(optimizers.get(name), surface.fn, x0, 200, learning_rate=lr)
    assert deviation <= 1e-4


def test_composes_with_optax_chain():
    with jax.enable_x64(True):
        surface = landscapes.get("rosenbrock", dim=2)
        x0 = jnp.asarray(surface.start, jnp.float64)
        ours = optax.chain(optax.clip_by_global_norm(1.0), optimizers.adam(1e-2))
        theirs = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(1e-2))
        a = trajectory(ours, surface.fn, x0, 300)
        b = trajectory(theirs, surface.fn, x0, 300)
        assert max_relative_deviation(a, b) <= 1e-12


def test_adadelta_counterpart_descends_unlike_optax_default():
    """optax.adadelta() with learning_rate=None ascends; our registry's counterpart does not."""
    surface = landscapes.get("sphere", dim=3)
    x0 = jnp.asarray(surface.start, jnp.float32)
    spec = optimizers.get("adadelta")
    ours = trajectory(spec.optax_counterpart(), surface.fn, x0, 50)
    optax_default = trajectory(optax.adadelta(), surface.fn, x0, 50)
    f0 = surface.fn(x0)
    assert surface.fn(ours[-1]) < f0 < surface.fn(optax_default[-1])
    assert np.isfinite(float(surface.fn(ours[-1])))


def test_comparison_detects_a_subtly_different_rule():
    """The 1e-10 check is sharp enough to see torch's eps placement (outside the sqrt)."""
    with jax.enable_x64(True):
        surface = landscapes.get("ill_conditioned_quadratic", dim=50, condition_number=100.0)
        x0 = jnp.asarray(surface.start, jnp.float64)
        ours = trajectory(optimizers.rmsprop(5e-4), surface.fn, x0, 500)
        eps_outside = trajectory(optax.rmsprop(5e-4, eps_in_sqrt=False), surface.fn, x0, 500)
        assert max_relative_deviation(ours, eps_outside) > 1e-10
