"""Random and quasirandom searches: an optimizer's table gives distributions, ``search`` and
``trials``; its N trials are N settings (zipped, not a product), drawn the same for the same
``search_seed``, and stored as the distributions that drew them."""

import json

import numpy as np
import pytest
from scipy.stats import qmc

from optbench.config import ConfigError, Distribution, Search, parse, unit_cube

TASKS = [{"landscape": "rosenbrock"}]
SEARCH = {"search": "quasirandom", "trials": 16,
          "learning_rate": {"loguniform": [1e-4, 1e-1]},
          "b1": {"one_minus_loguniform": [1e-3, 0.2]}, "b2": {"uniform": [0.9, 0.999]},
          "eps": 1e-7}


def _adam(**table):
    return parse({"tasks": TASKS, "optimizers": {"adam": table}}).optimizers[0]


def test_a_search_runs_its_trials_as_settings_and_keeps_numbers_fixed():
    adam = _adam(**SEARCH)
    assert adam.search == Search("quasirandom", 16, 0, {
        "learning_rate": Distribution("loguniform", 1e-4, 1e-1),
        "b1": Distribution("one_minus_loguniform", 1e-3, 0.2),
        "b2": Distribution("uniform", 0.9, 0.999)})
    assert all(len(v) == 16 for v in adam.grid.values())
    assert set(adam.grid["eps"]) == {1e-7} and set(adam.grid["eps_root"]) == {0.0}
    settings = adam.settings()  # zipped: 16 settings, not 16**3
    assert len(settings) == 16 == len(set(settings))
    assert parse({"tasks": TASKS, "optimizers": {"adam": SEARCH}}).optimizer_steps() == 16_000


@pytest.mark.parametrize("method", ["random", "quasirandom"])
def test_samples_lie_inside_their_bounds(method):
    adam = _adam(**{**SEARCH, "search": method, "trials": 500})
    for name, (low, high) in {"learning_rate": (1e-4, 1e-1), "b1": (0.8, 0.999),
                              "b2": (0.9, 0.999)}.items():
        values = np.asarray(adam.grid[name])
        assert np.all((values >= low) & (values <= high)), name
        assert values.min() < low + 0.05 * (high - low)  # the range is covered, not a corner
    # log-uniform: each decade of learning rates gets about a third of the trials
    decades = np.histogram(np.log10(adam.grid["learning_rate"]), bins=[-4, -3, -2, -1])[0]
    assert np.all(np.abs(decades - 500 / 3) < 40)


def test_the_same_seed_gives_the_same_trials_another_seed_others():
    first, again = _adam(**SEARCH), _adam(**SEARCH)
    assert first.grid == again.grid
    other = _adam(**SEARCH, search_seed=1)
    assert other.grid["learning_rate"] != first.grid["learning_rate"]
    assert _adam(**{**SEARCH, "search": "random"}).grid != first.grid


def test_quasirandom_points_cover_the_space_more_evenly_than_random():
    quasi = [qmc.discrepancy(unit_cube("quasirandom", 32, 2, seed)) for seed in range(5)]
    random = [qmc.discrepancy(unit_cube("random", 32, 2, seed)) for seed in range(5)]
    assert max(quasi) < min(random)
    # 16 trials over one hyperparameter: each sixteenth of its (log) range exactly once
    strata = {"search": "quasirandom", "trials": 16,
              "learning_rate": {"loguniform": [1e-4, 1e-1]}}
    for seed in range(3):
        rates = np.log10(_adam(**strata, search_seed=seed).grid["learning_rate"])
        assert sorted(((rates + 4) / 3 * 16).astype(int)) == list(range(16))
    rates = np.log10(_adam(**{**strata, "search": "random"}).grid["learning_rate"])
    assert len(set(((rates + 4) / 3 * 16).astype(int))) < 16


def test_the_stored_config_round_trips_to_the_same_trials():
    cfg = parse({"tasks": TASKS, "optimizers": {"adam": {**SEARCH, "search_seed": 7}}})
    stored = json.loads(json.dumps(cfg.to_dict()))  # as meta.json holds it
    assert stored["optimizers"]["adam"] == {
        "optimizer": "adam", "search": "quasirandom", "trials": 16, "search_seed": 7,
        "learning_rate": {"loguniform": [1e-4, 1e-1]},
        "b1": {"one_minus_loguniform": [1e-3, 0.2]}, "b2": {"uniform": [0.9, 0.999]},
        "eps": 1e-7, "eps_root": 0.0}
    again = parse(stored)
    assert again == cfg and again.digest() == cfg.digest()
    assert again.optimizers[0].settings() == cfg.optimizers[0].settings()
    # a grid is stored as before: no search keys, so older sweeps keep their hash
    assert "search" not in parse({"tasks": TASKS, "optimizers": {"adam": {}}}
                                 ).to_dict()["optimizers"]["adam"]


