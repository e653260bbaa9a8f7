"""``lr_decay_power`` is a learning-rate schedule: the same numbers as optax's optimizers given
``lambda count: lr / (count + 1)**power``, including where momentum follows the learning rate."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from optbench.optimizers import get
from optbench.optimizers.optax_adapter import factory_spec
from optbench.optimizers.schedule import LR_DECAY, decayed


def _run(rule, hparams, x0, steps=60):
    def loss(x):
        return jnp.sum(x**2 + jnp.sin(3 * x))

    state = rule.init(x0, hparams)
    x = x0
    for _ in range(steps):
        updates, state = rule.update(jax.grad(loss)(x), state, x, hparams)
        x = optax.apply_updates(x, updates)
    return x, loss


def _optax(tx, loss, x0, steps=60):
    state, x = tx.init(x0), x0
    for _ in range(steps):
        updates, state = tx.update(jax.grad(loss)(x), state, x)
        x = optax.apply_updates(x, updates)
    return x


@pytest.mark.parametrize(("name", "momentum"), [("optax:rmsprop", 0.9), ("optax:adam", None),
                                                ("optax:sgd", 0.9)])
def test_decay_equals_optax_schedule(name, momentum):
    lr, power = 0.05, 0.5
    with jax.enable_x64(True):
        x0 = jnp.asarray([0.8, -1.7, 2.0])
        spec = factory_spec(name)
        hparams = {**spec.defaults, "learning_rate": lr, LR_DECAY: power}
        if momentum is not None:
            hparams["momentum"] = momentum
        ours, loss = _run(decayed(spec.pure), hparams, x0)
        schedule = lambda count: lr / (count + 1) ** power  # noqa: E731
        kwargs = {} if momentum is None else {"momentum": momentum}
        theirs = _optax(getattr(optax, name.split(":")[1])(schedule, **kwargs), loss, x0)
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-14)


def test_decay_of_a_builtin_rule_equals_optax_schedule():
    lr, power = 0.05, 0.3
    with jax.enable_x64(True):
        x0 = jnp.asarray([0.8, -1.7, 2.0])
        spec = get("adam")
        ours, loss = _run(decayed(spec.pure), {**spec.defaults, "learning_rate": lr,
                                               LR_DECAY: power}, x0)
        theirs = _optax(optax.adam(lambda c: lr / (c + 1) ** power), loss, x0)
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-14)
