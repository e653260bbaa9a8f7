"""The curvature of a task's training loss at record points (``sharpness = true``).

``sharpness`` is the largest eigenvalue of the Hessian of the training loss (the full training
split, no dropout) at the current parameters. It is computed inside the compiled program, for
every run of the block at once:

* parameters of at most :data:`DENSE_MAX_PARAMETERS` numbers (the surfaces): exactly, from the
  dense Hessian (``jax.hessian``, which costs that many Hessian-vector products);
* larger ones (networks): by Lanczos with full reorthogonalization on Hessian-vector products
  (forward over reverse: ``jvp`` of ``grad``), at most :data:`LANCZOS_STEPS` products per
  record point, stopping early once the top Ritz pair's residual
  ``|H u - theta u| <= LANCZOS_TOLERANCE * |theta|`` (after at least :data:`LANCZOS_MIN_STEPS`
  products). Each record point starts from the previous one's eigenvector (the engine carries
  it), so a slowly changing Hessian needs few products. ``sharpness_hvps`` records how many
  it took.

For an optimizer with a diagonal preconditioner P (Adam: sqrt(nu_hat) + eps; RMSprop,
Adagrad), sharpness also adds ``preconditioned_sharpness``: the top eigenvalue of
P^-1/2 H P^-1/2, by the same method (Cohen et al. 2022, "Adaptive gradient methods at the edge
of stability"), NaN at step 0, before the optimizer's first step.

``hessian_trace = true`` adds ``hessian_trace``: Hutchinson's estimate of tr H, the mean of
z^T H z over :data:`HUTCHINSON_PROBES` Rademacher probes z drawn afresh at each record point
(unbiased; exact for a diagonal Hessian; its standard error is sqrt(2 sum_{i != j} H_ij^2 /
probes)).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

DENSE_MAX_PARAMETERS = 64  # up to this many parameters the Hessian is formed and diagonalized
LANCZOS_STEPS = 20  # the most Hessian-vector products per record point and eigenvalue
LANCZOS_MIN_STEPS = 4  # the fewest (a warm start alone could hide an eigenvalue crossing)
LANCZOS_TOLERANCE = 1e-3  # stop once the top Ritz pair's relative residual is below this
HUTCHINSON_PROBES = 16  # Rademacher probes of the trace estimate per record point
SHARPNESS = "sharpness"
TRACE = "hessian_trace"
PRODUCTS = "sharpness_hvps"  # the Hessian-vector products sharpness took at the point
PRECONDITIONED = "preconditioned_sharpness"


class Eigen(NamedTuple):
    """The top eigenvalue found, its (unit) eigenvector, the Ritz residual norm and the
    Hessian-vector products it took."""

    value: jax.Array
    vector: jax.Array
    residual: jax.Array
    steps: jax.Array


@dataclass(frozen=True)
class Curvature:
    """Which curvature metrics a program's record points add (a field of the program, so
    part of what is compiled)."""

    sharpness: bool = True
    trace: bool = False  # hessian_trace

    def metrics(self, preconditioned: bool = False) -> tuple[str, ...]:
        """The metric names recorded (``preconditioned``: the optimizer has a diagonal
        preconditioner)."""
        sharp = (SHARPNESS, PRODUCTS, *((PRECONDITIONED,) if preconditioned else ())) \
            if self.sharpness else ()
        return (*sharp, *((TRACE,) if self.trace else ()))

    def start(self, params: Any, key: jax.Array, preconditioned: bool = False) -> jax.Array:
        """The first record point's starting vectors: random unit vectors of the
        parameters' size, one per eigenvalue measured (rows)."""
        flat, _ = ravel_pytree(params)
        vectors = jax.random.normal(key, (2 if preconditioned else 1, flat.size), flat.dtype)
        return vectors / jnp.linalg.norm(vectors, axis=1, keepdims=True)

    def measure(self, loss: Callable[[Any], jax.Array], params: Any, vectors: jax.Array,
                key: jax.Array, preconditioner: Any = None
                ) -> tuple[dict[str, jax.Array], jax.Array]:
        """The curvature metrics of ``loss`` at ``params`` and the eigenvectors to start the
        next record point from; ``key`` draws the trace's probes; ``preconditioner``: the
        optimizer's diagonal P (a pytree like ``params``), or None."""
        flat, unravel = ravel_pytree(params)
        flat_loss = lambda x: loss(unravel(x))  # noqa: E731
        hvp = hessian_vector_product(flat_loss, flat)
        found = {}
        if self.sharpness:
            top = top_eigen(flat_loss, flat, hvp, vectors[0])
            found[SHARPNESS], vectors = top.value, vectors.at[0].set(top.vector)
            found[PRODUCTS] = top.steps
        if self.sharpness and preconditioner is not None:
            # the Hessian of x -> loss(flat + s (x - flat)) at flat is diag(s) H diag(s)
            scale = jax.lax.rsqrt(ravel_pytree(preconditioner)[0].astype(flat.dtype))
            scaled = lambda x: flat_loss(flat + scale * (x - flat))  # noqa: E731
            top = top_eigen(scaled, flat, hessian_vector_product(scaled, flat), vectors[1])
            found[PRECONDITIONED] = top.value
            vectors = vectors.at[1].set(jnp.where(jnp.isfinite(top.vector), top.vector,
                                                  vectors[1]))
        if self.trace:
            found[TRACE] = hutchinson_trace(hvp, flat.size, key, flat.dtype)
        return found, vectors

    def memory_vectors(self, n_parameters: int) -> int:
        """Parameter-sized vectors one run holds while measuring: the Lanczos basis (or the
        dense Hessian), the carried eigenvector, the probes and the products' primal and
        tangent gradients."""
        if not self.sharpness:
            return 8
        if n_parameters <= DENSE_MAX_PARAMETERS:
            return n_parameters + 6
        return LANCZOS_STEPS + 8


