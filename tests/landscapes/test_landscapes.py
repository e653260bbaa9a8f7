"""Tests for the `landscapes` registry: stated minima are true minima, and fn is JAX-friendly.

Surfaces are evaluated through cached `jax.jit` wrappers: op-by-op (eager) evaluation compiles
every primitive separately and would make this file several times slower.
"""

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from optbench import landscapes

NAMES = landscapes.names()
UNBOUNDED = ("saddle", "monkey_saddle")
MINIMIZER_COUNTS = {"himmelblau": 4, "branin": 3, "six_hump_camel": 2, "dixon_price": 2}


def _supported(name, dim):
    low, high = landscapes.get(name).dims
    return dim >= low and (high is None or dim <= high)


def _dims(name):
    """The dimensions tested for a surface: 1, 2, 5 and 10 where supported."""
    return [d for d in (1, 2, 5, 10) if _supported(name, d)]


CASES = [(name, dim) for name in NAMES for dim in _dims(name)]
TWO_D = [name for name in NAMES if _supported(name, 2)]
BOUNDED_2D = [name for name in TWO_D if name not in UNBOUNDED]


@functools.cache
def _surface(name, dim=2):
    return landscapes.get(name, dim=dim)


@functools.cache
def _compiled(name, dim=2):
    """(f, (f, grad f) at one point, (f, grad f) vmapped over points), jitted once per surface."""
    fn = _surface(name, dim).fn
    value_and_grad = jax.value_and_grad(fn)
    return jax.jit(fn), jax.jit(value_and_grad), jax.jit(jax.vmap(value_and_grad))


@pytest.fixture
def x64():
    """Runs a test with 64-bit floats enabled, restoring the previous setting afterwards."""
    with jax.enable_x64(True):
        yield


def _inside(point, domain):
    lower, upper = domain
    return bool(np.all(lower <= point) and np.all(point <= upper))


def _random_points(ls, count, seed=0):
    lower, upper = ls.domain
    return np.random.default_rng(seed).uniform(lower, upper, size=(count, ls.dim))


def _grid(window, points=1001):
    (xlo, xhi), (ylo, yhi) = window
    xs, ys = np.meshgrid(np.linspace(xlo, xhi, points), np.linspace(ylo, yhi, points))
    return np.stack([xs, ys], axis=-1)


def _domain_window(ls):
    return tuple(zip(*ls.domain, strict=True))


# --- registry and metadata ----------------------------------------------------------------------


def test_registry_has_enough_surfaces_of_every_kind():
    assert len(NAMES) >= 18
    assert NAMES == tuple(sorted(NAMES))
    assert landscapes.KINDS == ("convex", "valley", "multimodal", "saddle", "plateau")
    by_kind = {kind: landscapes.names(kind=kind) for kind in landscapes.KINDS}
    assert all(by_kind.values()), by_kind
    assert sorted(n for group in by_kind.values() for n in group) == list(NAMES)
    for kind, group in by_kind.items():
        assert all(_surface(n).kind == kind for n in group)


REQUIRED = {
    "sphere": ("convex", (1, None)),
    "ill_conditioned_quadratic": ("convex", (2, None)),
    "rotated_ellipsoid": ("convex", (2, None)),
    "booth": ("convex", (2, 2)),
    "matyas": ("convex", (2, 2)),
    "rosenbrock": ("valley", (2, None)),
    "beale": ("valley", (2, 2)),
    "three_hump_camel": ("valley", (2, 2)),
    "dixon_price": ("valley", (2, None)),
    "ravine": ("valley", (2, 2)),
    "himmelblau": ("multimodal", (2, 2)),
    "six_hump_camel": ("multimodal", (2, 2)),
    "goldstein_price": ("multimodal", (2, 2)),
    "branin": ("multimodal", (2, 2)),
    "mccormick": ("multimodal", (2, 2)),
    "rastrigin": ("multimodal", (1, None)),
    "ackley": ("multimodal", (1, None)),
    "griewank": ("multimodal", (1, None)),
    "styblinski_tang": ("multimodal", (1, None)),
    "levy": ("multimodal", (1, None)),
    "levi13": ("multimodal", (2, 2)),
    "saddle": ("saddle", (2, 2)),
    "monkey_saddle": ("saddle", (2, 2)),
    "easom": ("plateau", (2, 2)),
}


