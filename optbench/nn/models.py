"""Sequential models: ``init(key) -> params`` and ``apply(params, x, *, key, train)``.

A model is a frozen (hashable) description: its layers, the input's shape and how weights
are drawn. Its parameters are a tuple of dicts, one per layer (empty for layers without
parameters), so they vmap over seeds as they are and the gradient norm of each layer is one
``optax.tree.norm`` away. Shapes are checked in Python when the model is built, so a layer
that does not fit its input fails before anything compiles.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import jax
import jax.numpy as jnp

from optbench.nn import activations, functional, initializers
from optbench.nn.errors import NNError


@dataclass(frozen=True)
class Dense:
    """``features`` units; its kernel drawn by ``initializer`` ("" : the model's), its
    bias starting at ``bias``."""

    features: int
    initializer: str = ""
    bias: float = 0.0


@dataclass(frozen=True)
class Conv:
    """A 1-D or 2-D convolution (the input's spatial rank decides); ``initializer`` and
    ``bias`` as for :class:`Dense`."""

    features: int
    window: int
    stride: int = 1
    padding: str | int = "VALID"  # "VALID", "SAME" or p on each side
    initializer: str = ""
    bias: float = 0.0


@dataclass(frozen=True)
class Pool:
    kind: str = "max"  # "max" or "avg"
    window: int = 2
    stride: int | None = None  # the window by default
    padding: str = "VALID"  # or "SAME" (a max over the window's part inside the input)


@dataclass(frozen=True)
class GlobalAvgPool:
    """The mean over the spatial axes: ``(..., channels) -> (channels,)``."""


@dataclass(frozen=True)
class Standardize:
    """Each example minus its mean, over its standard deviation (at least 1/sqrt(size)):
    TensorFlow's ``per_image_standardization``."""


@dataclass(frozen=True)
class Activation:
    name: str


@dataclass(frozen=True)
class Dropout:
    """``rate``, or the task's dropout knob where ``tunable`` (see ``Sequential.apply``)."""

    rate: float
    tunable: bool = True


@dataclass(frozen=True)
class Flatten:
    pass


Layer = Dense | Conv | Pool | Activation | Dropout | Flatten | GlobalAvgPool | Standardize


def output_size(n: int, window: int, stride: int, padding: str | int) -> int:
    """Spatial output size: ``floor((n + 2p - f) / s) + 1``; ``ceil(n / s)`` for "SAME"."""
    if padding == "SAME":
        return -(-n // stride)
    p = 0 if padding == "VALID" else padding
    return (n + 2 * p - window) // stride + 1


def _out_shape(layer: Layer, shape: tuple[int, ...], where: str) -> tuple[int, ...]:
    """The per-example output shape of ``layer`` for input ``shape`` (no batch axis)."""
    if isinstance(layer, Dense):
        if len(shape) != 1:
            raise NNError(f"{where}: dense needs a flat input, got shape {shape}; "
                          "add a flatten layer")
        return (layer.features,)
    if isinstance(layer, Conv | Pool):
        if isinstance(layer, Conv) and not (layer.padding in ("VALID", "SAME") or (
                isinstance(layer.padding, int) and layer.padding >= 0)):
            raise NNError(f"{where}: padding found {layer.padding!r}; allowed \"VALID\", "
                          "\"SAME\" or an integer >= 0")
        if isinstance(layer, Pool) and (layer.kind not in ("max", "avg")
                                        or layer.padding not in ("VALID", "SAME")):
            raise NNError(f"{where}: pool found {layer.kind!r}, {layer.padding!r}; allowed "
                          "\"max\" or \"avg\", padding \"VALID\" or \"SAME\"")
        if len(shape) not in (2, 3):
            raise NNError(f"{where}: needs (length, channels) or (height, width, channels), "
                          f"got shape {shape}")
        stride = layer.stride or layer.window
        spatial = tuple(output_size(n, layer.window, stride, layer.padding)
                        for n in shape[:-1])
        if min(spatial) < 1:
            raise NNError(f"{where}: window {layer.window}, stride {stride} on input "
                          f"{shape[:-1]} gives output {spatial}, below 1")
        return (*spatial, layer.features if isinstance(layer, Conv) else shape[-1])
    if isinstance(layer, Flatten):
        return (math.prod(shape),)
    if isinstance(layer, GlobalAvgPool):
        if len(shape) < 2:
            raise NNError(f"{where}: needs spatial axes, got shape {shape}")
        return (shape[-1],)
    return shape


@dataclass(frozen=True)
class Sequential:
    """Layers applied in order to inputs of per-example shape ``input_shape``.

    Dense and conv kernels are drawn by the layer's initializer, else the model's
    ``initializer``, and multiplied by ``weight_scale``; biases start at the layer's
    ``bias`` (zero by default).
    """

    layers: tuple[Layer, ...]
    input_shape: tuple[int, ...]
    initializer: str = "he_normal"
    weight_scale: float = 1.0

    def __post_init__(self):
        initializers.check(self.initializer)
        for layer in self.layers:
            if isinstance(layer, Activation):
                activations.check(layer.name)
            if isinstance(layer, Dense | Conv) and layer.initializer:
                initializers.check(layer.initializer)
        self.shapes()  # fail on a layer that does not fit, before anything compiles

    def shapes(self) -> list[tuple[int, ...]]:
        """The per-example shape after each layer."""
        shapes, shape = [], tuple(self.input_shape)
        for i, layer in enumerate(self.layers):
            shape = _out_shape(layer, shape, f"layer {i} ({type(layer).__name__.lower()})")
            shapes.append(shape)
        return shapes

    def init(self, key: jax.Array, dtype=jnp.float32) -> tuple[dict, ...]:
        params, shape = [], tuple(self.input_shape)
        for i, (layer, out) in enumerate(zip(self.layers, self.shapes(), strict=True)):
            if isinstance(layer, Dense | Conv):
                window = (layer.window,) * (len(shape) - 1) if isinstance(layer, Conv) else ()
                kernel = (*window, shape[-1], layer.features)
                draw = initializers.get(layer.initializer or self.initializer)
                w = draw(jax.random.fold_in(key, i), kernel, dtype) * self.weight_scale
                params.append({"w": w, "b": jnp.full((layer.features,), layer.bias, dtype)})
            elif isinstance(layer, Activation):
                params.append(activations.parameters(layer.name, dtype))
            else:
                params.append({})
            shape = out
        return tuple(params)

    def apply(self, params: Sequence[dict], x: jax.Array, *, key: jax.Array | None = None,
              train: bool = False, dropout: float | jax.Array | None = None) -> jax.Array:
        """Outputs for a batch ``x`` of shape ``(batch, *input_shape)``; ``key`` draws the
        dropout masks when ``train``, at each dropout layer's rate or at ``dropout`` (which
        may be traced: a program argument)."""
        for i, (layer, p) in enumerate(zip(self.layers, params, strict=True)):
            if isinstance(layer, Dense):
                x = functional.dense(p, x)
            elif isinstance(layer, Conv):
                x = functional.conv(p, x, layer.stride, layer.padding)
            elif isinstance(layer, Pool):
                pool = functional.max_pool if layer.kind == "max" else functional.avg_pool
                x = pool(x, layer.window, layer.stride, layer.padding)
            elif isinstance(layer, Activation):
                x = activations.apply(layer.name, x, p.get("slope"))
            elif isinstance(layer, Dropout):
                rate = layer.rate if dropout is None or not layer.tunable else dropout
                x = functional.dropout(x, rate,
                                       None if key is None else jax.random.fold_in(key, i),
                                       train)
            elif isinstance(layer, GlobalAvgPool):
                x = jnp.mean(x, axis=tuple(range(1, x.ndim - 1)))
            elif isinstance(layer, Standardize):
                x = functional.standardize(x)
            else:
                x = functional.flatten(x)
        return x

    def parameter_count(self) -> int:
        """The number of parameters, from their shapes alone (``jax.eval_shape``: nothing
        is allocated)."""
        shapes = jax.eval_shape(self.init, jax.random.key(0))
        return sum(math.prod(leaf.shape) for leaf in jax.tree.leaves(shapes))

    def weighted_layers(self) -> list[int]:
        """Indices of the dense and conv layers (whose gradient norms are reported)."""
        return [i for i, layer in enumerate(self.layers) if isinstance(layer, Dense | Conv)]


def _hidden(activation: str, dropout: float) -> list[Layer]:
    return [Activation(activation)] + ([Dropout(dropout)] if dropout > 0 else [])


def mlp(input_shape: tuple[int, ...], outputs: int, depth: int = 2, width: int = 100,
        activation: str = "relu", dropout: float = 0.0, initializer: str = "he_normal",
        weight_scale: float = 1.0) -> Sequential:
    """``depth`` hidden dense layers of ``width`` units, then ``outputs`` linear units."""
    layers: list[Layer] = [Flatten()] if len(input_shape) > 1 else []
    for _ in range(depth):
        layers += [Dense(width), *_hidden(activation, dropout)]
    layers.append(Dense(outputs))
    return Sequential(tuple(layers), tuple(input_shape), initializer, weight_scale)


def cnn(input_shape: tuple[int, ...], outputs: int, channels: Sequence[int] = (32, 32),
        kernel: int | Sequence[int] = 3, stride: int = 1, padding: str | int = "SAME",
        pool: int = 2, width: int = 0, activation: str = "relu", dropout: float = 0.0,
        initializer: str = "he_normal", weight_scale: float = 1.0) -> Sequential:
    """Conv–activation–pool per entry of ``channels`` (``kernel``: one size, or one per
    conv; no pooling when ``pool`` is 1), then flatten, dropout, an optional dense hidden
    layer of ``width`` units, and ``outputs`` units."""
    kernels = [kernel] * len(channels) if isinstance(kernel, int) else list(kernel)
    layers: list[Layer] = []
    for c, k in zip(channels, kernels, strict=True):
        layers += [Conv(c, k, stride, padding), Activation(activation)]
        if pool > 1:
            layers.append(Pool("max", pool))
    layers.append(Flatten())
    if dropout > 0:
        layers.append(Dropout(dropout))
    if width:
        layers += [Dense(width), *_hidden(activation, dropout)]
    layers.append(Dense(outputs))
    return Sequential(tuple(layers), tuple(input_shape), initializer, weight_scale)
