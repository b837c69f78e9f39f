"""workbench.cli: every command registered; errors of any kind become one line and an exit code."""
from __future__ import annotations

import errno

import pytest

import workbench.commands.check as check_command
from workbench.cli import COMMAND_MODULES, build_parser, main
from workbench.errors import WorkbenchError


def test_every_command_module_is_a_subcommand():
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    assert set(sub.choices) == set(COMMAND_MODULES)


@pytest.mark.parametrize("exc,code,line", [
    (WorkbenchError("the store is odd: fix it"), 2, "workbench check: error: the store is odd: fix it"),
    (OSError(errno.ENOSPC, "No space left on device", "s/x"), 2,
     "workbench check: error: s/x: No space left on device (the disk is full: free some space or write to another disk)"),
    (MemoryError(), 2, "workbench check: error: out of memory: use smaller settings"),
    (KeyboardInterrupt(), 130, "workbench check: interrupted"),
])
def test_errors_become_one_line_and_an_exit_code(monkeypatch, capsys, exc, code, line):
    def fail(args):
        raise exc
    monkeypatch.setattr(check_command, "run", fail)
    assert main(["check", "somewhere"]) == code
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(line), err


def test_unknown_arguments_are_one_line(capsys):
    assert main(["check", "s", "--bogus"]) == 2
    assert capsys.readouterr().err.strip() == ("workbench check: error: unrecognized arguments: --bogus "
                                               "(see workbench check --help)")