def test_required_surfaces_are_registered_with_kind_and_dims():
    got = {name: (_surface(name).kind, _surface(name).dims) for name in REQUIRED}
    assert got == REQUIRED
    assert all(_surface(name).dim == 2 for name in REQUIRED)  # the default dimension


@pytest.mark.parametrize("name, dim", CASES)
def test_metadata_shapes_and_types(name, dim):
    ls = _surface(name, dim)
    assert ls.name == name and ls.dim == dim
    lower, upper = ls.domain
    assert lower.shape == upper.shape == ls.start.shape == (dim,)
    assert np.all(lower < upper)
    assert all(m.shape == (dim,) for m in ls.minimizers)
    (xlo, xhi), (ylo, yhi) = ls.window
    assert xlo < xhi and ylo < yhi
    assert isinstance(ls.f_min, float) and isinstance(ls.params, dict)
    assert isinstance(ls.description, str) and ls.description and "\n" not in ls.description
    with pytest.raises(dataclasses.FrozenInstanceError):
        ls.f_min = 0.0  # type: ignore[misc]
    with pytest.raises(ValueError):
        ls.start[0] = 1.0  # read-only: a shared Landscape cannot be changed by accident


# --- minima -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name, dim", CASES)
def test_every_minimizer_attains_f_min_with_zero_gradient(x64, name, dim):
    ls = _surface(name, dim)
    if name in UNBOUNDED:
        assert not ls.bounded and ls.minimizers == () and ls.f_min == -math.inf
        return
    assert ls.bounded and math.isfinite(ls.f_min)
    assert len(ls.minimizers) == MINIMIZER_COUNTS.get(name, 1)
    value_and_grad = _compiled(name, dim)[1]
    scale = max(1.0, abs(ls.f_min))
    for x_star in ls.minimizers:
        value, grad = value_and_grad(jnp.asarray(x_star, jnp.float64))
        assert abs(float(value) - ls.f_min) <= 1e-9 * scale, (x_star, float(value))
        assert float(jnp.linalg.norm(grad)) <= 1e-7 * scale, x_star
        assert _inside(x_star, ls.domain)
    distances = [
        np.linalg.norm(a - b) for i, a in enumerate(ls.minimizers) for b in ls.minimizers[i + 1 :]
    ]
    assert all(d > 1e-3 for d in distances), "minimizers must be distinct"


def _grid_local_minima(values, count):
    """Flat indices of the `count` lowest cells no higher than any of their 8 neighbours."""
    padded = np.pad(values, 1, constant_values=np.inf)
    rows, cols = values.shape
    is_min = np.ones(values.shape, dtype=bool)
    for di in (-1, 0, 1):
        for dj in (-1, 0, 1):
            if di or dj:
                neighbour = padded[1 + di : 1 + di + rows, 1 + dj : 1 + dj + cols]
                is_min &= values <= neighbour
    candidates = np.flatnonzero(is_min)
    return candidates[np.argsort(values.ravel()[candidates])[:count]]


def _zoom(fn, centers, half_width, lower, upper, rounds=30, points=11):
    """Derivative-free polish: re-grid a shrinking box around each point and keep the best.

    Returns the polished points and their values.
    """
    offsets = np.linspace(-1.0, 1.0, points)
    offsets = np.stack(np.meshgrid(offsets, offsets), axis=-1).reshape(-1, 2)
    rows = np.arange(len(centers))
    for _ in range(rounds):
        candidates = np.clip(centers[:, None, :] + half_width * offsets, lower, upper)
        values = np.asarray(fn(jnp.asarray(candidates)))
        best = values.argmin(axis=1)
        centers = candidates[rows, best]
        half_width = half_width / 2
    return centers, values[rows, best]


