"""Step-by-step comparison of optbench's optimizers with their optax counterparts.

``optbench verify`` prints :func:`deviation_table`; the test suite asserts on the same
numbers. Comparisons run in float64 on settings screened as non-chaotic (a 1e-15 change
of the start barely moves the run), where rounding differences cannot be amplified.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

from optbench import landscapes
from optbench.optimizers.base import OptimizerSpec
from optbench.optimizers.registry import get, names

# Non-chaotic learning rates per landscape (see shared optimizer-numerics §9), keyed by
# optimizer; anything not listed uses the optimizer's default hyperparameters.
VERIFY_LANDSCAPES: dict[str, dict] = {
    "quadratic-50d": {
        "landscape": ("ill_conditioned_quadratic", {"dim": 50, "condition_number": 100.0}),
        "learning_rates": {"gd": 2e-3, "sgd": 2e-3, "minibatch": 2e-3, "momentum": 1e-3,
                           "nesterov": 1e-3, "adagrad": 0.1, "adadelta": 1.0,
                           "rmsprop": 5e-4, "rmsprop_centered": 5e-4, "adam": 1e-2},
    },
    "rotated-ellipsoid-10d": {
        "landscape": ("rotated_ellipsoid", {"dim": 10, "condition_number": 10.0}),
        "learning_rates": {"gd": 2e-3, "sgd": 2e-3, "minibatch": 2e-3, "momentum": 1e-3,
                           "nesterov": 1e-3, "adagrad": 0.1, "adadelta": 1.0,
                           "rmsprop": 2e-5, "rmsprop_centered": 5e-4, "adam": 1e-2},
    },
    "rosenbrock-2d": {
        "landscape": ("rosenbrock", {"dim": 2}),
        "learning_rates": {"gd": 2e-4, "sgd": 2e-4, "minibatch": 2e-4, "momentum": 1e-4,
                           "nesterov": 1e-4, "adagrad": 0.1, "adadelta": 0.3,
                           "rmsprop": 3e-4, "rmsprop_centered": 5e-5, "adam": 1e-2},
    },
    "himmelblau-2d": {
        "landscape": ("himmelblau", {"dim": 2}),
        "learning_rates": {"gd": 1e-3, "sgd": 1e-3, "minibatch": 1e-3, "momentum": 1e-4,
                           "nesterov": 1e-4, "adagrad": 0.1, "adadelta": 0.5,
                           "rmsprop": 1e-3, "rmsprop_centered": 1e-3, "adam": 1e-2},
    },
}


@functools.partial(jax.jit, static_argnums=(0, 1, 3))
def trajectory(
    tx: optax.GradientTransformation,
    loss: Callable[[jax.Array], jax.Array],
    x0: jax.Array,
    steps: int,
) -> jax.Array:
    """The parameters after each of ``steps`` updates of ``tx`` on ``loss``, shape (steps, d).

    One compiled program per (``tx``, ``loss``, ``steps``, shape of ``x0``): comparing
    several starts of one transformation compiles once."""

    def step(carry, _):
        x, state = carry
        updates, state = tx.update(jax.grad(loss)(x), state, x)
        x = optax.apply_updates(x, updates)
        return (x, state), x

    return jax.lax.scan(step, (x0, tx.init(x0)), length=steps)[1]


def max_relative_deviation(a: jax.Array, b: jax.Array) -> float:
    """``max_t ||a_t - b_t||_inf / ||b_t||_inf`` over the rows of two trajectories."""
    diff = jnp.max(jnp.abs(a - b), axis=-1)
    scale = jnp.maximum(jnp.max(jnp.abs(b), axis=-1), jnp.finfo(b.dtype).tiny)
    return float(jnp.max(diff / scale))


def deviation_from_optax(
    spec: OptimizerSpec, loss: Callable, x0: jax.Array, steps: int, **hparams: float
) -> float:
    """Run ``spec`` and its optax counterpart from ``x0``; their max relative deviation."""
    ours = trajectory(spec.transformation(**hparams), loss, x0, steps)
    theirs = trajectory(spec.optax_counterpart(**hparams), loss, x0, steps)
    return max_relative_deviation(ours, theirs)


def verify_hyperparameters(case: str, optimizer: str) -> dict[str, float]:
    """The hyperparameters ``optimizer`` is verified with on ``case``: its screened learning
    rate where :data:`VERIFY_LANDSCAPES` lists one, else its defaults (so that a newly
    registered optimizer is verified as it stands)."""
    rates = VERIFY_LANDSCAPES[case]["learning_rates"]
    return {"learning_rate": rates[optimizer]} if optimizer in rates else {}


def verify_case(case: str, optimizer: str, steps: int = 500) -> float:
    """The float64 deviation from optax of ``optimizer`` on one of :data:`VERIFY_LANDSCAPES`."""
    name, params = VERIFY_LANDSCAPES[case]["landscape"]
    with jax.enable_x64(True):
        surface = landscapes.get(name, **params)
        x0 = jnp.asarray(surface.start, jnp.float64)
        return deviation_from_optax(get(optimizer), surface.fn, x0, steps,
                                    **verify_hyperparameters(case, optimizer))


def deviation_table(steps: int = 500, progress: Callable[[str], None] | None = None
                    ) -> list[dict]:
    """One row per optimizer: its max float64 deviation from optax on every verify case;
    ``progress`` is told each case as it starts."""
    rows = []
    for optimizer in names():
        row: dict = {"optimizer": optimizer}
        for case in VERIFY_LANDSCAPES:
            if progress is not None:
                progress(f"verifying {optimizer} on {case}")
            row[case] = verify_case(case, optimizer, steps)
        row["max"] = float(np.max([row[c] for c in VERIFY_LANDSCAPES]))
        rows.append(row)
    return rows


# optax's structural options beyond the registry's entries: each call of an optbench factory
# (optax's keywords) against the same call of optax's, on the convex 50-d quadratic.
VARIANTS: tuple[tuple[str, dict], ...] = (
    ("sgd", {"learning_rate": 2e-3, "momentum": 0.5}),
    ("sgd", {"learning_rate": 1e-3, "momentum": 0.9, "nesterov": True}),
    ("rmsprop", {"learning_rate": 5e-4, "momentum": 0.9}),
    ("rmsprop", {"learning_rate": 5e-4, "momentum": 0.9, "nesterov": True}),
    ("rmsprop", {"learning_rate": 5e-4, "bias_correction": True}),
    ("rmsprop", {"learning_rate": 5e-4, "eps_in_sqrt": False}),
    ("rmsprop", {"learning_rate": 5e-4, "centered": True, "bias_correction": True}),
    ("rmsprop", {"learning_rate": 5e-4, "centered": True, "eps_in_sqrt": False,
                 "momentum": 0.5, "nesterov": True}),
    ("adam", {"learning_rate": 1e-2, "nesterov": True}),
    ("adadelta", {"learning_rate": 1.0, "weight_decay": 1e-3}),
)


def variant_deviation(factory: str, arguments: dict, steps: int = 500) -> float:
    """The float64 deviation of ``optbench.optimizers.<factory>(**arguments)`` from
    ``optax.<factory>(**arguments)`` on the verify quadratic."""
    from optbench import optimizers

    name, params = VERIFY_LANDSCAPES["quadratic-50d"]["landscape"]
    with jax.enable_x64(True):
        surface = landscapes.get(name, **params)
        x0 = jnp.asarray(surface.start, jnp.float64)
        ours = trajectory(getattr(optimizers, factory)(**arguments), surface.fn, x0, steps)
        theirs = trajectory(getattr(optax, factory)(**arguments), surface.fn, x0, steps)
        return max_relative_deviation(ours, theirs)


def variant_table(steps: int = 500) -> list[dict]:
    """One row per entry of :data:`VARIANTS`: the call and its max float64 deviation."""
    return [{"call": f"{factory}({', '.join(f'{k}={v!r}' for k, v in arguments.items())})",
             "max": variant_deviation(factory, arguments, steps)}
            for factory, arguments in VARIANTS]
