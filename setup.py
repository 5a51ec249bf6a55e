"""Build script. Everything is declared in pyproject.toml except one mapping that pyproject cannot
express next to package discovery: the top-level ``baselines/`` folder (model configs and table
recipes) ships inside the package as ``aadb_toolkit.baselines``, so a plain ``pip install`` can
train (see docs/models.md, "Baseline configs")."""

from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["aadb_toolkit*"]) + ["aadb_toolkit.baselines"],
    package_dir={"aadb_toolkit.baselines": "baselines"},
)
