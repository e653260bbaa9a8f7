"""Augmentation is seeded and shape-preserving; losses agree with their formulas."""

import jax
import jax.numpy as jnp
import numpy as np

from optbench.nn import augment, losses


def test_augment_is_seeded_jittable_and_keeps_shape():
    images = jax.random.uniform(jax.random.key(0), (4, 8, 8, 1))
    f = jax.jit(augment.augment)
    a, b = f(jax.random.key(1), images), f(jax.random.key(1), images)
    c = f(jax.random.key(2), images)
    assert a.shape == images.shape
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_identity_settings_leave_images_unchanged():
    images = jax.random.uniform(jax.random.key(0), (3, 6, 7, 2))
    out = jax.jit(lambda key, x: augment.augment(key, x, flip=False, shift=0.0, zoom=0.0,
                                                 rotate_degrees=0.0))(jax.random.key(3), images)
    np.testing.assert_allclose(out, images, atol=1e-5)


def test_flip_only_mirrors_left_right():
    images = jax.random.uniform(jax.random.key(0), (64, 5, 5, 1))
    out = jax.jit(lambda key, x: augment.augment(key, x, shift=0.0, zoom=0.0,
                                                 rotate_degrees=0.0))(jax.random.key(4), images)
    pairs = list(zip(np.asarray(out), np.asarray(images), strict=True))
    flipped = np.array([np.allclose(o, i[:, ::-1], atol=1e-5) for o, i in pairs])
    same = np.array([np.allclose(o, i, atol=1e-5) for o, i in pairs])
    assert np.all(flipped | same) and 10 < flipped.sum() < 54


def test_losses_match_their_formulas():
    logits = jnp.asarray([[2.0, -1.0, 0.5], [0.1, 0.2, -0.3]])
    labels = jnp.asarray([0, 2])
    log_p = jax.nn.log_softmax(logits)
    np.testing.assert_allclose(losses.softmax_cross_entropy(logits, labels),
                               -(log_p[0, 0] + log_p[1, 2]) / 2, rtol=1e-6)
    z, y = jnp.asarray([[1.5], [-0.5]]), jnp.asarray([1, 0])
    p = jax.nn.sigmoid(z[:, 0])
    np.testing.assert_allclose(losses.binary_cross_entropy(z, y),
                               -(jnp.log(p[0]) + jnp.log(1 - p[1])) / 2, rtol=1e-6)
    np.testing.assert_allclose(losses.mse(jnp.asarray([[1.0], [3.0]]), jnp.asarray([0.0, 1.0])),
                               2.5, rtol=1e-6)
    multi = jnp.asarray([[1, 0, 1], [0, 0, 1]])
    np.testing.assert_allclose(losses.multilabel_binary_cross_entropy(logits, multi),
                               jnp.mean(-(multi * jax.nn.log_sigmoid(logits)
                                          + (1 - multi) * jax.nn.log_sigmoid(-logits))),
                               rtol=1e-6)
