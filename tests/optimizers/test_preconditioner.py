"""An adaptive optimizer's ``preconditioner`` is the P its last step divided by: with no
momentum, ``u = -lr g / P(new state)`` at every step, for every registered optimizer that has
one and for RMSprop's structural variants."""

import jax
import numpy as np
import pytest

from optbench import optimizers
from optbench.optimizers.rmsprop import RMSPROP

NO_MOMENTUM = {"b1": 0.0}  # the hyperparameters that make a rule's m the gradient itself

RULES = [(name, optimizers.get(name).pure, optimizers.get(name).defaults)
         for name in optimizers.names() if optimizers.get(name).pure.preconditioner]
RULES += [(f"rmsprop {options}", RMSPROP.rule(**options), RMSPROP.defaults)
          for options in ({"eps_in_sqrt": False}, {"bias_correction": True},
                          {"centered": True, "bias_correction": True, "eps_in_sqrt": False})]


def test_the_adaptive_optimizers_all_have_a_preconditioner():
    assert {"adam", "rmsprop", "rmsprop_centered", "adagrad"} <= {r[0] for r in RULES}


@pytest.mark.parametrize(("name", "rule", "defaults"), RULES, ids=[r[0] for r in RULES])
def test_the_step_divides_the_gradient_by_the_preconditioner(name, rule, defaults):
    hparams = {**defaults, **{k: v for k, v in NO_MOMENTUM.items() if k in defaults},
               "learning_rate": 0.1}
    params = {"w": np.zeros((3, 2), np.float32), "b": np.zeros(4, np.float32)}
    state = rule.init(params, hparams)
    keys = jax.random.split(jax.random.key(0), 5)
    for key in keys:
        grads = jax.tree.map(lambda p, k=key: 1e-3 + jax.random.normal(k, p.shape), params)
        updates, state = rule.update(grads, state, params, hparams)
        expected = jax.tree.map(lambda g, p: -0.1 * g / p, grads,
                                rule.preconditioner(state, hparams))
        jax.tree.map(lambda u, e: np.testing.assert_allclose(u, e, rtol=1e-5), updates,
                     expected)
