"""Shared by the reproduce tests: a table recipe cut down to a tiny training budget."""

import dataclasses

from aadb_toolkit.reproduce import load_recipe


def tiny_recipe(name, budget, rows=None):
    """Recipe ``name`` with both budgets replaced by ``budget`` (a dict of config overrides) and,
    when ``rows`` is given, only the rows with those labels."""
    r = dataclasses.replace(load_recipe(name), budgets={"quick": dict(budget), "paper": dict(budget)})
    if rows is not None:
        r = dataclasses.replace(r, rows=tuple(x for x in r.rows if x.label in rows))
    return r
