"""aadb_toolkit: curate, publish, analyse and benchmark AADB, the Aesthetics and Attributes Database
(Kong et al., ECCV 2016), a rated-image data set that keeps anonymized rater identities.

Every stage takes loaded data, :class:`~aadb_toolkit.data.AADBData` (from
:func:`aadb_toolkit.sources.load`); see docs/architecture.md. Stages (one module each): :mod:`~aadb_toolkit.simulate` (synthetic release, a test instrument),
:mod:`~aadb_toolkit.curate`, :mod:`~aadb_toolkit.hub` (publish / load), :mod:`~aadb_toolkit.consistency`,
:mod:`~aadb_toolkit.models`, :mod:`~aadb_toolkit.protocols`, :mod:`~aadb_toolkit.leaderboard`.
"""

__version__ = "0.1.0"
