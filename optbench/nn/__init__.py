"""Neural networks as pure functions over parameter pytrees, on ``jax.nn``, ``jax.lax`` and
``optax.losses``: layers (:mod:`.functional`), activations, initializers and losses by name,
sequential models (:mod:`.models`), a decoder-only transformer (:mod:`.transformer`), seeded
augmentation, and offline datasets (:mod:`.datasets`)."""

from optbench.nn import activations, augment, functional, initializers, losses, models, transformer
from optbench.nn.errors import NNError
from optbench.nn.models import Sequential, cnn, mlp

__all__ = ["NNError", "Sequential", "activations", "augment", "cnn", "functional",
           "initializers", "losses", "mlp", "models", "transformer"]
