"""Any optax optimizer, or a user factory, in a sweep: configs, errors and equal numbers."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from optbench.config import ConfigError, parse
from optbench.engine import run_sweep
from optbench.optimizers.reference import trajectory
from optbench.store import ResultStore

STEPS = 60


def _config(**optimizers):
    return {"name": "factories", "steps": STEPS, "record_every": 1, "float64": True,
            "tasks": [{"landscape": "rosenbrock", "dim": 2}], "optimizers": optimizers}


def _paths(directory, label):
    """Each run's recorded trajectory of optimizer ``label`` (after step 0), by its lr."""
    store = ResultStore(directory)
    runs = store.table("runs")
    trajectories = store.table("trajectories")
    out = {}
    for _, run in runs[runs["optimizer"] == label].iterrows():
        rows = trajectories[trajectories["run_id"] == run["run_id"]].sort_values("step")
        out[run["learning_rate"]] = rows[["x0", "x1"]].to_numpy()[1:]
    return out


def _optax_path(tx):
    with jax.enable_x64(True):
        x0 = jnp.asarray([-1.2, 1.0], jnp.float64)
        rosenbrock = lambda x: (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2  # noqa: E731
        return np.asarray(trajectory(tx, rosenbrock, x0, STEPS))


def test_optax_amsgrad_sweep_matches_optax_called_directly(tmp_path):
    # next to a built-in, so that the sweep bundles both rules into one program
    config = _config(ams={"optax": "amsgrad", "learning_rate": [1e-3, 1e-2], "b1": 0.8},
                     adam={"learning_rate": 1e-2})
    run_sweep(config, tmp_path, quiet=True, compile_cache=False)
    paths = _paths(tmp_path, "ams")
    assert sorted(paths) == [1e-3, 1e-2]
    for lr, path in paths.items():
        np.testing.assert_allclose(path, _optax_path(optax.amsgrad(lr, b1=0.8)),
                                   rtol=1e-12, atol=1e-14)
        # b1 reached the rule: optax's default b1 runs elsewhere
        assert np.max(np.abs(path - _optax_path(optax.amsgrad(lr)))) > 1e-6
    runs = ResultStore(tmp_path).table("runs")
    assert set(runs.loc[runs["optimizer"] == "ams", "method"]) == {"optax:amsgrad"}


def test_user_factory_by_path_with_an_option_matches_calling_it(tmp_path):
    config = _config(mine={"optimizer": "tests.engine.factories:damped_sign_descent",
                           "learning_rate": [1e-2, 3e-2], "damping": 0.25},
                     nag={"optax": "sgd", "learning_rate": 1e-4, "momentum": 0.9,
                          "nesterov": True},
                     # a built-in's optax options: its factory, by path
                     rms={"optimizer": "optbench.optimizers:rmsprop", "learning_rate": 1e-3,
                          "momentum": 0.5, "nesterov": True, "bias_correction": True})
    run_sweep(config, tmp_path, quiet=True, compile_cache=False)
    from tests.engine.factories import damped_sign_descent

    paths = _paths(tmp_path, "mine")
    assert sorted(paths) == [1e-2, 3e-2]
    for lr, path in paths.items():
        np.testing.assert_allclose(path, _optax_path(damped_sign_descent(lr, 0.25)),
                                   rtol=1e-12, atol=1e-14)
        assert np.max(np.abs(path - _optax_path(damped_sign_descent(lr)))) > 1e-6
    (path,) = _paths(tmp_path, "nag").values()
    np.testing.assert_allclose(path, _optax_path(optax.sgd(1e-4, 0.9, nesterov=True)),
                               rtol=1e-12, atol=1e-14)
    assert np.max(np.abs(path - _optax_path(optax.sgd(1e-4, 0.9)))) > 1e-9  # the option held
    (path,) = _paths(tmp_path, "rms").values()
    np.testing.assert_allclose(path, _optax_path(optax.rmsprop(
        1e-3, momentum=0.5, nesterov=True, bias_correction=True)), rtol=1e-12, atol=1e-14)


def test_factory_configs_round_trip_through_to_dict():
    config = parse(_config(nag={"optax": "sgd", "learning_rate": [0.1, 0.2], "nesterov": True,
                                "momentum": 0.9}))
    (nag,) = config.optimizers
    assert nag.optimizer == "optax:sgd" and nag.options == {"nesterov": True}
    assert dict(nag.grid) == {"learning_rate": (0.1, 0.2), "momentum": (0.9,)}
    again = parse(config.to_dict())
    assert again == config and again.digest() == config.digest()
    assert nag.spec is again.optimizers[0].spec  # one rule object: programs are shared
    assert "nesterov=True" in nag.spec.name


@pytest.mark.parametrize(("entry", "path", "words"), [
    ({"optax": "amsgrd", "learning_rate": 0.1}, "optimizers.x.optax",
     ["'amsgrd'", "did you mean 'amsgrad'", "adabelief, adadelta"]),
    ({"optax": "adam", "learning_rate": 0.1, "beta1": 0.9}, "optimizers.x.beta1",
     ["unknown key", "b1, b2", "learning_rate", "nesterov"]),
    ({"optax": "adam", "learning_rate": "fast"}, "optimizers.x.learning_rate",
     ["'fast'", "a finite number", "optax:adam"]),
    ({"optax": "adam", "b1": 0.9}, "optimizers.x.learning_rate", ["requires learning_rate"]),
    ({"optax": "adam", "learning_rate": 0.1, "nesterov": 1.5}, "optimizers.x.nesterov",
     ["true or false"]),
    ({"optax": "adam", "optimizer": "adam", "learning_rate": 0.1}, "optimizers.x.optax",
     ["not both"]),
    ({"optax": "lbfgs", "learning_rate": 0.1}, "optimizers.x.optax",
     ["optax:lbfgs cannot run on gradients alone", "value"]),
    ({"optimizer": "no_such_module:make", "learning_rate": 0.1}, "optimizers.x.optimizer",
     ["'module:function'", "No module named 'no_such_module'"]),
    ({"optimizer": "tests.engine.factories:missing", "learning_rate": 0.1},
     "optimizers.x.optimizer", ["has no attribute 'missing'"]),
    ({"optimizer": "tests.engine.factories:not_an_optimizer", "learning_rate": 0.1},
     "optimizers.x.optimizer", ["returned a float, not an optax.GradientTransformation"]),
    ({"optimizer": "adamm"}, "optimizers.x.optimizer", ["one of gd, sgd", "optax = NAME"]),
])
def test_bad_factory_entries_get_one_line_errors(entry, path, words):
    with pytest.raises(ConfigError) as caught:
        parse(_config(x=entry))
    message = str(caught.value)
    assert caught.value.path == path and "\n" not in message
    for word in words:
        assert word in message, (word, message)
