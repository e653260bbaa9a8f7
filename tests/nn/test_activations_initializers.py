"""Activations' gradients, initializers' variances, zero-init symmetry, vmap over seeds."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from optbench.engine.run import compiler_options
from optbench.nn import activations, initializers, models
from optbench.nn.errors import NNError

X = jnp.linspace(-3.0, 3.0, 13) + 0.05  # avoid the kink at 0

DERIVATIVES = {
    "sigmoid": lambda x: jax.nn.sigmoid(x) * (1 - jax.nn.sigmoid(x)),
    "tanh": lambda x: 1 - jnp.tanh(x) ** 2,
    "relu": lambda x: (x > 0).astype(x.dtype),
    "leaky_relu": lambda x: jnp.where(x > 0, 1.0, 0.01),
    "elu": lambda x: jnp.where(x > 0, 1.0, jnp.exp(x)),
    "silu": lambda x: jax.nn.sigmoid(x) * (1 + x * (1 - jax.nn.sigmoid(x))),
    "swish": lambda x: jax.nn.sigmoid(x) * (1 + x * (1 - jax.nn.sigmoid(x))),
    "softplus": jax.nn.sigmoid,
}


@pytest.mark.parametrize("name", list(DERIVATIVES))
def test_activation_gradient_matches_analytic_derivative(name):
    grad = jax.vmap(jax.grad(lambda x: activations.apply(name, x)))(X)
    np.testing.assert_allclose(grad, DERIVATIVES[name](X), rtol=1e-5, atol=1e-6)


def test_prelu_gradients_in_input_and_slope():
    a = jnp.asarray(0.3)
    gx = jax.vmap(jax.grad(activations.prelu), in_axes=(0, None))(X, a)
    ga = jax.vmap(jax.grad(activations.prelu, argnums=1), in_axes=(0, None))(X, a)
    np.testing.assert_allclose(gx, jnp.where(X > 0, 1.0, 0.3), rtol=1e-6)
    np.testing.assert_allclose(ga, jnp.where(X > 0, 0.0, X), rtol=1e-6)


def test_softmax_jacobian():
    z = jnp.asarray([0.2, -1.0, 0.7])
    s = jax.nn.softmax(z)
    np.testing.assert_allclose(jax.jacobian(lambda v: activations.apply("softmax", v))(z),
                               jnp.diag(s) - jnp.outer(s, s), atol=1e-6)


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(NNError, match="allowed sigmoid, tanh, relu"):
        activations.check("gelu-ish")
    with pytest.raises(NNError, match="allowed zeros, uniform, lecun_normal, lecun_uniform, xav"):
        initializers.check("orthogonal")


@pytest.mark.parametrize("name", [n for n in initializers.NAMES if n != "zeros"])
@pytest.mark.parametrize("shape", [(64, 48), (5, 16, 32), (3, 3, 8, 16)])
def test_initializer_variance_matches_theory(name, shape):
    """Empirical variance over many draws within 5 standard errors of the theory, with the
    conv fan-in/fan-out = receptive field × channels."""
    draws = jax.jit(jax.vmap(lambda k: initializers.get(name)(k, shape, jnp.float32)))(
        jax.random.split(jax.random.key(1), 40))  # jitted: op by op takes seconds
    n = draws.size
    var = float(jnp.var(draws))
    theory = initializers.variance(name, shape)
    kurtosis = 1.8 if "uniform" in name else 3.0  # E[w^4] / var^2, bounds the error
    assert abs(var - theory) < 5 * theory * np.sqrt((kurtosis - 1) / n)
    fan_in, fan_out = initializers.fans(shape)
    receptive = int(np.prod(shape[:-2]))
    assert (fan_in, fan_out) == (shape[-2] * receptive, shape[-1] * receptive)


JAX_PRESETS = {
    "uniform": jax.nn.initializers.variance_scaling(1 / 3, "fan_in", "uniform"),
    "lecun_normal": jax.nn.initializers.lecun_normal(),
    "lecun_uniform": jax.nn.initializers.lecun_uniform(),
    "xavier_normal": jax.nn.initializers.glorot_normal(),
    "xavier_uniform": jax.nn.initializers.glorot_uniform(),
    "he_normal": jax.nn.initializers.he_normal(),
    "he_uniform": jax.nn.initializers.he_uniform(),
    "truncated_normal(0.05)": jax.nn.initializers.truncated_normal(0.05),
}


@pytest.mark.parametrize("name", list(JAX_PRESETS))
def test_initializers_draw_the_numbers_of_the_jax_nn_presets(name):
    """Drawn flat (faster to compile), they give the presets' numbers bit for bit, for
    dense and conv kernels, in float32 and float64, vmapped over runs' keys and compiled as
    the engine compiles them (all in one program: op by op takes seconds)."""
    assert set(JAX_PRESETS) == {*initializers.NAMES, "truncated_normal(0.05)"} - {"zeros"}
    keys = jax.random.split(jax.random.key(7), 3)
    cases = [(shape, dtype) for shape in [(7, 5), (3, 4, 6), (3, 3, 2, 5)]
             for dtype in (jnp.float32, jnp.float64)]

    def draws(keys):
        return [[jax.vmap(functools.partial(f, shape=shape, dtype=dtype))(keys)
                 for f in (initializers.get(name), JAX_PRESETS[name])]
                for shape, dtype in cases]

    with jax.enable_x64(True):
        drawn = jax.jit(draws).lower(keys).compile(compiler_options(jax.default_backend()))(keys)
    for (shape, dtype), (ours, theirs) in zip(cases, drawn, strict=True):
        assert ours.dtype == theirs.dtype == dtype and ours.shape == theirs.shape == (3, *shape)
        np.testing.assert_array_equal(ours, theirs)


def test_zero_init_keeps_hidden_units_identical():
    """With zeros everywhere every hidden unit of a layer computes the same function and gets
    the same gradient, so training cannot tell them apart (the symmetry the course shows)."""
    model = models.mlp((6,), 3, depth=2, width=5, activation="tanh", initializer="zeros")
    params = model.init(jax.random.key(0))
    params = (*params[:-1], {"w": params[-1]["w"] + 0.1, "b": params[-1]["b"]})
    x = jax.random.normal(jax.random.key(1), (16, 6))
    y = jnp.arange(16) % 3

    def loss(p):
        logits = model.apply(p, x)
        return -jnp.mean(jax.nn.log_softmax(logits)[jnp.arange(16), y])

    @jax.jit
    def step(params):
        return jax.tree.map(lambda p, g: p - 0.5 * g, params, jax.grad(loss)(params))

    for _ in range(5):
        params = step(params)
    for i in model.weighted_layers()[:-1]:
        w = params[i]["w"]
        np.testing.assert_allclose(w, jnp.broadcast_to(w[:, :1], w.shape), atol=1e-7)


def test_models_vmap_over_seeds():
    model = models.cnn((12, 1), 4, channels=(3,), kernel=3, width=8, dropout=0.3)
    keys = jax.random.split(jax.random.key(0), 6)
    params = jax.jit(jax.vmap(model.init))(keys)
    x = jnp.ones((5, 12, 1))
    apply = jax.jit(lambda p, k: model.apply(p, x, key=k, train=True))
    out = jax.vmap(apply)(params, keys)
    assert out.shape == (6, 5, 4)
    assert not np.allclose(out[0], out[1])  # each seed its own weights and masks
    single = apply(jax.tree.map(lambda a: a[2], params), keys[2])
    np.testing.assert_allclose(out[2], single, rtol=1e-5, atol=1e-6)


def test_weight_scale_multiplies_the_kernels():
    base = models.mlp((4,), 2, depth=1, width=3).init(jax.random.key(0))
    big = models.mlp((4,), 2, depth=1, width=3, weight_scale=10.0).init(jax.random.key(0))
    np.testing.assert_allclose(big[0]["w"], 10 * base[0]["w"], rtol=1e-6)