@pytest.mark.parametrize("name", BOUNDED_2D)
def test_grid_search_finds_nothing_below_f_min_and_exactly_the_listed_minimizers(x64, name):
    """Dense grids over the window and the domain stay above f_min; polishing the lowest grid
    basins finds every listed minimizer and no unlisted global one."""
    ls = _surface(name)
    f, value_and_grad, _ = _compiled(name)
    for window in (ls.window, _domain_window(ls)):
        grid = _grid(window, 1001)
        values = np.asarray(f(jnp.asarray(grid)))  # the (n, n, 2) layout used for plotting
        assert values.shape == (1001, 1001) and np.all(np.isfinite(values))
        assert values.min() >= ls.f_min - 1e-6, (window, values.min(), ls.f_min)
        for i, j in [(0, 0), (500, 377), (1000, 3)]:
            assert values[i, j] == pytest.approx(float(value_and_grad(grid[i, j])[0]), rel=1e-12)
    lower, upper = ls.domain  # the last grid covers the domain
    cells = grid.reshape(-1, 2)[_grid_local_minima(values, 64)]
    polished, polished_values = _zoom(f, cells, 2 * (upper - lower) / 1000, lower, upper)
    gaps = polished_values - ls.f_min
    assert gaps.min() >= -1e-9
    found = polished[gaps <= 1e-7 * max(1.0, abs(ls.f_min))]
    listed = np.stack(ls.minimizers)
    distance = np.linalg.norm(found[:, None, :] - listed[None, :, :], axis=-1)
    assert np.all(distance.min(axis=1) < 1e-3), found[distance.min(axis=1) >= 1e-3]
    assert np.all(distance.min(axis=0) < 1e-3), "a listed minimizer was not found"


def test_unbounded_saddles_decrease_without_bound(x64):
    window_min = {"saddle": -4.0, "monkey_saddle": -16.0}  # reached on the border of [-2, 2]^2
    origin = jnp.zeros(2)
    for name in UNBOUNDED:
        ls = _surface(name)
        f, value_and_grad, _ = _compiled(name)
        assert not ls.bounded and ls.f_min == -math.inf and ls.minimizers == ()
        assert float(f(jnp.asarray(_grid(ls.window))).min()) == pytest.approx(window_min[name])
        ray = jnp.asarray([[0.0, 1e4], [-1e4, 0.0]])  # a descending direction of each
        assert float(jnp.min(f(ray))) < -1e7
        assert np.allclose(value_and_grad(origin)[1], 0.0)
    hessian = jax.jit(jax.hessian(_surface("saddle").fn))(origin)
    assert np.allclose(np.linalg.eigvalsh(hessian), [-2.0, 2.0])
    assert np.allclose(jax.jit(jax.hessian(_surface("monkey_saddle").fn))(origin), 0.0)


# --- start, domain, window ----------------------------------------------------------------------


@pytest.mark.parametrize("name, dim", CASES)
def test_start_is_inside_domain_above_f_min_and_not_stationary(name, dim):
    ls = _surface(name, dim)
    assert _inside(ls.start, ls.domain)
    value, grad = _compiled(name, dim)[1](jnp.asarray(ls.start, jnp.float32))
    assert math.isfinite(value) and float(value) > ls.f_min + 1e-3
    assert all(np.linalg.norm(ls.start - m) > 1e-2 for m in ls.minimizers)
    assert 1e-3 < float(jnp.linalg.norm(grad)) < math.inf


@pytest.mark.parametrize("name", TWO_D)
def test_window_lies_inside_domain(name):
    ls = _surface(name)
    (xlo, xhi), (ylo, yhi) = ls.window
    assert _inside(np.array([xlo, ylo]), ls.domain) and _inside(np.array([xhi, yhi]), ls.domain)


# --- JAX behaviour ------------------------------------------------------------------------------


