"""The leaderboard: scored results collected in an embedded SQLite database and rendered as
Markdown, HTML and CSV boards per protocol.

- :mod:`.store`: the database (schema marker, concurrency, idempotent :func:`record`, checked reads);
- :mod:`.ranking`: results ranked by the protocol's main metric within ranking groups (same data
  fingerprint, protocol version and provenance), with Steiger's Z against the row above and the leader;
- :mod:`.render`: boards built from each protocol's declaration (main metric, shown columns, the
  paper's reported rows) on the reports' document model, and an index page.
"""

from __future__ import annotations

from .ranking import RankingGroup, ranked_tables, ranking_groups
from .render import ALPHA, board_document, board_rows, format_markdown, known_protocols, render, short_hash
from .store import (APPLICATION_ID, BUSY_TIMEOUT_S, MAX_NAME_LENGTH, SCHEMA_VERSION, RecordOutcome, check_database,
                    check_name, connect, entries, iter_results, record, recorded_predictions)

__all__ = [
    "ALPHA", "APPLICATION_ID", "BUSY_TIMEOUT_S", "MAX_NAME_LENGTH", "SCHEMA_VERSION", "RankingGroup", "RecordOutcome",
    "board_document", "board_rows", "check_database", "check_name", "connect", "entries", "format_markdown",
    "iter_results", "known_protocols", "ranked_tables", "ranking_groups", "record", "recorded_predictions", "render",
    "short_hash",
]