def test_the_order_of_a_tables_keys_does_not_change_the_trials():
    def lion(*order):
        table = {"optax": "lion", "search": "quasirandom", "trials": 8,
                 "learning_rate": {"loguniform": [1e-4, 1e-2]}, "b1": {"uniform": [0.8, 0.95]}}
        table = {k: table[k] for k in ("optax", "search", "trials", *order)}
        return parse({"tasks": TASKS, "optimizers": {"lion": table}})

    a, b = lion("learning_rate", "b1"), lion("b1", "learning_rate")
    assert a.digest() == b.digest()
    assert dict(a.optimizers[0].grid) == dict(b.optimizers[0].grid)


def test_a_task_fixes_searched_hyperparameters_inside_the_searched_range():
    raw = {"tasks": [{"landscape": "rosenbrock", "grids": {"adam": {"learning_rate": 0.01}}},
                     {"landscape": "sphere",
                      "grids": {"adam": {"learning_rate": 0.01, "b1": 0.9, "b2": 0.99}}},
                     {"landscape": "himmelblau"}],
           "optimizers": {"adam": SEARCH}}
    cfg = parse(raw)
    blocks = {t.name: o for o, t in cfg.blocks()}
    assert set(blocks["rosenbrock-2d"].grid["learning_rate"]) == {0.01}
    assert len(blocks["rosenbrock-2d"].settings()) == 16  # b1 and b2 still searched
    assert blocks["sphere-2d"].settings() == [(0.01, 0.9, 0.99, 1e-7, 0.0)]  # nothing left
    assert blocks["himmelblau-2d"] == cfg.optimizers[0]
    assert parse(cfg.to_dict()) == cfg
    raw["tasks"][0]["grids"]["adam"]["learning_rate"] = 0.5
    with pytest.raises(ConfigError, match=r"tasks\[0\]\.grids\.adam\.learning_rate: found 0.5; "
                                          r"allowed a value in the searched range"):
        parse(raw)


BAD = [
    ({"learning_rate": {"loguniform": [1e-1, 1e-4]}},
     r"adam\.learning_rate\.loguniform: found \[0\.1, 0\.0001\]; allowed \[lo, hi\] with "
     r"bounds 0 < lo < hi"),
    ({"learning_rate": {"uniform": [0.1, 0.1]}}, r"adam\.learning_rate\.uniform: .* lo < hi"),
    ({"learning_rate": {"loguniform": [0, 1e-1]}}, r"adam\.learning_rate\.loguniform: found \[0, "),
    ({"b1": {"one_minus_loguniform": [1e-3, 1.0]}},
     r"adam\.b1\.one_minus_loguniform: .* 0 < lo < hi < 1"),
    ({"b1": {"one_minus_loguniform": [-0.1, 0.2]}}, r"adam\.b1\.one_minus_loguniform: "),
    ({"b1": {"uniform": [0.5, 1.0]}}, r"adam\.b1: found .*; allowed values in \[0, 1\)"),
    ({"trials": 0}, r"adam\.trials: found 0; allowed an integer in \[1, 100000\]"),
    ({"trials": 10**6}, r"adam\.trials: found 1000000"),
    ({"trials": None}, r"adam\.trials: found None"),
    ({"search": "bayesian"},
     r"adam\.search: found 'bayesian'; allowed one of grid, random, quasirandom"),
    ({"search": "grid"}, r"adam\.trials: found 16; allowed only in a search"),
    ({"search": None, "trials": None},
     r"adam\.learning_rate: found .*; allowed .*a distribution needs search = "),
    ({"learning_rate": [1e-3, 1e-2]},
     r"adam\.learning_rate: found \[0\.001, 0\.01\]; allowed a number or a distribution .* "
     r"in a quasirandom search; a list, logspace or linspace is a grid"),
    ({"learning_rate": {"logspace": [-4, -1, 4]}}, r"adam\.learning_rate: .* is a grid"),
    ({"learning_rate": {"normal": [0, 1]}},
     r"adam\.learning_rate\.normal: unknown key; allowed keys loguniform, "),
    ({"learning_rate": {"uniform": [0.1]}}, r"adam\.learning_rate\.uniform: found \[0\.1\]"),
    ({"learning_rate": 0.1, "b1": 0.9, "b2": 0.99},
     r"adam\.search: found 'quasirandom'; allowed a search of at least one distribution"),
    ({"search_seed": -1}, r"adam\.search_seed: found -1"),
]


@pytest.mark.parametrize(("change", "message"), BAD)
def test_a_bad_search_is_a_one_line_error_naming_the_field(change, message):
    table = {k: v for k, v in {**SEARCH, **change}.items() if v is not None}
    with pytest.raises(ConfigError, match=r"^config: optimizers\." + message) as error:
        parse({"tasks": TASKS, "optimizers": {"adam": table}})
    assert "\n" not in str(error.value)