@pytest.mark.parametrize("name, dim", [(n, 5 if _supported(n, 5) else 2) for n in NAMES])
def test_fn_jits_vmaps_and_grads(name, dim):
    ls = _surface(name, dim)
    f, value_and_grad, batched = _compiled(name, dim)
    points = jnp.asarray(_random_points(ls, 8), jnp.float32)
    looped = [value_and_grad(p) for p in points]  # value_and_grad needs a scalar f
    looped_values = np.array([float(value) for value, _ in looped])
    values, grads = batched(points)
    np.testing.assert_allclose(values, looped_values, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(grads, np.stack([g for _, g in looped]), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(f(points), looped_values, rtol=1e-5, atol=1e-5)
    assert grads.shape == (8, dim) and bool(jnp.all(jnp.isfinite(grads)))


def _out_dtype(fn, dtype, dim=2):
    return jax.eval_shape(fn, jax.ShapeDtypeStruct((dim,), dtype)).dtype


@pytest.mark.parametrize("name", NAMES)
def test_result_dtype_follows_input(name):
    ls = _surface(name)
    assert _out_dtype(ls.fn, jnp.float32) == jnp.float32
    assert _out_dtype(ls.fn, jnp.int32) == jnp.float32  # integers are promoted, not rejected
    with jax.enable_x64(True):
        fn = landscapes.get(name).fn  # a fresh function: traces are cached across x64 modes
        assert _out_dtype(fn, jnp.float64) == jnp.float64
        assert _out_dtype(fn, jnp.float32) == jnp.float32
        assert _out_dtype(jax.grad(fn), jnp.float32) == jnp.float32


@pytest.mark.parametrize("dim", [1, 2, 5])
def test_ackley_gradient_is_zero_at_the_origin_and_finite_near_it(dim):
    value_and_grad = _compiled("ackley", dim)[1]
    assert bool(jnp.all(value_and_grad(jnp.zeros(dim))[1] == 0.0))
    assert bool(jnp.all(jnp.isfinite(value_and_grad(jnp.full(dim, 1e-30, jnp.float32))[1])))


def test_wrong_input_shape_is_rejected():
    with pytest.raises(ValueError, match=r"expects an array of shape \(\.\.\., 5\), got \(3,\)"):
        _surface("sphere", 5)(jnp.zeros(3))
    with pytest.raises(ValueError, match=r"got \(4, 3\)"):
        jax.jit(_surface("beale").fn)(jnp.zeros((4, 3)))


# --- formulas and parameters --------------------------------------------------------------------


def test_rosenbrock_2d_is_the_classic_banana(x64):
    f = _compiled("rosenbrock")[0]
    for x, y in _random_points(_surface("rosenbrock"), 10):
        assert float(f(jnp.asarray([x, y]))) == pytest.approx((1 - x) ** 2 + 100 * (y - x**2) ** 2)
    assert np.array_equal(_surface("rosenbrock", 5).start, [-1.2, 1.0, -1.2, 1.0, -1.2])


def test_styblinski_tang_minimum_is_the_precise_one():
    for dim in (1, 2, 7):
        ls = landscapes.get("styblinski_tang", dim=dim)
        assert ls.f_min == pytest.approx(-39.16616570377142 * dim, rel=1e-14)
        np.testing.assert_allclose(ls.minimizers[0], -2.903534027771177, rtol=1e-15)
    # the value printed by SFU, -39.16599 d, is not the minimum
    assert _surface("styblinski_tang").f_min < -39.16599 * 2 - 3e-4


@pytest.mark.parametrize("condition_number", [1.0, 10.0, 1e3])
def test_quadratic_curvatures_match_condition_number(x64, condition_number):
    expected = 2 * np.geomspace(1.0, condition_number, 6)
    axis = landscapes.get("ill_conditioned_quadratic", dim=6, condition_number=condition_number)
    hessian = np.asarray(jax.jit(jax.hessian(axis.fn))(jnp.zeros(6)))
    np.testing.assert_allclose(np.diag(hessian), expected, rtol=1e-12)
    assert np.allclose(hessian, np.diag(np.diag(hessian)))
    rotated = landscapes.get("rotated_ellipsoid", dim=6, condition_number=condition_number)
    hessian = np.asarray(jax.jit(jax.hessian(rotated.fn))(jnp.zeros(6)))
    np.testing.assert_allclose(np.linalg.eigvalsh(hessian), expected, rtol=1e-10)
    if condition_number > 1:
        assert not np.allclose(hessian, np.diag(np.diag(hessian)))  # not separable


def test_rotated_ellipsoid_is_deterministic_per_seed(x64):
    x = np.linspace(-1.0, 1.0, 4)
    same = [float(landscapes.get("rotated_ellipsoid", dim=4, seed=3)(x)) for _ in range(2)]
    other = float(landscapes.get("rotated_ellipsoid", dim=4, seed=4)(x))
    assert same[0] == same[1] and abs(same[0] - other) > 1e-6
    default = landscapes.get("rotated_ellipsoid", dim=4)
    assert default.params == {"condition_number": 100.0, "seed": 0}


def test_small_quadratics_have_documented_conditioning(x64):
    for name, condition in (("booth", 9.0), ("matyas", 25.0), ("ravine", 100.0)):
        eig = np.linalg.eigvalsh(jax.jit(jax.hessian(_surface(name).fn))(jnp.zeros(2)))
        assert eig.max() / eig.min() == pytest.approx(condition), name


def test_params_record_what_was_used():
    ls = landscapes.get("ill_conditioned_quadratic", dim=50, condition_number=1e3)
    assert ls.params == {"condition_number": 1000.0} and ls.dim == 50
    assert landscapes.get("ravine", condition_number=4).params == {"condition_number": 4.0}
    assert _surface("sphere").params == {}


# --- errors -------------------------------------------------------------------------------------


def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError, match="unknown landscape 'rosenbrok'") as info:
        landscapes.get("rosenbrok")
    message = str(info.value)
    assert "did you mean 'rosenbrock'" in message
    assert all(name in message for name in NAMES) and "\n" not in message


@pytest.mark.parametrize(
    "name, dim, allowed",
    [
        ("beale", 3, "dim == 2"),
        ("rosenbrock", 1, "dim >= 2"),
        ("ill_conditioned_quadratic", 1, "dim >= 2"),
        ("sphere", 0, "dim >= 1"),
        ("sphere", 2.0, "dim >= 1"),
        ("sphere", True, "dim >= 1"),
    ],
)
def test_unsupported_dim_names_the_value_and_range(name, dim, allowed):
    with pytest.raises(ValueError) as info:
        landscapes.get(name, dim=dim)
    message = str(info.value)
    assert f"dim={dim!r}" in message and allowed in message and name in message


@pytest.mark.parametrize(
    "name, params, expected",
    [
        ("ravine", {"condition_number": 0.5}, "condition_number=0.5 .* allowed: a finite number"),
        ("ill_conditioned_quadratic", {"condition_number": float("nan")}, "condition_number=nan"),
        ("rotated_ellipsoid", {"condition_number": "big"}, "condition_number='big'"),
        ("rotated_ellipsoid", {"seed": -1}, "seed=-1 .* allowed: an integer >= 0"),
        ("rotated_ellipsoid", {"seed": 1.5}, "seed=1.5 .* an integer >= 0"),
        ("ravine", {"kappa": 10}, "unknown parameter 'kappa' .* parameters: condition_number"),
        ("sphere", {"condition_number": 10}, "unknown parameter 'condition_number' .* none"),
    ],
)
def test_bad_parameters_are_named(name, params, expected):
    with pytest.raises(ValueError, match=expected):
        landscapes.get(name, **params)


def test_unknown_kind_lists_kinds():
    with pytest.raises(ValueError, match="unknown kind 'bowl'; valid kinds: convex, valley"):
        landscapes.names(kind="bowl")


# Independent float64 numpy transcriptions of the formulas in the reference table.
def _levy(x):
    w = 1 + (x - 1) / 4
    middle = np.sum((w[:-1] - 1) ** 2 * (1 + 10 * np.sin(np.pi * w[:-1] + 1) ** 2))
    last = (w[-1] - 1) ** 2 * (1 + np.sin(2 * np.pi * w[-1]) ** 2)
    return np.sin(np.pi * w[0]) ** 2 + middle + last


def _ackley(x):
    radius = np.sqrt(np.mean(x**2))
    return -20 * np.exp(-0.2 * radius) - np.exp(np.mean(np.cos(2 * np.pi * x))) + 20 + np.e


def _branin(x):
    u, v = x
    b, c, t = 5.1 / (4 * np.pi**2), 5 / np.pi, 1 / (8 * np.pi)
    return (v - b * u**2 + c * u - 6) ** 2 + 10 * (1 - t) * np.cos(u) + 10


REFERENCE = {
    "sphere": lambda x: np.sum(x**2),
    "ill_conditioned_quadratic": lambda x: np.sum(np.geomspace(1, 100, x.size) * x**2),
    "booth": lambda x: (x[0] + 2 * x[1] - 7) ** 2 + (2 * x[0] + x[1] - 5) ** 2,
    "matyas": lambda x: 0.26 * (x[0] ** 2 + x[1] ** 2) - 0.48 * x[0] * x[1],
    "rosenbrock": lambda x: np.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2),
    "beale": lambda x: sum(
        (c - x[0] + x[0] * x[1] ** k) ** 2 for k, c in ((1, 1.5), (2, 2.25), (3, 2.625))
    ),
    "three_hump_camel": lambda x: (
        2 * x[0] ** 2 - 1.05 * x[0] ** 4 + x[0] ** 6 / 6 + x[0] * x[1] + x[1] ** 2
    ),
    "dixon_price": lambda x: (
        (x[0] - 1) ** 2 + sum(i * (2 * x[i - 1] ** 2 - x[i - 2]) ** 2 for i in range(2, x.size + 1))
    ),
    "ravine": lambda x: x[0] ** 2 + 100 * x[1] ** 2,
    "himmelblau": lambda x: (x[0] ** 2 + x[1] - 11) ** 2 + (x[0] + x[1] ** 2 - 7) ** 2,
    "six_hump_camel": lambda x: (
        (4 - 2.1 * x[0] ** 2 + x[0] ** 4 / 3) * x[0] ** 2
        + x[0] * x[1]
        + (-4 + 4 * x[1] ** 2) * x[1] ** 2
    ),
    "goldstein_price": lambda x: (
        (
            1
            + (x[0] + x[1] + 1) ** 2
            * (19 - 14 * x[0] + 3 * x[0] ** 2 - 14 * x[1] + 6 * x[0] * x[1] + 3 * x[1] ** 2)
        )
        * (
            30
            + (2 * x[0] - 3 * x[1]) ** 2
            * (18 - 32 * x[0] + 12 * x[0] ** 2 + 48 * x[1] - 36 * x[0] * x[1] + 27 * x[1] ** 2)
        )
    ),
    "branin": _branin,
    "mccormick": lambda x: np.sin(x[0] + x[1]) + (x[0] - x[1]) ** 2 - 1.5 * x[0] + 2.5 * x[1] + 1,
    "rastrigin": lambda x: 10 * x.size + np.sum(x**2 - 10 * np.cos(2 * np.pi * x)),
    "ackley": _ackley,
    "griewank": lambda x: (
        np.sum(x**2) / 4000 - np.prod(np.cos(x / np.sqrt(np.arange(1, x.size + 1)))) + 1
    ),
    "styblinski_tang": lambda x: 0.5 * np.sum(x**4 - 16 * x**2 + 5 * x),
    "levy": _levy,
    "levi13": lambda x: (
        np.sin(3 * np.pi * x[0]) ** 2
        + (x[0] - 1) ** 2 * (1 + np.sin(3 * np.pi * x[1]) ** 2)
        + (x[1] - 1) ** 2 * (1 + np.sin(2 * np.pi * x[1]) ** 2)
    ),
    "saddle": lambda x: x[0] ** 2 - x[1] ** 2,
    "monkey_saddle": lambda x: x[0] ** 3 - 3 * x[0] * x[1] ** 2,
    "easom": lambda x: (
        -np.cos(x[0]) * np.cos(x[1]) * np.exp(-((x[0] - np.pi) ** 2) - (x[1] - np.pi) ** 2)
    ),
}


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_fn_matches_the_reference_formula(x64, name):
    dim = 5 if _supported(name, 5) else 2
    ls = _surface(name, dim)
    value_and_grad = _compiled(name, dim)[1]
    points = _random_points(ls, 16, seed=1)
    points[8:] *= 0.1  # also probe near the centre of the domain
    got = [float(value_and_grad(jnp.asarray(p))[0]) for p in points]
    np.testing.assert_allclose(got, [REFERENCE[name](p) for p in points], rtol=1e-10)


