"""Step-size decay for any update rule: ``lr_t = learning_rate / t**power`` (t = 1, 2, ...).

The classic schedules of stochastic and online optimization (Robbins & Monro's ``1/t``,
online learning's ``1/sqrt(t)``) are this one family. :func:`decayed` wraps a pure optimizer
so that update ``t`` runs with the learning rate ``learning_rate / t**power``, exactly as
optax's optimizers given the schedule ``lambda count: learning_rate / (count + 1)**power``
(also where the learning rate acts before a momentum stage, as in rmsprop's). The power is a
hyperparameter like the others (data, sweepable, shared by one compiled program);
``power = 0`` is constant.

In a sweep config it is the key :data:`LR_DECAY` of an optimizer table, e.g.
``[optimizers.adam] lr_decay_power = 0.5`` for ``alpha / sqrt(t)``.
"""

from __future__ import annotations

import functools

import jax.numpy as jnp

from optbench.optimizers.base import DECAY, HParams, Params, PureOptimizer, Updates

LR_DECAY = "lr_decay_power"  # the pseudo-hyperparameter: lr_t = learning_rate / t**power
LR_DECAY_RANGE = DECAY  # [0, 1): constant (0) to just slower than 1/t


@functools.cache
def decayed(rule: PureOptimizer) -> PureOptimizer:
    """``rule`` with its learning rate divided by ``t**hparams[LR_DECAY]`` at update t (from 1);
    the same object for the same ``rule``, so that programs built from it are shared."""

    def own(hparams: HParams) -> dict:
        return {k: v for k, v in hparams.items() if k != LR_DECAY}

    def init(params: Params, hparams: HParams) -> tuple:
        return rule.init(params, own(hparams)), jnp.zeros([], jnp.int32)

    def update(grads: Updates, state: tuple, params: Params | None, hparams: HParams):
        inner, count = state
        count = count + 1
        power = jnp.asarray(hparams[LR_DECAY])  # the run's float dtype in a sweep
        rate = hparams["learning_rate"] * count.astype(power.dtype) ** -power
        updates, inner = rule.update(grads, inner, params,
                                     {**own(hparams), "learning_rate": rate})
        return updates, (inner, count)

    def preconditioner(state: tuple, hparams: HParams) -> Params:
        return rule.preconditioner(state[0], own(hparams))

    return PureOptimizer(init, update, preconditioner if rule.preconditioner else None,
                         members=tuple(decayed(member) for member in rule.members),
                         member_index=rule.member_index)
