"""``aadb reproduce``: train, score and tabulate one of the paper's tables from its recipe under
``baselines/tables/`` (see docs/models.md, "Reproducing a table")."""

from __future__ import annotations

import argparse
import importlib
from ._options import add_no_progress, examples, progress

#: data role of a recipe row → (command-line option, "module:loader", help). A new source is a new
#: row here (its option is declared from it); recipes name the role in ``rows.data``.
SOURCE_OPTIONS: dict[str, tuple[str, str, str]] = {
    "aadb": ("--data", "aadb_toolkit.sources:load", "AADB: curated folder, published folder, or Hub repo id"),
    "ava": ("--ava", "aadb_toolkit.sources:load", "AVA folder (AVA.txt, lists, images/; docs/ava.md) for tables 3 and 7"),
}


#: Shown under ``--help``.
EXAMPLES = examples(
    'aadb reproduce --table table2 --data curated --out repro_table2',
    'aadb reproduce --table table3 --ava ava_folder --out repro_table3 --no-progress',
)


def configure(parser: argparse.ArgumentParser) -> None:
    """Declare the options of ``aadb reproduce``."""
    parser.add_argument("--table", required=True,
                        help="table recipe name under baselines/tables/ (table2, table4, table5, fig5, …) or a TOML path")
    for option, _, text in SOURCE_OPTIONS.values():
        parser.add_argument(option, help=text)
    parser.add_argument("--out", required=True, help="reproduction folder (runs/, the table's .md/.csv/.png)")
    parser.add_argument("--budget", choices=["quick", "paper"], default="quick",
                        help="quick: CPU minutes on small crops (default); paper: the full GPU recipe of §4.5")
    parser.add_argument("--init-weights", help="local standard-keyed AlexNet state dict (ImageNet) for every row")
    parser.add_argument("--device", help="cpu, cuda, cuda:N (default: cuda when available, else cpu)")
    parser.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples for CIs and paired tests")
    add_no_progress(parser)


def _load(role: str, value: str):
    module, _, attr = SOURCE_OPTIONS[role][1].partition(":")
    return getattr(importlib.import_module(module), attr)(value)


def run(args: argparse.Namespace) -> int:
    """Reproduce the table and print where it went."""
    from ..errors import InputError
    from ..reproduce import load_recipe, reproduce

    recipe = load_recipe(args.table)
    sources = {}
    for role in sorted(set().union(*(r.roles for r in recipe.rows))):
        option = SOURCE_OPTIONS.get(role, (f"--{role}", ""))[0]
        value = getattr(args, option.lstrip("-").replace("-", "_"), None)
        if role not in SOURCE_OPTIONS or value is None:
            raise InputError(f"table {recipe.name!r} needs {option}", field=option)
        sources[role] = _load(role, value)
    res = reproduce(recipe, sources, args.out, budget=args.budget, init_weights=args.init_weights,
                    device=args.device, n_boot=args.n_boot, progress=progress(args))
    mark = " (SYNTHETIC data, not AADB)" if res.synthetic else ""
    from .. import paper
    from .._format import format_metric

    for r in res.records:
        ours = format_metric(r["metric"], r["ours"])
        ref = "–" if r["paper"] is None else paper.as_reported(r["paper"])
        print(f"{r['label']}: ours {ours}, paper {ref}")
    print(f"wrote {', '.join(str(f) for f in res.files)}{mark}")
    return 0