ZERO_MINIMUM = sorted(n for n in BOUNDED_2D if _surface(n).f_min == 0)


@pytest.mark.parametrize("name", ZERO_MINIMUM)
def test_float32_resolves_small_gaps_where_the_minimum_is_zero(name):
    """Where f_min = 0 no float32 warning applies, so f must keep float32's relative
    precision near a minimizer: at float32 points whose gap is down to 1e-9 (below the
    default targets), it agrees with the float64 value at the same point (Rastrigin's
    1 - cos read 0 there, and f only x^2)."""
    ls = _surface(name)
    direction = np.array([1.0, -0.5])
    points = np.stack([m + d * direction for m in ls.minimizers
                       for d in np.geomspace(1e-2, 1e-6, 9)]).astype(np.float32)
    single = jax.vmap(ls.fn)(jnp.asarray(points))
    assert single.dtype == jnp.float32
    got = np.asarray(single, float)
    with jax.enable_x64(True):
        exact = np.asarray(jax.vmap(ls.fn)(jnp.asarray(points, jnp.float64)))
    resolved = exact >= 1e-9
    assert resolved.sum() >= 3
    np.testing.assert_allclose(got[resolved], exact[resolved], rtol=0.05)


@pytest.mark.parametrize("name", BOUNDED_2D)
def test_float32_resolves_every_gap_well_above_its_stated_resolution(name):
    """float32_resolution is what the float32 warning says: wherever the gap is 30x above
    it, f in float32 agrees with float64 to 10 % (Goldstein-Price's terms near its minimum
    are tens, so it resolves only about 1e-5, 30x eps |f_min|)."""
    ls = _surface(name)
    resolution = ls.float32_resolution()
    assert resolution >= np.finfo(np.float32).eps * abs(ls.f_min)
    direction = np.array([1.0, -0.5])
    points = np.stack([m + d * direction for m in ls.minimizers
                       for d in np.geomspace(1e-1, 1e-7, 25)]).astype(np.float32)
    got = np.asarray(jax.vmap(ls.fn)(jnp.asarray(points)), float) - np.float32(ls.f_min)
    with jax.enable_x64(True):
        exact = np.asarray(jax.vmap(ls.fn)(jnp.asarray(points, jnp.float64))) - ls.f_min
    resolved = exact >= 30 * resolution
    np.testing.assert_allclose(got[resolved], exact[resolved], rtol=0.1)


