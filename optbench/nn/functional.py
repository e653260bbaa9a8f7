"""Layers as pure functions over parameter dicts, on ``jax.lax`` and ``jax.nn``.

Arrays are channels-last: a batch of 1-D signals is ``(batch, length, channels)``, of images
``(batch, height, width, channels)``; conv kernels are ``(*window, in, out)``, the layout in
which ``jax.nn.initializers`` compute fan-in and fan-out (receptive field × channels).
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import itertools
import math
import os
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
from jax.custom_derivatives import SymbolicZero

from optbench.nn.errors import NNError

Padding = str | Sequence[tuple[int, int]]  # "VALID", "SAME" or explicit (low, high) per axis


def drawn_flat(draw: Callable[[tuple[int, ...]], jax.Array], shape: Sequence[int]
               ) -> jax.Array:
    """``draw(shape)`` drawn as one flat vector and reshaped: the same numbers, since JAX's
    random bits are counted over the elements in row-major order, at a fraction of the
    compile time. XLA's CPU compiler spends seconds on the index arithmetic of a draw of
    several dimensions vmapped over runs: 2.4 s for a 3x3 conv kernel's over 40 runs, 0.2 s
    flat; an MNIST-1D MLP's whole program compiles in 3 s instead of 5."""
    return draw((math.prod(shape),)).reshape(shape)


_CONV_DIMS = {1: ("NWC", "WIO", "NWC"), 2: ("NHWC", "HWIO", "NHWC")}
# how convolutions are differentiated (see derivative_form): its environment variable, values
DERIVATIVES_ENV = "OPTBENCH_CONV_DERIVATIVES"
DERIVATIVE_FORMS = ("unfolded", "native")


def dense(params: dict, x: jax.Array) -> jax.Array:
    """``x @ w + b`` over the last axis."""
    return x @ params["w"] + params["b"]


def conv(params: dict, x: jax.Array, stride: int | Sequence[int] = 1,
         padding: Padding = "VALID") -> jax.Array:
    """A 1-D or 2-D convolution (cross-correlation, as in every deep-learning library) plus
    bias; the number of spatial axes comes from the kernel ``params["w"]``.

    Output size per axis: ``floor((n + 2p - f) / s) + 1`` (p = 0 for "VALID"; "SAME" pads
    so that it is ``ceil(n / s)``).
    """
    w = params["w"]
    spatial = w.ndim - 2
    strides = (stride,) * spatial if isinstance(stride, int) else tuple(stride)
    pads = _lax_padding(padding, spatial)
    if isinstance(pads, str):
        pads = jax.lax.padtype_to_pads(x.shape[1:-1], w.shape[:-2], strides, pads)
    convolve = _convolve_unfolded if _FORM.get(derivative_form()) == "unfolded" else _native
    return convolve(x, w, strides, tuple(tuple(p) for p in pads)) + params["b"]



_FORM: contextvars.ContextVar[str] = contextvars.ContextVar("conv_derivatives")


@contextlib.contextmanager
def derivatives_as(form: str):
    """Trace convolutions with ``form``'s derivatives ("" : :func:`derivative_form`'s
    choice): a network program traces under the form it is keyed by."""
    token = _FORM.set(form or derivative_form())
    try:
        yield
    finally:
        _FORM.reset(token)


def derivative_form() -> str:
    """How a convolution's derivatives are taken: ``"unfolded"`` on JAX's CPU backend,
    ``"native"`` (``lax.conv_general_dilated``'s own rules) elsewhere; the environment
    variable ``OPTBENCH_CONV_DERIVATIVES`` (``unfolded`` or ``native``) overrides.

    Why: inside a compiled loop (the engine's ``fori_loop`` over steps), XLA's CPU backend
    runs the convolutions of a convolution's gradient 5-15x slower than the same program
    outside a loop; the derivatives of the equal unfolded form (strided slices and one matrix
    product) keep their speed there. Accelerators run their own convolutions faster. Read
    when a network is traced: set it before the first compile."""
    chosen = os.environ.get(DERIVATIVES_ENV, "")
    if chosen in DERIVATIVE_FORMS:
        return chosen
    if chosen not in ("", "auto"):
        raise NNError(f"{DERIVATIVES_ENV}: found {chosen!r}; allowed unfolded, native or "
                      "auto (unset: unfolded on CPU, native elsewhere)")
    return "unfolded" if jax.default_backend() == "cpu" else "native"


def _native(x: jax.Array, w: jax.Array, strides: tuple[int, ...],
            pads: tuple[tuple[int, int], ...]) -> jax.Array:
    """``lax.conv_general_dilated`` in the channels-last layout."""
    return jax.lax.conv_general_dilated(x, w, strides, pads,
                                        dimension_numbers=_CONV_DIMS[w.ndim - 2])


@functools.partial(jax.custom_jvp, nondiff_argnums=(2, 3))
def _convolve_unfolded(x: jax.Array, w: jax.Array, strides: tuple[int, ...],
                       pads: tuple[tuple[int, int], ...]) -> jax.Array:
    """:func:`_native`'s values, with derivatives taken through :func:`_unfolded`.

    The JVP rule is linear in the tangents and written with the unfolded form, so forward
    mode works (and forward-over-reverse Hessian-vector products), and reverse mode, its
    transpose, is the unfolded form's gradient too."""
    return _native(x, w, strides, pads)


