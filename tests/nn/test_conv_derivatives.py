"""Convolution derivatives in both forms (unfolded, native): forward mode against lax and
finite differences, Hessian-vector products against the dense Hessian, and the choice of
form per backend."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from optbench.nn import functional, models
from optbench.nn.errors import NNError
from optbench.tasks import registry

FORMS = functional.DERIVATIVE_FORMS


@pytest.fixture(params=FORMS)
def form(request, monkeypatch):
    """Each test once per derivative form, chosen as a user would (the environment)."""
    monkeypatch.setenv(functional.DERIVATIVES_ENV, request.param)
    return request.param


def library_conv(x, w, stride, padding):
    """The reference: plain ``lax.conv_general_dilated``, differentiated by JAX's rules."""
    spatial = w.ndim - 2
    pads = functional._lax_padding(padding, spatial)
    return jax.lax.conv_general_dilated(x, w, (stride,) * spatial, pads,
                                        dimension_numbers=functional._CONV_DIMS[spatial])


def normal(seed, *shape):
    return jnp.asarray(np.random.default_rng(seed).normal(size=shape))


@pytest.mark.parametrize("spatial,stride,padding", [(1, 1, "VALID"), (1, 2, 1), (1, 1, "SAME"),
                                                    (2, 1, "SAME"), (2, 2, 0), (2, 3, 2),
                                                    (2, 2, "SAME")])
def test_conv_jvp_equals_the_library_jvp_and_finite_differences(form, spatial, stride,
                                                                padding):
    with jax.enable_x64(True):
        x, w = normal(1, 2, *(7,) * spatial, 3), normal(2, *(3,) * spatial, 3, 4)
        dx, dw = normal(3, *x.shape), normal(4, *w.shape)

        def ours(x, w):
            return functional.conv({"w": w, "b": 0.0}, x, stride, padding)

        ours = jax.jit(ours)
        out, tangent = jax.jit(lambda *a: jax.jvp(ours, a[:2], a[2:]))(x, w, dx, dw)
        want_out, want = jax.jvp(lambda x, w: library_conv(x, w, stride, padding), (x, w),
                                 (dx, dw))
        h = 1e-6
        central = (ours(x + h * dx, w + h * dw) - ours(x - h * dx, w - h * dw)) / (2 * h)
        np.testing.assert_allclose(out, want_out, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(tangent, want, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(tangent, central, rtol=1e-7, atol=1e-7)
        # the kernel's tangent alone (the data's is a symbolic zero)
        _, kernel_only = jax.jvp(lambda w: ours(x, w), (w,), (dw,))
        np.testing.assert_allclose(kernel_only, jax.jvp(
            lambda w: library_conv(x, w, stride, padding), (w,), (dw,))[1], rtol=1e-12,
            atol=1e-12)


NETWORKS = {
    "1-D, stride 2, padding 1, avg pool": models.Sequential(
        (models.Conv(3, 5, 2, 1), models.Activation("tanh"), models.Pool("avg", 2),
         models.Conv(2, 3, 1, "SAME"), models.Flatten(), models.Dense(3)), (20, 2)),
    "2-D, SAME, max pool, stride 2": models.Sequential(
        (models.Conv(3, 3, 1, "SAME"), models.Activation("tanh"), models.Pool("max", 2),
         models.Conv(2, 3, 2, "VALID"), models.Activation("tanh"), models.Flatten(),
         models.Dense(3)), (9, 9, 2)),
}


@pytest.mark.parametrize("network", NETWORKS)
def test_network_jvp_equals_finite_differences(form, network):
    model = NETWORKS[network]
    with jax.enable_x64(True):
        params = model.init(jax.random.key(0), jnp.float64)
        flat, unravel = ravel_pytree(params)
        x = normal(5, 4, *model.input_shape)
        direction = normal(6, flat.size)

        @jax.jit
        def out(flat):
            return model.apply(unravel(flat), x)

        _, tangent = jax.jit(lambda f, v: jax.jvp(out, (f,), (v,)))(flat, direction)
        h = 1e-6
        central = (out(flat + h * direction) - out(flat - h * direction)) / (2 * h)
        np.testing.assert_allclose(tangent, central, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("table", [
    {"kind": "mnist1d-cnn", "channels": [3, 2], "kernel": [5, 3]},  # stride 2, padding 1
    {"kind": "digits-cnn", "channels": [2], "width": 0},  # SAME, max pool 2
])
def test_hessian_vector_product_equals_the_dense_hessian(form, table):
    """Forward-over-reverse (jvp of grad) of a CNN task's training loss equals the dense
    Hessian times the vector, in float64."""
    task, = registry.build([registry.parse({**table, "train_size": 16, "batch_size": 8},
                                           "tasks[0]")])
    program = task.program("full batch")
    with jax.enable_x64(True):
        args = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64)
                            if np.issubdtype(np.asarray(a).dtype, np.floating) else a,
                            task.args("full batch"))
        flat, unravel = ravel_pytree(program.init(args, jax.random.key(0), 0))
        vector = normal(7, flat.size)

        def loss(flat):
            return program.train_loss(args, unravel(flat))

        hvp = jax.jit(lambda f, v: jax.jvp(jax.grad(loss), (f,), (v,))[1])(flat, vector)
        dense = jax.jit(jax.hessian(loss))(flat) @ vector
        assert float(jnp.linalg.norm(hvp - dense) / jnp.linalg.norm(dense)) < 1e-5


@pytest.mark.parametrize("network", NETWORKS)
def test_both_forms_give_the_same_values_and_gradients(network, monkeypatch):
    """The forms differ only in how derivatives are taken: the native form's gradient uses
    lax's convolutions, the unfolded one's none (the forward convolutions only)."""
    model = NETWORKS[network]
    params = model.init(jax.random.key(1))
    x = normal(8, 5, *model.input_shape).astype(jnp.float32)
    convs = sum(isinstance(layer, models.Conv) for layer in model.layers)

    def loss(params):
        return jnp.sum(model.apply(params, x) ** 2)

    found = {}
    for form in FORMS:
        monkeypatch.setenv(functional.DERIVATIVES_ENV, form)
        grad = jax.value_and_grad(loss)
        found[form] = jax.jit(grad)(params)
        found[form + " convolutions"] = str(jax.make_jaxpr(grad)(params)).count(
            "conv_general_dilated[")
    (value, grads), (want_value, want_grads) = found["unfolded"], found["native"]
    np.testing.assert_allclose(value, want_value, rtol=1e-5)
    for got, want in zip(jax.tree.leaves(grads), jax.tree.leaves(want_grads), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    assert found["unfolded convolutions"] == convs < found["native convolutions"]


def test_the_form_is_chosen_per_backend_unless_the_environment_says(monkeypatch):
    monkeypatch.delenv(functional.DERIVATIVES_ENV, raising=False)
    assert functional.derivative_form() == ("unfolded" if jax.default_backend() == "cpu"
                                            else "native")
    monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
    assert functional.derivative_form() == "native"
    monkeypatch.setenv(functional.DERIVATIVES_ENV, "unfolded")
    assert functional.derivative_form() == "unfolded"
    monkeypatch.setenv(functional.DERIVATIVES_ENV, "im2col")
    with pytest.raises(NNError, match=r"^OPTBENCH_CONV_DERIVATIVES: found 'im2col'; allowed "
                                      r"unfolded, native or auto") as error:
        functional.derivative_form()
    assert "\n" not in str(error.value)
