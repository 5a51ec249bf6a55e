"""``aadb report <kind>``: write a report; the kinds and their options are declared as data in
:data:`aadb_toolkit.reports.REPORTS` and each kind's ``OPTIONS``."""

from __future__ import annotations

import argparse
import importlib

from .._numbers import check_seed
from ._options import add_no_progress, alias, examples, progress

#: Shown under ``--help``.
EXAMPLES = examples("aadb report human-consistency --data curated --out report",
                    "aadb report human-consistency --data curated --out report --submission predictions.csv")


def configure(parser: argparse.ArgumentParser) -> None:
    """One sub-command per declared report kind, with the shared ``--data``/``--out`` options."""
    from ..reports import REPORTS

    kinds = parser.add_subparsers(dest="kind", metavar="KIND", required=True,
                                  help="one of: " + ", ".join(REPORTS))
    for name, kind in REPORTS.items():
        sub = kinds.add_parser(name, help=kind.help, description=kind.help, epilog=EXAMPLES,
                               formatter_class=argparse.RawDescriptionHelpFormatter)
        sub.add_argument("--data", required=True, help="curated folder, published folder or Hub repo id")
        sub.add_argument("--out", required=True, help="folder for the report and its results")
        for opt in importlib.import_module(kind.module).OPTIONS:
            shown = "" if opt.action or opt.default is None else " (default %(default)s)"
            kwargs = {"dest": opt.dest, "help": opt.help + shown, "default": opt.default}
            if opt.action:
                kwargs["action"] = opt.action
            else:
                kwargs["type"] = opt.type
                if opt.choices:
                    kwargs["choices"] = opt.choices
                if opt.nargs:
                    kwargs["nargs"] = opt.nargs
            sub.add_argument(opt.flag, **kwargs)
            for old in opt.aliases:
                alias(sub, old, opt.dest, **{k: v for k, v in kwargs.items() if k not in ("dest", "help", "default")})
        add_no_progress(sub)


def run(args: argparse.Namespace) -> int:
    """Write the report and print where it is."""
    from .. import reports, sources

    module = reports.get(args.kind)
    options = {opt.dest: getattr(args, opt.dest) for opt in module.OPTIONS}
    if "thresholds" in options and options["thresholds"] is not None:
        options["thresholds"] = tuple(options["thresholds"])
    for opt in module.OPTIONS:
        if opt.dest == "seed":  # every command's seed range, before the data is loaded
            check_seed(options["seed"], opt.flag)
    paths = module.write_report(sources.load(args.data), args.out, **options, show_progress=progress(args))
    print(f"{args.kind} report -> {paths['html']} (and {paths['markdown'].name})")
    return 0
