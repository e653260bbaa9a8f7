"""Package layout only (everything else is in pyproject.toml): the repository's top-level
folder ``landscapes/`` is installed as ``optbench.landscapes``, so optbench installs no
top-level ``landscapes`` package (an unrelated PyPI project has that name)."""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["optbench", "optbench.*"]), "optbench.landscapes"],
    package_dir={"optbench.landscapes": "landscapes"},
)
