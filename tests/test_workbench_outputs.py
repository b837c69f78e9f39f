"""workbench.outputs: only the marker makes a folder an earlier output; a user's files stay the user's."""
from __future__ import annotations

import json
import shutil

import pytest


def test_overwrite_into_a_users_folder_keeps_files_it_does_not_write(tmp_path):
    from workbench.outputs import MARKER, OutputDir

    from workbench.errors import WorkbenchError

    folder = tmp_path / "paper"
    folder.mkdir()
    (folder / "results.json").write_text("mine")
    (folder / "notes.txt").write_text("mine too")
    with pytest.raises(WorkbenchError, match="--overwrite"):
        OutputDir(folder, "experiment")
    out = OutputDir(folder, "experiment", overwrite=True)
    with out.staging() as st:
        st.write_text("report.html", "<p>new</p>")
    assert (folder / "results.json").read_text() == "mine" and (folder / "notes.txt").read_text() == "mine too"
    marker = json.loads((folder / MARKER).read_text())
    assert list(marker["files"]) == ["report.html"]
    again = OutputDir(folder, "experiment")  # an earlier output now, by its marker
    with pytest.raises(WorkbenchError, match="results.json"):
        again.check_names(["results.json"])  # still the user's
    shutil.rmtree(folder)