def test_a_surface_unbounded_below_has_no_float32_resolution_to_warn_of():
    assert _surface("saddle").float32_resolution() == 0.0


def test_the_float32_warning_names_the_targets_below_the_resolution():
    """Goldstein-Price resolves about 1e-5, far coarser than eps x its f_min of 3 (3.6e-7),
    so 1e-6 is named; on the sphere no default target is."""
    from optbench.config import DEFAULT_TARGETS
    from optbench.engine.sweep import float32_warning

    surface = _surface("goldstein_price")
    resolution = surface.float32_resolution()
    assert 1e-6 < resolution < 1e-4 and resolution > 10 * np.finfo(np.float32).eps * 3
    assert float32_warning("gp", [1e-4, 1e-6], surface) == (
        f"gp: in float32, f - f_min is resolved only to about {resolution:.1e}; targets "
        "1e-06 measure rounding")
    assert float32_warning("sphere", DEFAULT_TARGETS, _surface("sphere")) is None


@pytest.mark.parametrize(
    "name, point, value",
    [
        ("himmelblau", (-0.270845, -0.923039), 181.617),  # the local maximum
        ("three_hump_camel", (1.747552, -0.873776), 0.298638),
        ("six_hump_camel", (1.703607, -0.796084), -0.215464),
        ("six_hump_camel", (-1.607105, -0.568651), 2.104250),
        ("goldstein_price", (-0.6, -0.4), 30.0),
        ("goldstein_price", (1.8, 0.2), 84.0),
        ("goldstein_price", (1.2, 0.8), 840.0),
        ("rosenbrock", (-0.7757, 0.6131, 0.3821, 0.1460), 3.7014),  # a local min for d = 4
    ],
)
def test_documented_values_at_other_stationary_points(x64, name, point, value):
    value_and_grad = _compiled(name, len(point))[1]
    assert float(value_and_grad(jnp.asarray(point))[0]) == pytest.approx(value, abs=5e-4)


