import subprocess
import sys

from aadb_toolkit import __version__
from aadb_toolkit.cli import COMMANDS, main


def test_unknown_command_suggests_close_names(capsys):
    assert main(["curat"]) == 2
    assert "did you mean curate" in capsys.readouterr().err


def test_no_command_prints_help(capsys):
    assert main([]) == 2
    out = capsys.readouterr().out
    for name in COMMANDS:
        assert name in out


def test_every_registered_command_has_a_module_with_configure_and_run():
    import importlib

    for name, (module, _help) in COMMANDS.items():
        mod = importlib.import_module(module)
        assert callable(mod.configure) and callable(mod.run), name


def test_python_dash_m_entry_point():
    out = subprocess.run([sys.executable, "-m", "aadb_toolkit", "--version"], capture_output=True, text=True,
                         check=True)
    assert __version__ in out.stdout


def _parsers_with_epilogs():
    """(command, parser) for every parser ``aadb`` builds: the top one, each command's (as ``main``
    builds it, its ``EXAMPLES`` as epilog) and the sub-commands' (``report human-consistency``)."""
    import argparse
    import importlib

    from aadb_toolkit.cli import _top_parser

    found = [(None, _top_parser())]
    for name, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(module_name)
        parser = argparse.ArgumentParser(prog=f"aadb {name}", description=help_text,
                                         epilog=getattr(module, "EXAMPLES", None))
        module.configure(parser)
        stack = [parser]
        while stack:
            p = stack.pop()
            found.append((name, p))
            stack += [s for a in p._actions if isinstance(a, argparse._SubParsersAction) for s in a.choices.values()]
    return found


def _example_lines(epilog: str | None) -> list[str]:
    lines = (epilog or "").split("examples:\n", 1)[1:]
    return [line.strip() for line in "".join(lines).splitlines() if line.strip().startswith("aadb ")]


def test_every_help_example_parses(capsys):
    """Every example line under any ``--help`` (the EXAMPLES epilogs) is accepted by the command's
    own parser: parsing only, no work (``aadb consistency --help`` showed ``--method mean``, not a
    method)."""
    import shlex

    from aadb_toolkit.cli import _top_parser

    parsers = _parsers_with_epilogs()
    commands = {name: p for name, p in parsers if name is not None and p.prog == f"aadb {name}"}
    checked = 0
    for _, parser in parsers:
        for line in _example_lines(parser.epilog):
            argv = shlex.split(line, comments=True)[1:]
            top = _top_parser().parse_args(argv[:1])
            try:
                commands[top.command].parse_args(argv[1:])
            except SystemExit as exc:  # argparse's error (2) or --help (0)
                assert exc.code == 0, f"{line!r}: {capsys.readouterr().err.strip()}"
            checked += 1
    assert checked >= 2 * len(COMMANDS)  # the examples were really found
