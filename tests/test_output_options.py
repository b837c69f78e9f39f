"""workbench.outputs.OutputOptions: a command's output flags parsed once (commands.common.output_from) and
opened under the outputs' rules (a foreign folder or file refused unless --overwrite, the flag named)."""
from __future__ import annotations

import argparse
import dataclasses

import pytest

from workbench.commands.common import output_from
from workbench.errors import WorkbenchError
from workbench.outputs import OutputDir, OutputFile, OutputOptions


def test_output_from_parses_the_flags_once():
    args = argparse.Namespace(out=None, overwrite=True, export=None, plot="")
    assert output_from(args) is None  # no flag, no default: no output (train without --export)
    assert output_from(args, "edit-a-removal") == OutputOptions("edit-a-removal", overwrite=True)
    assert output_from(args, "p.html", dest="plot", flag="--plot") == OutputOptions("p.html", True, "--plot")
    args = argparse.Namespace(out="", overwrite=False)
    assert output_from(args) == OutputOptions("")  # an empty flag without a default stays empty ...
    with pytest.raises(WorkbenchError, match="--out is empty"):  # ... and is refused in one line
        output_from(args).folder("export")
    with pytest.raises(dataclasses.FrozenInstanceError):
        OutputOptions("o").overwrite = True


def test_folder_and_file_keep_the_rules_and_name_the_flag(tmp_path):
    (tmp_path / "u").mkdir()
    (tmp_path / "u" / "mine.txt").write_text("mine")
    with pytest.raises(WorkbenchError, match=r"--export .*--overwrite"):
        OutputOptions(tmp_path / "u", flag="--export").folder("train")
    out = OutputOptions(tmp_path / "u", overwrite=True).folder("train")
    assert isinstance(out, OutputDir) and out.command == "train" and out.overwrite
    (tmp_path / "photo.png").write_bytes(b"\x89PNG user")
    with pytest.raises(WorkbenchError, match=r"--plot .*not written by `workbench curve`"):
        OutputOptions(tmp_path / "photo.png", flag="--plot").file("curve", ours=lambda p: False)
    assert isinstance(OutputOptions(tmp_path / "photo.png").file("curve", ours=lambda p: True), OutputFile)
