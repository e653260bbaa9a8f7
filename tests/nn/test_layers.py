"""Layers against naive numpy loops, output sizes against the formula, dropout's mean."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from optbench.engine.run import compiler_options
from optbench.nn import functional, models
from optbench.nn.errors import NNError


def naive_conv(x, w, b, stride, pad):
    """Cross-correlation by explicit loops: x (N, *S, C), w (*F, C, O), zero padding."""
    spatial = x.ndim - 2
    x = np.pad(x, [(0, 0)] + [(pad, pad)] * spatial + [(0, 0)])
    f = w.shape[:spatial]
    out_shape = [(x.shape[1 + a] - f[a]) // stride + 1 for a in range(spatial)]
    out = np.zeros((x.shape[0], *out_shape, w.shape[-1]))
    for n in range(x.shape[0]):
        for pos in itertools.product(*(range(s) for s in out_shape)):
            window = tuple(slice(p * stride, p * stride + k) for p, k in zip(pos, f, strict=True))
            patch = x[(n, *window)]
            out[(n, *pos)] = np.tensordot(patch, w, axes=spatial + 1) + b
    return out


def naive_pool(x, window, stride, op):
    out_shape = [(n - window) // stride + 1 for n in x.shape[1:-1]]
    out = np.zeros((x.shape[0], *out_shape, x.shape[-1]))
    for pos in itertools.product(*(range(s) for s in out_shape)):
        sl = tuple(slice(p * stride, p * stride + window) for p in pos)
        patch = x[(slice(None), *sl)]
        out[(slice(None), *pos)] = op(patch.reshape(x.shape[0], -1, x.shape[-1]), axis=1)
    return out


@pytest.mark.parametrize("spatial,stride,pad", [(1, 1, 0), (1, 2, 1), (2, 1, 1), (2, 2, 0),
                                                (2, 3, 2)])
def test_conv_equals_naive_loop_and_size_formula(spatial, stride, pad):
    rng = np.random.default_rng(spatial * 10 + stride)
    n, f = 9, 3
    x = rng.normal(size=(2, *(n,) * spatial, 3))
    w = rng.normal(size=(*(f,) * spatial, 3, 4))
    b = rng.normal(size=4)
    got = functional.conv({"w": jnp.asarray(w), "b": jnp.asarray(b)}, jnp.asarray(x),
                          stride, pad)
    want = naive_conv(x, w, b, stride, pad)
    assert got.shape == want.shape
    assert got.shape[1] == (n + 2 * pad - f) // stride + 1 == models.output_size(n, f, stride,
                                                                                 pad)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("spatial,stride,padding", [(1, 2, 1), (1, 1, "SAME"), (2, 1, "SAME"),
                                                    (2, 2, 0), (2, 3, "VALID"), (2, 2, "SAME")])
def test_conv_gradient_equals_the_library_convolutions(spatial, stride, padding):
    """The gradient taken through the unfolded form equals autodiff of
    lax.conv_general_dilated, for the input and the kernel, under vmap over kernels too."""
    rng = np.random.default_rng(spatial + 7 * stride)
    x = jnp.asarray(rng.normal(size=(3, *(8,) * spatial, 2)))
    w = jnp.asarray(rng.normal(size=(4, *(3,) * spatial, 2, 5)))  # 4 runs' kernels
    target = jnp.asarray(rng.normal(size=functional.conv(
        {"w": w[0], "b": jnp.zeros(5)}, x, stride, padding).shape))

    def library(w, x):
        pads = functional._lax_padding(padding, spatial)
        strides = (stride,) * spatial
        out = jax.lax.conv_general_dilated(x, w, strides, pads,
                                           dimension_numbers=functional._CONV_DIMS[spatial])
        return jnp.sum((out - target) ** 2)

    def ours(w, x):
        return jnp.sum((functional.conv({"w": w, "b": 0.0}, x, stride, padding) - target) ** 2)

    for f in (library, ours):
        f.grads = jax.jit(jax.vmap(jax.grad(f, argnums=(0, 1)), in_axes=(0, None)))(w, x)
    for got, want in zip(ours.grads, library.grads, strict=True):
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=1e-4)


def test_same_padding_keeps_ceil_n_over_s():
    x = jnp.ones((1, 7, 7, 2))
    w = {"w": jnp.ones((3, 3, 2, 5)), "b": jnp.zeros(5)}
    assert functional.conv(w, x, 2, "SAME").shape == (1, 4, 4, 5)
    assert models.output_size(7, 3, 2, "SAME") == 4


@pytest.mark.parametrize("window,stride", [(2, 2), (3, 1), (3, 2)])
def test_pooling_equals_naive_loop(window, stride):
    x = np.random.default_rng(window).normal(size=(2, 7, 6, 3))
    np.testing.assert_allclose(functional.max_pool(jnp.asarray(x), window, stride),
                               naive_pool(x, window, stride, np.max), rtol=1e-6)
    np.testing.assert_allclose(functional.avg_pool(jnp.asarray(x), window, stride),
                               naive_pool(x, window, stride, np.mean), rtol=1e-5, atol=1e-6)


def test_max_pool_worked_example():
    """A 4×4 map, 2×2 windows, stride 2: the maximum of each quadrant."""
    x = jnp.asarray([[1, 3, 2, 1], [4, 6, 5, 0], [7, 2, 9, 8], [1, 0, 3, 4.]])
    out = functional.max_pool(x[None, :, :, None], 2)[0, :, :, 0]
    np.testing.assert_array_equal(out, [[6, 5], [7, 9]])


def test_flatten_and_dense_shapes():
    x = jnp.ones((5, 4, 3, 2))
    flat = functional.flatten(x)
    assert flat.shape == (5, 24)
    out = functional.dense({"w": jnp.ones((24, 7)), "b": jnp.zeros(7)}, flat)
    assert out.shape == (5, 7)


@pytest.mark.parametrize("rate", [0.2, 0.5, 0.8])
def test_inverted_dropout_keeps_the_expectation(rate):
    x = jnp.full((200_000,), 3.0)
    out = functional.dropout(x, rate, jax.random.key(0), train=True)
    kept = float(jnp.mean(out != 0))
    assert abs(kept - (1 - rate)) < 5 * np.sqrt(rate * (1 - rate) / x.size)
    standard_error = 3.0 * np.sqrt(rate / (1 - rate) / x.size)
    assert abs(float(out.mean()) - 3.0) < 5 * standard_error
    np.testing.assert_array_equal(functional.dropout(x, rate, jax.random.key(0), train=False),
                                  x)


def test_a_flat_draw_gives_the_numbers_of_the_shaped_one():
    """As the engine draws them: compiled (all in one program: op by op takes seconds)."""
    shapes = [(5,), (4, 6), (2, 3, 4, 5)]

    def draws(key):
        return [((functional.drawn_flat(lambda flat: jax.random.normal(key, flat), shape),
                  jax.random.normal(key, shape)),
                 (functional.dropout(jnp.ones(shape), 0.3, key, train=True) != 0,
                  jax.random.bernoulli(key, 0.7, shape))) for shape in shapes]

    key = jax.random.key(3)
    for shape, pairs in zip(shapes, jax.jit(draws).lower(key).compile(
            compiler_options(jax.default_backend()))(key), strict=True):
        for ours, theirs in pairs:
            assert ours.shape == theirs.shape == shape
            np.testing.assert_array_equal(ours, theirs)


def test_pooling_below_one_is_an_error_before_compiling():
    with pytest.raises(NNError,
                       match=r"layer 8 \(pool\).*\(1, 1\) gives output \(0, 0\), below 1"):
        models.cnn((4, 4, 1), 10, channels=(4, 4, 4), pool=2)


def test_dense_on_unflattened_input_is_an_error():
    with pytest.raises(NNError, match="flatten"):
        models.Sequential((models.Dense(3),), (4, 4, 1))