def curvature_of(sharpness: bool, hessian_trace: bool) -> Curvature | None:
    """A task's curvature measurement from its ``[[tasks]]`` switches; None for neither."""
    return Curvature(sharpness, hessian_trace) if sharpness or hessian_trace else None


def hessian_vector_product(loss: Callable[[jax.Array], jax.Array], x: jax.Array
                           ) -> Callable[[jax.Array], jax.Array]:
    """``v -> H(x) v`` of a scalar ``loss`` of a flat vector: forward over reverse."""
    grad = jax.grad(loss)
    return lambda v: jax.jvp(grad, (x,), (v,))[1]


def top_eigen(loss: Callable[[jax.Array], jax.Array], x: jax.Array,
              hvp: Callable[[jax.Array], jax.Array], start: jax.Array) -> Eigen:
    """The largest eigenvalue of the Hessian of ``loss`` at ``x``: dense for small ``x``,
    else by Lanczos from ``start``."""
    if x.size <= DENSE_MAX_PARAMETERS:
        return dense_top(jax.hessian(loss)(x))
    return lanczos_top(hvp, start)


def dense_top(hessian: jax.Array) -> Eigen:
    """The top eigenpair of a dense symmetric matrix (symmetrized against rounding)."""
    values, vectors = jnp.linalg.eigh((hessian + hessian.T) / 2)
    return Eigen(values[-1], vectors[:, -1], jnp.zeros((), hessian.dtype),
                 jnp.int32(len(hessian)))


class _Lanczos(NamedTuple):
    step: jax.Array  # products done
    basis: jax.Array  # (LANCZOS_STEPS, n): the orthonormal Lanczos vectors, zero rows unused
    alpha: jax.Array  # the tridiagonal's diagonal
    beta: jax.Array  # its off-diagonal: beta[j] couples vectors j and j + 1
    next: jax.Array  # the next Lanczos vector (zero after a breakdown)
    previous: jax.Array
    done: jax.Array  # converged, or the Krylov space is exhausted


