"""User factories for the sweep tests, imported by path (``tests.engine.factories:...``)."""

import optax


def damped_sign_descent(learning_rate: float, damping: float = 0.5) -> optax.GradientTransformation:
    """``u = -lr * damping * sign(g)``: a user's optimizer built from optax's parts."""
    return optax.chain(optax.scale_by_sign(), optax.scale(damping),
                       optax.scale_by_learning_rate(learning_rate))


def not_an_optimizer(learning_rate: float) -> float:
    """Returns a number, not a GradientTransformation."""
    return learning_rate
