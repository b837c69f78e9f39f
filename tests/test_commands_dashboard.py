"""`workbench dashboard` (workbench.commands.dashboard): refusals before anything is served."""
from __future__ import annotations


def test_dashboard_command_refuses_remote_binding_without_the_flag(tmp_path, capsys):
    from workbench.cli import main

    assert main(["dashboard", "--store", str(tmp_path / "s"), "--address", "0.0.0.0"]) == 2
    err = capsys.readouterr().err
    assert "--allow-remote" in err and "Traceback" not in err
    assert main(["dashboard", "--store", str(tmp_path / "s"), "--dataset", str(tmp_path / "nope")]) == 2
    assert "no such data set folder" in capsys.readouterr().err