def _tridiagonal(state: _Lanczos) -> jax.Array:
    """T of the steps done; the rows not yet computed hold alpha[0] on the diagonal (a
    Rayleigh quotient of the space, so never above its top Ritz value) and are decoupled."""
    used = jnp.arange(LANCZOS_STEPS) < state.step
    diagonal = jnp.where(used, state.alpha, state.alpha[0])
    off = jnp.where(used[1:], state.beta[:-1], 0)
    return jnp.diag(diagonal) + jnp.diag(off, 1) + jnp.diag(off, -1)


def _ritz(state: _Lanczos) -> tuple[jax.Array, jax.Array, jax.Array]:
    """The top Ritz value, its coordinates in the basis and its residual |beta_j y_j|."""
    values, vectors = jnp.linalg.eigh(_tridiagonal(state))
    y = vectors[:, -1]
    residual = jnp.abs(state.beta[state.step - 1] * y[state.step - 1])
    return values[-1], y, residual


def lanczos_top(hvp: Callable[[jax.Array], jax.Array], start: jax.Array) -> Eigen:
    """The largest eigenvalue of the symmetric operator ``hvp`` by Lanczos with full
    reorthogonalization from ``start`` (see the module docstring for when it stops)."""
    n, dtype = start.size, start.dtype
    tiny = jnp.finfo(dtype).eps
    first = start / jnp.maximum(jnp.linalg.norm(start), tiny)

    def step(state: _Lanczos) -> _Lanczos:
        j, v = state.step, state.next
        basis = state.basis.at[j].set(v)
        w = hvp(v)
        alpha = jnp.vdot(v, w)
        w = w - alpha * v - state.beta[j - 1] * state.previous * (j > 0)
        for _ in range(2):  # twice is enough (Parlett's "twice is enough")
            w = w - basis.T @ (basis @ w)
        beta = jnp.linalg.norm(w)
        scale = jnp.maximum(jnp.abs(alpha), jnp.max(jnp.abs(state.alpha)))
        exhausted = beta <= 100 * tiny * jnp.maximum(scale, tiny)
        state = state._replace(step=j + 1, basis=basis, alpha=state.alpha.at[j].set(alpha),
                               beta=state.beta.at[j].set(jnp.where(exhausted, 0, beta)),
                               next=jnp.where(exhausted, 0, w / jnp.maximum(beta, tiny)),
                               previous=v)
        value, _, residual = _ritz(state)
        converged = (j + 1 >= LANCZOS_MIN_STEPS) & (
            residual <= LANCZOS_TOLERANCE * jnp.abs(value))
        return state._replace(done=exhausted | converged)

    state = _Lanczos(step=jnp.int32(0), basis=jnp.zeros((LANCZOS_STEPS, n), dtype),
                     alpha=jnp.zeros(LANCZOS_STEPS, dtype), beta=jnp.zeros(LANCZOS_STEPS, dtype),
                     next=first, previous=jnp.zeros(n, dtype), done=jnp.asarray(False))
    state = jax.lax.while_loop(lambda s: ~s.done & (s.step < LANCZOS_STEPS), step, state)
    value, y, residual = _ritz(state)
    vector = state.basis.T @ y
    norm = jnp.linalg.norm(vector)
    vector = jnp.where(norm > tiny, vector / jnp.maximum(norm, tiny), first)
    return Eigen(value, vector, residual, state.step)


def hutchinson_trace(hvp: Callable[[jax.Array], jax.Array], n: int, key: jax.Array,
                     dtype: Any) -> jax.Array:
    """Hutchinson's estimate of tr H: the mean of z^T H z over Rademacher probes z."""
    probes = jax.random.rademacher(key, (HUTCHINSON_PROBES, n), dtype)
    return jnp.mean(jax.lax.map(lambda z: jnp.vdot(z, hvp(z)), probes))