@functools.partial(_convolve_unfolded.defjvp, symbolic_zeros=True)
def _convolve_unfolded_jvp(strides, pads, primals, tangents):
    """The values, and the tangent ``conv(dx, w) + conv(x, dw)`` in the unfolded form (a term
    whose tangent is a symbolic zero, such as the data's, is left out)."""
    (x, w), (dx, dw) = primals, tangents
    out = _convolve_unfolded(x, w, strides, pads)
    terms = []
    if not isinstance(dx, SymbolicZero):
        terms.append(_unfolded(dx, w, strides, pads))
    if not isinstance(dw, SymbolicZero):
        terms.append(_unfolded(x, dw, strides, pads))
    return out, functools.reduce(jnp.add, terms) if terms else jnp.zeros_like(out)


def _unfolded(x: jax.Array, w: jax.Array, strides: tuple[int, ...],
              pads: tuple[tuple[int, int], ...]) -> jax.Array:
    """The convolution as one matrix product over the stacked windows of ``x`` (im2col)."""
    window = w.shape[:-2]
    x = jnp.pad(x, [(0, 0), *pads, (0, 0)])
    out = [(n - f) // s + 1 for n, f, s in zip(x.shape[1:-1], window, strides, strict=True)]
    columns = []
    for offset in itertools.product(*(range(f) for f in window)):
        limit = [o + s * (n - 1) + 1 for o, s, n in zip(offset, strides, out, strict=True)]
        columns.append(jax.lax.slice(x, (0, *offset, 0), (x.shape[0], *limit, x.shape[-1]),
                                     (1, *strides, 1)))
    stacked = jnp.stack(columns, axis=-2)  # (batch, *out, window positions, in)
    return jnp.einsum("...kc,kcd->...d", stacked, w.reshape(-1, *w.shape[-2:]))


def _lax_padding(padding: Padding | int, spatial: int):
    if isinstance(padding, str):
        return padding
    if isinstance(padding, int):
        return [(padding, padding)] * spatial
    return [tuple(p) for p in padding]


def _pool(x: jax.Array, init, op, window: int, stride: int | None, padding: Padding | int):
    spatial = x.ndim - 2
    stride = window if stride is None else stride
    pad = _lax_padding(padding, spatial)
    if not isinstance(pad, str):
        pad = [(0, 0), *pad, (0, 0)]
    dims = (1, *(window,) * spatial, 1)
    strides = (1, *(stride,) * spatial, 1)
    return jax.lax.reduce_window(x, init, op, dims, strides, pad)


def max_pool(x: jax.Array, window: int = 2, stride: int | None = None,
             padding: Padding | int = "VALID") -> jax.Array:
    """Max over each window of the spatial axes (stride defaults to the window)."""
    return _pool(x, -jnp.inf, jax.lax.max, window, stride, padding)


def avg_pool(x: jax.Array, window: int = 2, stride: int | None = None,
             padding: Padding | int = "VALID") -> jax.Array:
    """Mean over each window of the spatial axes (zero padding counts in the mean)."""
    total = _pool(x, 0.0, jax.lax.add, window, stride, padding)
    return total / window ** (x.ndim - 2)


def standardize(x: jax.Array) -> jax.Array:
    """Each example (all axes but the first) minus its mean, over its standard deviation
    floored at ``1/sqrt(size)``: TensorFlow's ``per_image_standardization``."""
    axes = tuple(range(1, x.ndim))
    size = math.prod(x.shape[1:])
    mean = jnp.mean(x, axis=axes, keepdims=True)
    std = jnp.std(x, axis=axes, keepdims=True)
    return (x - mean) / jnp.maximum(std, 1.0 / math.sqrt(size))


def flatten(x: jax.Array) -> jax.Array:
    """Every axis but the batch axis into one."""
    return x.reshape(x.shape[0], -1)


def dropout(x: jax.Array, rate: float | jax.Array, key: jax.Array | None,
            train: bool) -> jax.Array:
    """Inverted dropout: at train time zero each unit with probability ``rate`` and scale the
    kept ones by ``1 / (1 - rate)``; at evaluation, the identity.

    The course notes (after Srivastava et al. 2014) instead keep the units unscaled in
    training and multiply the weights by the *keep* probability ``1 - rate`` at test time (the
    notes write ``p``, which equals ``1 - rate`` only for ``rate = 0.5``). Both make a unit's
    expected contribution at train time equal to its contribution at test time:
    ``E[mask * x / (1 - rate)] = x`` here, ``E[mask * x] = (1 - rate) x`` there. The
    inverted form puts the scaling where the randomness is, so evaluation is just the network.
    ``rate`` may be traced (a program argument), so tasks differing in it share a program.
    """
    if not train or key is None:
        return x
    keep = drawn_flat(lambda shape: jax.random.bernoulli(key, 1.0 - rate, shape), x.shape)
    return jnp.where(keep, x / (1.0 - rate), jnp.zeros_like(x))
