"""Hyperparameters are data: one compiled program serves a whole vector of them."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from optbench import landscapes, optimizers
from optbench.optimizers.reference import VERIFY_LANDSCAPES, max_relative_deviation, trajectory

NAMES = optimizers.names()


def _learning_rates(case, name):
    """16 learning rates spanning a decade below the screened non-chaotic one."""
    return VERIFY_LANDSCAPES[case]["learning_rates"][name] * np.geomspace(0.1, 1.0, 16)


def _with_learning_rate(spec, learning_rate):
    return {**spec.defaults, "learning_rate": learning_rate}


@pytest.mark.parametrize("name", NAMES)
def test_vmap_is_bitwise_where_the_computation_is_elementwise(name):
    """Fed a fixed stream of gradients, an optimizer is pure elementwise arithmetic: the 16
    vmapped runs equal the 16 separate runs bit for bit, parameters and state alike."""
    spec = optimizers.get(name)

    def run(learning_rate, x0):
        hparams = _with_learning_rate(spec, learning_rate)

        def step(carry, g):
            x, state = carry
            updates, state = spec.update(g, state, x, hparams)
            return (x + updates, state), (x + updates, state)

        return jax.lax.scan(step, (x0, spec.init(x0, hparams)), grads)[1]

    with jax.enable_x64(True):
        grads = jax.random.normal(jax.random.key(0), (200, 7), jnp.float64)
        x0 = jnp.ones(7, jnp.float64)
        lrs = jnp.asarray(_learning_rates("quadratic-50d", name))
        batched = jax.jit(jax.vmap(run, in_axes=(0, None)))(lrs, x0)
        separate = [jax.jit(run)(lr, x0) for lr in lrs]
    for i, one in enumerate(separate):
        for a, b in zip(jax.tree.leaves(batched), jax.tree.leaves(one), strict=True):
            np.testing.assert_array_equal(np.asarray(a)[i], np.asarray(b))


@pytest.mark.parametrize(
    ("surface_args", "case"),
    [(("rosenbrock", {"dim": 2}), "rosenbrock-2d"),
     (("rotated_ellipsoid", {"dim": 10, "condition_number": 10.0}), "rotated-ellipsoid-10d")],
    ids=["rosenbrock", "rotated-ellipsoid"],
)
@pytest.mark.parametrize("name", NAMES)
def test_vmap_over_learning_rates_on_landscapes(name, surface_args, case):
    """With gradients of a landscape in the loop, batching may reorder a reduction (the
    rotated ellipsoid's matrix product) and XLA may fuse the batched program differently
    (e.g. contract a*b+c into one FMA), so float64 runs agree to 1e-12, not bitwise."""
    spec = optimizers.get(name)
    surface_name, params = surface_args
    with jax.enable_x64(True):
        surface = landscapes.get(surface_name, **params)

        def run(learning_rate, x0):
            tx = optimizers.as_gradient_transformation(spec.pure,
                                                       _with_learning_rate(spec, learning_rate))
            return trajectory(tx, surface.fn, x0, 200)

        x0 = jnp.asarray(surface.start, jnp.float64)
        lrs = jnp.asarray(_learning_rates(case, name))
        batched = jax.jit(jax.vmap(run, in_axes=(0, None)))(lrs, x0)
        for i, lr in enumerate(lrs):
            assert max_relative_deviation(batched[i], jax.jit(run)(lr, x0)) <= 1e-12


def test_new_learning_rate_values_do_not_recompile():
    spec = optimizers.get("adam")
    surface = landscapes.get("rosenbrock", dim=2)

    def run(learning_rate, x0):
        tx = optimizers.as_gradient_transformation(spec.pure,
                                                   _with_learning_rate(spec, learning_rate))
        return trajectory(tx, surface.fn, x0, 10)

    batched = jax.jit(jax.vmap(run, in_axes=(0, None)))
    x0 = jnp.asarray(surface.start, jnp.float32)
    batched(jnp.full(4, 1e-3, jnp.float32), x0)
    batched(jnp.full(4, 3e-2, jnp.float32), x0)
    assert batched._cache_size() == 1


def test_vmap_over_every_hyperparameter_at_once():
    """Not only the learning rate: betas and eps vary across the batch too."""
    spec = optimizers.get("adam")
    surface = landscapes.get("rosenbrock", dim=2)
    x0 = jnp.asarray(surface.start, jnp.float32)

    def run(hparams):
        tx = optimizers.as_gradient_transformation(spec.pure, hparams)
        return trajectory(tx, surface.fn, x0, 50)[-1]

    grid = {"learning_rate": jnp.array([1e-3, 1e-2]), "b1": jnp.array([0.9, 0.5]),
            "b2": jnp.array([0.999, 0.9]), "eps": jnp.array([1e-8, 1e-4]),
            "eps_root": jnp.array([0.0, 0.0])}
    batched = jax.vmap(run)(grid)
    for i in range(2):
        one = run({k: float(v[i]) for k, v in grid.items()})
        np.testing.assert_allclose(batched[i], one, rtol=1e-6)
    assert not np.allclose(batched[0], batched[1])
