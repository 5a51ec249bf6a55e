"""Ranking recorded results: each protocol's results are ranked by its main metric only within a
ranking group — the same data fingerprint, the same protocol version and the same provenance
(synthetic results never share a group with results on real data) — with Steiger's Z on the stored
predictions against the row above and the leader where the main metric is Spearman's ρ."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..protocols import PROTOCOLS
from ..protocols.significance import compare
from . import store

#: Fewer stored items than this give no significance mark.
MIN_ITEMS_FOR_STEIGER = 4


@dataclass(frozen=True)
class RankingGroup:
    """One ranking group of a protocol: its key and label, and its results ranked (a ``rank``
    column, 1 = best; ``p_vs_above`` and ``p_vs_leader`` where defined)."""

    fingerprint: str
    protocol_version: str
    synthetic: bool
    label: str
    table: pd.DataFrame


def ranking_groups(db: str | os.PathLike[str]) -> dict[str, list[RankingGroup]]:
    """protocol → its ranking groups, in the order their first result was recorded."""
    df = store.entries(db)
    out: dict[str, list[RankingGroup]] = {}
    con = store.connect(db, write=False)
    try:
        for protocol in sorted(df["protocol"].unique()):
            sub = df[df["protocol"] == protocol]
            keys = sub.sort_values("id")[["fingerprint", "protocol_version", "synthetic"]].drop_duplicates()
            out[protocol] = [_rank_group(con, Path(db), protocol, sub, *key) for key in keys.itertuples(index=False)]
    finally:
        con.close()
    return out


def _rank_group(con, db: Path, protocol: str, sub: pd.DataFrame, fp: str, version: str,
                synthetic: bool) -> RankingGroup:
    decl = PROTOCOLS.get(protocol)
    higher = decl.higher_is_better if decl else True
    g = sub[(sub["fingerprint"] == fp) & (sub["protocol_version"] == version) & (sub["synthetic"] == synthetic)]
    key = g["main_value"].astype(float) * (-1 if higher else 1)
    g = g.assign(_key=key.fillna(np.inf)).sort_values(["_key", "id"]).drop(columns="_key")
    g["rank"] = np.arange(1, len(g) + 1)
    g["p_vs_above"], g["p_vs_leader"] = np.nan, np.nan
    if len(g) > 1 and g["main_metric"].iloc[0] == "spearman":
        arrays = [store.paired_arrays(con, db, int(i), fp) for i in g["id"]]
        g["p_vs_above"] = [np.nan] + [_steiger_p(arrays[k - 1], arrays[k]) for k in range(1, len(g))]
        g["p_vs_leader"] = [np.nan] + [_steiger_p(arrays[0], arrays[k]) for k in range(1, len(g))]
    label = fp
    if decl is not None and version != decl.version:  # an older protocol version: its own group, labelled
        label += f" (protocol v{version})"
    if synthetic:
        label += " (synthetic data)"
    return RankingGroup(fp, version, bool(synthetic), label, g.reset_index(drop=True))


def ranked_tables(db: str | os.PathLike[str]) -> dict[str, list[tuple[str, pd.DataFrame]]]:
    """protocol → [(group label, ranked table)]: :func:`ranking_groups` as (label, table) pairs."""
    return {p: [(g.label, g.table) for g in groups] for p, groups in ranking_groups(db).items()}


def _steiger_p(a: tuple[np.ndarray, np.ndarray] | None, b: tuple[np.ndarray, np.ndarray] | None) -> float:
    if a is None or b is None or a[0].shape != b[0].shape or a[0].size < MIN_ITEMS_FOR_STEIGER:
        return float("nan")
    return compare(a[0], a[1], b[1]).steiger_p
