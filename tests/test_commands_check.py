"""`workbench check` (workbench.commands.check): an intact store says so; a missing one is one line."""
from __future__ import annotations

from cache.store import CubeStore
from workbench.cli import main

from test_cache_store import synthetic_cube


def test_check_reports_an_intact_store_and_refuses_a_missing_one(tmp_path, capsys):
    st = CubeStore(tmp_path / "st")
    st.put(synthetic_cube(1, name="a"))
    st.put(synthetic_cube(2, name="b"))
    assert main(["check", str(tmp_path / "st")]) == 0
    assert "2 cubes in 2 groups verified: all intact" in capsys.readouterr().err
    assert main(["check", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("workbench check: error: ")
