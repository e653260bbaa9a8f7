"""Registry, factories and bad input."""

import jax.numpy as jnp
import optax
import pytest

from optbench import optimizers

COURSE = ["gd", "sgd", "minibatch", "momentum", "nesterov", "adagrad", "adadelta", "rmsprop",
          "rmsprop_centered", "adam"]


def test_registry_lists_the_course_optimizers():
    assert list(optimizers.names()) == COURSE


@pytest.mark.parametrize("name", COURSE)
def test_spec_is_complete(name):
    spec = optimizers.get(name)
    assert "learning_rate" in spec.defaults
    assert set(spec.defaults) <= set(spec.ranges)  # optional ones (rmsprop momentum) too
    assert isinstance(spec.optax_counterpart(), optax.GradientTransformation)
    assert spec.reference
    state = spec.init(jnp.zeros(3))  # hparams default to the module defaults
    updates, _ = spec.update(jnp.ones(3), state, None, spec.hparams())
    assert jnp.all(updates < 0)  # a positive gradient gives a descending step


def test_gd_sgd_minibatch_share_one_rule_and_differ_in_gradient_source():
    specs = [optimizers.get(n) for n in ("gd", "sgd", "minibatch")]
    grads = jnp.asarray([0.5, -2.0, 3.0])
    steps = [s.update(grads, s.init(jnp.zeros(3)), None, s.hparams(learning_rate=0.1))[0]
             for s in specs]
    for update in steps:
        assert jnp.array_equal(update, -0.1 * grads)
    assert [s.gradient for s in specs] == ["full batch", "one sample", "mini-batch"]


def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError, match="unknown optimizer 'adamw'.*valid names: gd, sgd"):
        optimizers.get("adamw")


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: optimizers.sgd(-0.1), r"learning_rate=-0.1 is out of range: allowed \[0, inf\)"),
        (lambda: optimizers.adam(1e-3, b1=1.0), r"b1=1 is out of range: allowed \[0, 1\)"),
        (lambda: optimizers.adam(1e-3, b2=-0.5), r"b2=-0.5 is out of range"),
        (lambda: optimizers.momentum(1e-3, momentum=1.5), r"momentum=1.5 is out of range"),
        (lambda: optimizers.rmsprop(1e-3, eps=float("nan")), r"eps=nan is out of range"),
        (lambda: optimizers.adagrad(1e-3, initial_accumulator_value=-1.0),
         r"initial_accumulator_value=-1"),
        (lambda: optimizers.get("adam").hparams(learning_rate=[1e-3, -1e-3]),
         r"learning_rate=-0.001 is out of range"),
        (lambda: optimizers.get("adam").hparams(momentum=0.9),
         r"adam has no hyperparameter 'momentum'; allowed: learning_rate, b1"),
    ],
)
def test_out_of_range_hyperparameters_are_rejected(make, message):
    with pytest.raises(ValueError, match=message):
        make()
