"""`workbench experiment` (workbench.commands.experiment) and `export`: bad inputs are one line each."""
from __future__ import annotations


def test_cli_errors_are_one_line(tmp_path, capsys):
    from workbench.cli import main

    assert main(["export", str(tmp_path / "nope"), "--out", str(tmp_path / "o")]) == 2
    assert main(["export", str(tmp_path), "--out", str(tmp_path / "o"), "--what", "speed"]) == 2
    assert main(["experiment", "paired", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(line.startswith("workbench ") and "error:" in line for line in err)
    assert "Traceback" not in "".join(err)
