"""Several update rules as one, so that a sweep's optimizers share one compiled program.

Compilation, not running, is most of a small sweep's wait, and it is spent mostly on what
every block has in common (the step loop, recording, scoring). :func:`bundle` makes one pure
optimizer of several: its state holds every rule's state, and ``update`` runs the rule that
the pseudo-hyperparameter :data:`RULE` names, through ``lax.switch``. ``RULE`` is the same for
all runs of a block, so the switch stays unbatched under ``vmap`` and only the chosen rule
runs each step. It also lists its rules as ``members``, so that the engine can instead choose
one once per run, around the step loop (``branching = "run"``, see
:func:`optbench.engine.run.make_run`).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp
import numpy as np

from optbench.engine.run import measures_curvature, parameter_count
from optbench.optimizers.base import PureOptimizer
from optbench.optimizers.optax_adapter import optax_pure
from optbench.optimizers.schedule import LR_DECAY
from optbench.tasks.base import Task

if TYPE_CHECKING:
    from optbench.config import OptimizerConfig

RULE = "rule"  # the pseudo-hyperparameter holding the index of the rule that runs
BUNDLE_MAX_PARAMETERS = 100_000  # larger tasks run each rule alone (its state only)


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

    def index(hparams):
        return jnp.asarray(hparams[RULE]).astype(jnp.int32)

    def update(grads, state, params, hparams):
        return jax.lax.switch(index(hparams), branches, grads, state, params, hparams)

    def member(i: int) -> PureOptimizer:
        rule = rules[i][0]
        return PureOptimizer(lambda params, hparams: rule.init(params, own(i, hparams)),
                             lambda grads, state, params, hparams: rule.update(
                                 grads, state, params, own(i, hparams)))

    return PureOptimizer(init, update, members=tuple(member(i) for i in range(len(rules))),
                         member_index=index)


@dataclass(frozen=True)
class Rules:
    """The update rules of a sweep's optimizers, bundled into one (see
    :mod:`optbench.engine.bundle`) where the task's parameters are small enough that carrying
    every rule's state costs little, so that its blocks share one compiled program."""

    rule_of: dict[str, Rule]  # optimizer label -> its rule (optbench's or optax's) and names
    defaults: dict[str, float]  # every rule's hyperparameters, for the rules not running

    @classmethod
    def of(cls, configs: Sequence[OptimizerConfig], reference: str | None = None) -> Rules:
        defaults = {}
        for o in reversed(configs):
            defaults.update({k: o.spec.defaults.get(k, v[0]) for k, v in o.grid.items()
                             if k != LR_DECAY})
        # the step-size decay is not the rule's: decayed() wraps the block's rule with it
        return cls({o.label: (optax_pure(o.spec) if reference == "optax" else o.spec.pure,
                              tuple(k for k in o.grid if k != LR_DECAY)) for o in configs},
                   defaults)

    def select(self, label: str, hparams: dict[str, np.ndarray], task: Task,
               labels: Sequence[str]) -> tuple[PureOptimizer, dict[str, np.ndarray]]:
        """The rule to run optimizer ``label``'s block with, and its hyperparameters;
        ``labels`` are the optimizers that run on ``task`` (only their rules are bundled)."""
        rules = tuple(dict.fromkeys(self.rule_of[other] for other in labels))
        rule = self.rule_of[label]
        # (a task measuring curvature runs each rule alone: a rule's preconditioner is its own)
        if (len(rules) == 1 or parameter_count(task) > BUNDLE_MAX_PARAMETERS
                or measures_curvature(task)):
            return rule[0], hparams
        n = len(next(iter(hparams.values())))
        names = {name for _, own in rules for name in own}
        return bundle(rules), {**{k: np.full(n, v) for k, v in self.defaults.items()
                                  if k in names},
                               **hparams, RULE: np.full(n, rules.index(rule))}
