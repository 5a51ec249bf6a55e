"""How often would a run of the recovery suite meet its expected verdicts, and how does that move
with the number of seeds? This resamples the per-seed paired differences that runs of
benchmarks/recovery.py wrote (``--json``). Each draw picks whole seeds, with replacement: every
row's Δ of those seeds, as one run of the suite would give them. It then applies the suite's own
t-interval and verdicts (planted: ``ci_low > 0``; null: the interval covers 0).

    python benchmarks/recovery_power.py RUN1.json RUN2.json RUN3.json --seeds 6 8 10
    python benchmarks/recovery_power.py RUN*.json --seeds 6 10 --null-margin 0.02   # nulls by equivalence

``--null-margin M`` weighs another criterion for the null rows than the suite's: equivalence, the
whole interval inside ±M, so that a resolved cost smaller than M passes and an interval too wide to
say fails. The suite's own verdicts do not change.

It is a bootstrap over seeds already run. It says what those runs imply, not what new seeds will
do, and it treats the seeds of different runs (each with its own backbone) as exchangeable. With
a few dozen seeds its rates are rough; docs/models.md ("Recovery suite") uses them to show why
more seeds do not help a suite whose nulls carry small real effects. The runs' releases are
synthetic (aadb simulate, planted and null settings): a test instrument, not AADB.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))  # the sibling script, run or loaded by tests
import recovery  # the suite's interval, verdicts and data note

Row = tuple[str, str]  # (mechanism, setting)


class RunFileError(ValueError):
    """A run file that cannot be pooled; the message names the file and what is wrong."""


def _rows_of(path: Path) -> dict[Row, list[float]]:
    """One run file's per-seed Δ by row; every row must have the same number of seeds."""
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise RunFileError(f"{path}: not a readable JSON file ({err})") from None
    if isinstance(rows, dict):
        rows = rows.get("rows")
    if not isinstance(rows, list) or not rows:
        raise RunFileError(f"{path}: expected the list of rows that recovery.py --json writes")
    out: dict[Row, list[float]] = {}
    for i, row in enumerate(rows):
        try:
            key, deltas = (str(row["mechanism"]), str(row["setting"])), [float(d) for d in row["deltas"]]
        except (TypeError, KeyError, ValueError):
            raise RunFileError(f"{path}: row {i} lacks mechanism, setting or a list of numeric deltas") from None
        if key[1] not in ("planted", "null"):
            raise RunFileError(f"{path}: row {i} has setting {key[1]!r}; expected 'planted' or 'null'")
        out[key] = deltas
    if len({len(d) for d in out.values()}) != 1:
        raise RunFileError(f"{path}: its rows have different numbers of seeds; runs of --only subsets cannot be pooled")
    return out


def pooled_deltas(paths: list[Path]) -> dict[Row, np.ndarray]:
    """Every row's per-seed Δ over all runs, in the same seed order for every row (so that a draw of
    seed positions takes one seed's Δ from every row). The runs must have the same rows."""
    runs = [_rows_of(p) for p in paths]
    rows = list(runs[0])
    for path, run in zip(paths[1:], runs[1:]):
        if set(run) != set(rows):
            missing = sorted(set(rows) ^ set(run))
            raise RunFileError(f"{path}: its rows differ from {paths[0]}'s ({', '.join('/'.join(r) for r in missing)})")
    return {r: np.concatenate([run[r] for run in runs]) for r in rows}


def expected(row: Row, lo: float, hi: float, null_margin: float | None = None) -> bool:
    """Whether a row's interval gets its expected verdict: the suite's (planted ``recovered``, null
    ``null ok``), or with ``null_margin`` M a null judged by equivalence instead, its whole
    interval inside [−M, +M] (a small real effect then passes, a large or unresolved one fails)."""
    if row[1] == "null" and null_margin is not None:
        return -null_margin <= lo and hi <= null_margin
    got = recovery.verdict({"setting": row[1], "ci_low": lo, "ci_high": hi})
    return got == ("recovered" if row[1] == "planted" else "null ok")


def verdict_rates(deltas: dict[Row, np.ndarray], n_seeds: int, draws: int = 4000,
                  seed: int = 0, null_margin: float | None = None) -> tuple[dict[Row, float], float]:
    """Share of ``draws`` resampled runs of ``n_seeds`` seeds in which each row gets its expected
    verdict (:func:`expected`), and share in which every row does."""
    if n_seeds < 2:
        raise ValueError("a t-interval needs at least 2 seeds")
    pool = len(next(iter(deltas.values())))
    rng = np.random.default_rng(seed)
    hits = dict.fromkeys(deltas, 0)
    every = 0
    for _ in range(draws):
        pick = rng.integers(0, pool, n_seeds)
        good = 0
        for row, d in deltas.items():
            _, lo, hi = recovery.t_interval(list(d[pick]))
            if expected(row, lo, hi, null_margin):
                hits[row] += 1
                good += 1
        every += good == len(deltas)
    return {r: h / draws for r, h in hits.items()}, every / draws


def table(deltas: dict[Row, np.ndarray], seeds: list[int], draws: int, seed: int,
          null_margin: float | None = None) -> str:
    """The rates as a Markdown table: one column per number of seeds, and the all-rows line."""
    results = {n: verdict_rates(deltas, n, draws, seed, null_margin) for n in seeds}
    lines = ["| mechanism | setting | " + " | ".join(f"{n} seeds" for n in seeds) + " |",
             "|---|---|" + "---|" * len(seeds)]
    for row in deltas:
        lines.append(f"| {row[0]} | {row[1]} | " + " | ".join(f"{results[n][0][row]:.2f}" for n in seeds) + " |")
    lines.append("| **every row** | | " + " | ".join(f"**{results[n][1]:.2f}**" for n in seeds) + " |")
    pool = len(next(iter(deltas.values())))
    judged = ("" if null_margin is None else
              f" Null rows judged by equivalence: the 95% interval inside ±{null_margin:g} (not the suite's verdict).")
    note = (f"Share of {draws} resampled runs (of {pool} seeds run) with the expected verdict.{judged} "
            f"Data: {recovery.DATA_NOTE}.")
    return "\n".join([*lines, "", note])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", type=Path, help="JSON files written by recovery.py --json (the same rows)")
    ap.add_argument("--seeds", nargs="+", type=int, default=[6], help="seeds per resampled run (default 6)")
    ap.add_argument("--draws", type=int, default=4000, help="resampled runs per number of seeds (default 4000)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the resampling")
    ap.add_argument("--null-margin", type=float, default=None, metavar="M",
                    help="judge null rows by equivalence instead of the suite's verdict: ok when the whole 95%% "
                         "interval lies inside [-M, +M] (a criterion to weigh, not the suite's)")
    args = ap.parse_args(argv)
    if min(args.seeds) < 2 or args.draws < 1:
        ap.error("--seeds must be at least 2 and --draws at least 1")
    if args.null_margin is not None and not args.null_margin > 0:
        ap.error("--null-margin must be a positive number")
    try:
        deltas = pooled_deltas(args.runs)
    except RunFileError as err:
        ap.error(str(err))
    print(table(deltas, args.seeds, args.draws, args.seed, args.null_margin))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
