"""analysis.inforeport: the report is staged, so a failure midway leaves the earlier report whole."""
from __future__ import annotations

from test_analysis_information import _make, _run


def test_information_report_is_staged_a_failure_leaves_the_earlier_report(tmp_path, monkeypatch, capsys):
    import analysis.inforeport as inforeport

    data, store = _make(tmp_path)
    out = tmp_path / "out"
    assert _run(data, store, out, "--min-train", "5") == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert ".workbench-output.json" in before  # the folder is marked as this command's output

    real = inforeport.information_markdown

    def fail_midway(res):  # results.json and the figures are already written when tables.md fails
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(inforeport, "information_markdown", fail_midway)
    assert _run(data, store, out, "--min-train", "5", "--seed", "1") == 2  # other numbers: a partial write shows
    monkeypatch.setattr(inforeport, "information_markdown", real)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.replace("\r", "\n").strip().splitlines()[-1].startswith("workbench experiment: error: ")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # nothing half-written
