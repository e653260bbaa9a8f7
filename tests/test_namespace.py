"""optbench installs its surfaces as ``optbench.landscapes`` and no top-level ``landscapes``
(an unrelated PyPI project has that name); every submodule imports in a fresh interpreter,
outside the checkout, so the installed package is what is tested."""

import os
import subprocess
import sys
import tomllib
from importlib.metadata import files, packages_distributions
from pathlib import Path

from optbench import landscapes

SUBMODULES = ("", ".base", ".convex", ".valleys", ".multimodal", ".saddles")

CHECK = """
import importlib, sys
module = importlib.import_module(sys.argv[1])
from optbench import landscapes
from optbench.landscapes import base
assert base.get is landscapes.get, "a second copy of the registry"
assert len(landscapes.names()) == {count}, landscapes.names()
assert "landscapes" not in sys.modules, "a top-level landscapes was imported"
print(module.__name__)
"""


def test_every_submodule_imports_in_a_fresh_interpreter_outside_the_checkout():
    code = CHECK.format(count=len(landscapes.names()))
    processes = [subprocess.Popen([sys.executable, "-c", code, f"optbench.landscapes{sub}"],
                                  cwd="/", stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True) for sub in SUBMODULES]
    for sub, process in zip(SUBMODULES, processes, strict=True):
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, (sub, err[-2000:])
        assert out.strip() == f"optbench.landscapes{sub}"


def test_no_top_level_landscapes_package_is_installed():
    assert "optbench" not in packages_distributions().get("landscapes", [])
    assert not any(str(f).startswith("landscapes/") for f in files("optbench") or ())
    assert landscapes.__name__ == "optbench.landscapes"


def test_pyproject_lists_every_package_of_the_checkout():
    root = Path(__file__).resolve().parents[1]
    listed = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]
    found = {".".join(p.parent.relative_to(root).parts)
             for p in (root / "optbench").rglob("__init__.py")}
    data = {"optbench.examples", "optbench.gallery.cases"}  # folders of shipped TOML files
    assert found | data | {"optbench.landscapes"} == set(listed["packages"])
    assert (root / listed["package-dir"]["optbench.landscapes"] / "__init__.py").is_file()


def test_the_source_checkout_imports_as_it_stands():
    """``PYTHONPATH=.`` from the repository root (the README's recipe for benchmarking your
    own optimizer): the checkout's ``optbench/`` comes first and must import whole."""
    root = Path(__file__).resolve().parents[1]
    code = ("import optbench, optbench.landscapes.valleys as v; from optbench import cli; "
            "print(optbench.__file__, len(optbench.landscapes.names()), v.__name__)")
    done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True,
                          text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(root)})
    assert done.returncode == 0, done.stderr[-2000:]
    path, count, name = done.stdout.split()
    assert Path(path).parent == root / "optbench"
    assert int(count) == len(landscapes.names()) and name == "optbench.landscapes.valleys"
