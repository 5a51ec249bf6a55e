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
