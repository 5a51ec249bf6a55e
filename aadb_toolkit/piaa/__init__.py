"""Personalized image aesthetics (PIAA) on AADB's rater ids: the k-shot episodes (defined once,
:mod:`.episodes`), the ``piaa`` protocol (:mod:`aadb_toolkit.protocols.piaa_protocol`) and a
reference personalizer (:mod:`.personalize`)."""

from __future__ import annotations

from .episodes import (DEFAULT_K, DEFAULT_REPEATS, DEFAULT_SEED, MIN_QUERIES, make_episodes, qualifying_raters,
                       read_episodes, summarize, write_episodes)

__all__ = ["DEFAULT_K", "DEFAULT_REPEATS", "DEFAULT_SEED", "MIN_QUERIES", "make_episodes", "qualifying_raters",
           "read_episodes", "summarize", "write_episodes"]
