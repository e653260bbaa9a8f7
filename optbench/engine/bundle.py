"""Several update rules as one, so that a sweep's optimizers share one compiled program.

Compilation, not running, is most of a small sweep's wait, and it is spent mostly on what
every block has in common (the step loop, recording, scoring). :func:`bundle` makes one pure
optimizer of several: its state holds every rule's state, and ``update`` runs the rule that
the pseudo-hyperparameter :data:`RULE` names, through ``lax.switch``. ``RULE`` is the same for
all runs of a block, so the switch stays unbatched under ``vmap`` and only the chosen rule
runs each step.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from optbench.optimizers.base import PureOptimizer

RULE = "rule"  # the pseudo-hyperparameter holding the index of the rule that runs


Rule = tuple[PureOptimizer, tuple[str, ...]]  # an update rule and its hyperparameters' names


@functools.cache
def bundle(rules: tuple[Rule, ...]) -> PureOptimizer:
    """One pure optimizer running ``rules[hparams[RULE]]``; the same object for equal
    ``rules``, so that programs built from it are shared. ``hparams`` must hold every rule's
    hyperparameters; each rule sees only its own."""

    def own(i: int, hparams):
        return {name: hparams[name] for name in rules[i][1]}

    def init(params, hparams):
        return tuple(rule.init(params, own(i, hparams)) for i, (rule, _) in enumerate(rules))

    def branch(i: int):
        def update(grads, state, params, hparams):
            updates, new = rules[i][0].update(grads, state[i], params, own(i, hparams))
            return updates, (*state[:i], new, *state[i + 1:])
        return update

    branches = [branch(i) for i in range(len(rules))]

    def update(grads, state, params, hparams):
        index = jnp.asarray(hparams[RULE]).astype(jnp.int32)
        return jax.lax.switch(index, branches, grads, state, params, hparams)

    return PureOptimizer(init, update)
