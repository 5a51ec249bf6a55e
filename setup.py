"""Build script. Everything is declared in pyproject.toml except one mapping that pyproject cannot
express next to package discovery: the top-level ``baselines/`` folder (model configs and table
recipes) ships inside the package as ``aadb_toolkit.baselines``, so a plain ``pip install`` can
train (see docs/models.md, "Baseline configs"); likewise the top-level ``docs/`` ships as
``aadb_toolkit.docs``, so that the help texts' ``docs/*.md`` can be read after a plain install."""

from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["aadb_toolkit*"]) + ["aadb_toolkit.baselines", "aadb_toolkit.docs"],
    package_dir={"aadb_toolkit.baselines": "baselines", "aadb_toolkit.docs": "docs"},
)
