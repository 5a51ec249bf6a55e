"""``aadb baselines``: list the shipped model configs with the paper rows they reproduce and the
pretrained weights each expects (read from each config's ``paper_table``/``paper_row`` and
``[model] arch``/``weights``, so a new config file appears here by itself), then where a user gets
the weights of each backbone family used."""

from __future__ import annotations

import argparse
from ._options import examples


#: Shown under ``--help``.
EXAMPLES = examples(
    'aadb baselines',
    'aadb baselines --paths',
)


def configure(parser: argparse.ArgumentParser) -> None:
    """Declare the options of ``aadb baselines``."""
    parser.add_argument("--paths", action="store_true", help="also print each config's file path")


def _paper_number(table: str, row: str) -> str:
    from .. import paper

    value = getattr(paper, table, {}).get(row) if table else None
    if isinstance(value, tuple):
        return " / ".join(f"{v:g}" for v in value if v is not None)
    return "" if value is None or isinstance(value, dict) else f"{value:.4f}"


def run(args: argparse.Namespace) -> int:
    """Print one line per baseline: name, paper table and row, the paper's number, the weights it
    expects, description; then where to get each family's weights."""
    from ..models import BACKBONES, baseline_config, baseline_names, baselines_dir

    rows, families = [], {}
    for name in baseline_names():
        cfg = baseline_config(name)
        table = cfg.paper_table.removeprefix("TABLE").split("_")[0] if cfg.paper_table else ""
        fam = BACKBONES[cfg.model.arch]
        families[fam.name] = fam
        weights = cfg.model.weights or ("ImageNet AlexNet" if fam.name == "alexnet" else fam.name)
        rows.append((name, f"Table {table}" if table else "-", cfg.paper_row or "-",
                     _paper_number(cfg.paper_table, cfg.paper_row) or "-", weights, cfg.description))
    heads = ("config", "paper", "row", "paper value", "weights (--init-weights)")
    widths = [max(len(r[i]) for r in rows + [(*heads, "")]) for i in range(5)]
    print("  ".join(h.ljust(w) for h, w in zip(heads, widths)) + "  description")
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)) + f"  {row[5]}")
    print("\nwhere to get the weights (nothing is downloaded unless --init-weights is a Hub id and you are online):")
    for fam in families.values():
        print(f"  {fam.name} ({'a state-dict file' if fam.weights_kind == 'file' else 'a save_pretrained folder'}): "
              f"{fam.where}")
    folder = baselines_dir()
    if args.paths:
        for name in baseline_names():
            print(folder / f"{name}.toml")
    print(f"\n{len(rows)} configs in {folder}; train one with `aadb train --config NAME` (docs/models.md)")
    return 0
