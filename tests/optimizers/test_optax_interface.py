"""optbench's factories take optax's arguments and behave as optax's: signatures, every
structural variant, schedules, extra arguments, state dtypes; adadelta's one difference."""

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from optbench import optimizers
from optbench.optimizers.reference import VARIANTS, variant_deviation

SHARED = ("sgd", "adagrad", "adadelta", "rmsprop", "adam")


@pytest.mark.parametrize("name", SHARED)
def test_signatures_are_optaxs(name):
    ours = inspect.signature(getattr(optimizers, name)).parameters
    theirs = inspect.signature(getattr(optax, name)).parameters
    assert list(ours) == list(theirs)
    for key in theirs:
        assert ours[key].kind == theirs[key].kind, key
        assert ours[key].default == theirs[key].default, key


@pytest.mark.parametrize(("factory", "arguments"), VARIANTS)
def test_every_variant_matches_optax_in_float64(factory, arguments):
    assert variant_deviation(factory, arguments, steps=300) <= 1e-10


def test_variants_differ_from_each_other():
    """The comparison above would see a variant silently dropped."""
    plain = variant_deviation("rmsprop", {"learning_rate": 5e-4}, steps=300)
    assert plain <= 1e-10
    x = jnp.linspace(1.0, 2.0, 5)
    g = jnp.linspace(-1.0, 3.0, 5)
    outputs = set()
    for factory, arguments in VARIANTS:
        tx = getattr(optimizers, factory)(**arguments)
        state = tx.init(x)
        for _ in range(3):
            u, state = tx.update(g, state, x)
        outputs.add((factory, tuple(np.asarray(u).round(12))))
    assert len(outputs) == len(VARIANTS)


def test_learning_rate_schedules_match_optax():
    schedule = optax.linear_schedule(1e-2, 1e-4, 50)
    with jax.enable_x64(True):
        x = jnp.asarray([1.5, -0.5], jnp.float64)
        for name in SHARED:
            ours, theirs = getattr(optimizers, name)(schedule), getattr(optax, name)(schedule)
            a, b = x, x
            sa, sb = ours.init(x), theirs.init(x)
            for _ in range(60):
                ua, sa = ours.update(jnp.sin(a) + a, sa, a)
                ub, sb = theirs.update(jnp.sin(b) + b, sb, b)
                a, b = a + ua, b + ub
            np.testing.assert_allclose(a, b, rtol=1e-13, err_msg=name)
            assert not np.allclose(a, x)


def test_update_ignores_extra_arguments_and_composes_with_inject_hyperparams():
    x = jnp.ones(3)
    tx = optax.inject_hyperparams(optimizers.adam)(learning_rate=0.1)
    state = tx.init(x)
    updates, state = tx.update(x, state, x, value=jnp.float32(1.0))
    theirs = optax.inject_hyperparams(optax.adam)(learning_rate=0.1)
    expected, _ = theirs.update(x, theirs.init(x), x)
    np.testing.assert_array_equal(updates, expected)
    state.hyperparams["learning_rate"] = jnp.float32(0.01)  # set as optax documents
    smaller, _ = tx.update(x, state, x)
    assert float(jnp.abs(smaller).max()) < float(jnp.abs(updates).max())
    assert optax.tree.map_params(tx, lambda p: p, state) is not None


def test_state_dtypes_follow_optax():
    x = jnp.zeros(4, jnp.float32)
    assert optax.tree.get(optimizers.adam(0.1, mu_dtype=jnp.bfloat16).init(x),
                          "mu").dtype == jnp.bfloat16
    assert optax.tree.get(optimizers.sgd(0.1, 0.9, accumulator_dtype="bfloat16").init(x),
                          "trace").dtype == jnp.bfloat16


def test_adadelta_none_descends_unlike_optax():
    """optax 0.2.8's adadelta() skips the minus sign and ascends; optbench's None is
    Zeiler's step of 1, which descends (the documented difference)."""
    x, g = jnp.zeros(1), jnp.ones(1)
    ours, theirs = optimizers.adadelta(), optax.adadelta()
    u_ours, _ = ours.update(g, ours.init(x), x)
    u_theirs, _ = theirs.update(g, theirs.init(x), x)
    assert float(u_theirs[0]) == pytest.approx(0.0031623, rel=1e-4)  # +: ascends
    assert float(u_ours[0]) == pytest.approx(-float(u_theirs[0]), rel=1e-6)
    one = optimizers.adadelta(learning_rate=1.0)
    assert float(one.update(g, one.init(x), x)[0][0]) == float(u_ours[0])


def test_unknown_keyword_raises_optaxs_type_error():
    for module in (optimizers, optax):
        with pytest.raises(TypeError, match=r"adam\(\) got an unexpected keyword argument "
                                            r"'beta1'"):
            module.adam(0.1, beta1=0.9)
