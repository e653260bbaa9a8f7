"""Fuzzing the config: mutations of the shipped examples (types, ranges, missing and extra
keys, Unicode, broken TOML and bytes) either give a valid sweep or an OptbenchError whose
message is one line, the CLI's ``optbench: error:`` with exit code 2; never another
exception (which the CLI would print as a traceback)."""

import copy
import tempfile
import tomllib
from importlib import resources
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from optbench.config import example_names, load, parse
from optbench.errors import OptbenchError
from optbench.store import dumps
from optbench.tasks import registry

SOURCES = {name: (resources.files("optbench") / "examples" / f"{name}.toml").read_text()
           for name in example_names()}
EXAMPLES = {name: tomllib.loads(text) for name, text in SOURCES.items()}

SCALARS = (st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats()
           | st.text(max_size=12) | st.sampled_from(["adam", "sphere", "random", "", "__"]))
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=6)
FUZZ = settings(max_examples=300, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


def _paths(tree, prefix=()):
    """Every path into the nested dicts and lists of a config, the root included."""
    yield prefix
    items = tree.items() if isinstance(tree, dict) else enumerate(tree) \
        if isinstance(tree, list) else ()
    for key, value in items:
        yield from _paths(value, (*prefix, key))


def _mutate(data, raw):
    """One mutation at a drawn place: replace a value, delete, add or rename a key."""
    path = data.draw(st.sampled_from(list(_paths(raw))))
    parent = raw
    for key in path[:-1]:
        parent = parent[key]
    op = data.draw(st.sampled_from(["replace", "delete", "add", "rename"]))
    if not path:  # the root: add a key
        raw[data.draw(st.text(max_size=10))] = data.draw(VALUES)
    elif op == "replace":
        parent[path[-1]] = data.draw(VALUES)
    elif op == "delete":
        del parent[path[-1]]
    elif op == "add" and isinstance(parent[path[-1]], dict):
        parent[path[-1]][data.draw(st.text(max_size=10))] = data.draw(VALUES)
    elif op == "rename" and isinstance(parent, dict):
        parent[data.draw(st.text(max_size=10))] = parent.pop(path[-1])
    else:
        parent[path[-1]] = data.draw(VALUES)


def _accepted_or_one_line(make) -> None:
    try:
        config = make()
    except OptbenchError as error:
        assert "\n" not in str(error) and str(error)
        return
    # an accepted config builds its tasks and survives the store's round trip
    registry.build(config.tasks)
    assert parse(config.to_dict()).digest() == config.digest()
    dumps(config.to_dict())  # plain, finite data: what meta.json and the manifest hold


@FUZZ
@given(data=st.data(), name=st.sampled_from(sorted(EXAMPLES)))
def test_mutated_configs_are_valid_or_rejected_in_one_line(data, name):
    raw = copy.deepcopy(EXAMPLES[name])
    for _ in range(data.draw(st.integers(1, 3))):
        _mutate(data, raw)
    _accepted_or_one_line(lambda: parse(raw))


@settings(max_examples=100, deadline=None)
@given(name=st.sampled_from(sorted(SOURCES)), position=st.floats(0, 1),
       cut=st.integers(0, 20), insert=st.binary(max_size=8) | st.text(max_size=8))
def test_mangled_files_are_valid_or_rejected_in_one_line(name, position, cut, insert):
    source = SOURCES[name].encode()
    at = int(position * len(source))
    payload = insert if isinstance(insert, bytes) else insert.encode()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"{name}.toml"
        path.write_bytes(source[:at] + payload + source[at + cut:])
        _accepted_or_one_line(lambda: load(path))