def test_minima_are_over_the_domain_only_where_the_surface_says_so(x64):
    domain_only = {n for n in landscapes.names() if landscapes.get(n).minimum_over == "domain"}
    assert domain_only == {"mccormick", "branin"}
    assert {landscapes.get(n).minimum_over for n in landscapes.names()} == {"R^dim", "domain"}
    mccormick = landscapes.get("mccormick")
    assert float(mccormick(jnp.asarray([-16.26, -17.26]))) < -17  # below f_min, off the box
    assert mccormick.f_min == pytest.approx(-1.9132, abs=1e-4)
    branin = landscapes.get("branin")
    u = 5 * math.pi  # the valley's next minimizer, beyond the box's x <= 10
    outside = jnp.asarray([u, 5.1 / (4 * math.pi**2) * u**2 - 5 / math.pi * u + 6])
    assert float(branin(outside)) == pytest.approx(branin.f_min, abs=1e-12)
    assert u > branin.domain[1][0]


def test_dixon_price_keeps_the_weight_of_the_last_term(x64):
    # (x1 - 1)^2 + sum_i i (2 x_i^2 - x_{i-1})^2 at (0, 1): 1 + 2 * 2^2 = 9 (a formula that
    # drops the weight i = d gives 5)
    assert float(landscapes.get("dixon_price", 2)(jnp.asarray([0.0, 1.0]))) == 9.0
