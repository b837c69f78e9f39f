"""`workbench train` (workbench.commands.train): its flags, the exported model as a marked output folder."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

def test_train_command_bf16_flags():
    from workbench.cli import build_parser

    p = build_parser()
    base = ["train", "photos"]
    assert p.parse_args(base).bf16 is None
    assert p.parse_args(base + ["--bf16"]).bf16 is True and p.parse_args(base + ["--no-bf16"]).bf16 is False


def test_train_export_is_an_output_folder_with_a_marker(tmp_path, monkeypatch):
    import workbench.train as train_mod
    from workbench.commands.train import EXPORT_FILES, _export, _export_dir
    from workbench.errors import WorkbenchError
    from workbench.outputs import MARKER, OutputOptions

    def fake_export(checkpoint, out_dir, **kw):
        for rel in EXPORT_FILES:
            f = Path(out_dir) / rel
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_text(f"{rel} of {checkpoint}")
    monkeypatch.setattr(train_mod, "export_model", fake_export)
    user = tmp_path / "mine"
    user.mkdir()
    (user / "model_card.json").write_text("{}")  # looked like an earlier export before: it is the user's
    (user / "notes.txt").write_text("mine")
    with pytest.raises(WorkbenchError, match="--overwrite"):
        _export_dir(OutputOptions(user, flag="--export"))
    out = tmp_path / "model"
    _export("ck1", _export_dir(OutputOptions(out, flag="--export")))
    assert sorted(json.loads((out / MARKER).read_text())["files"]) == sorted(EXPORT_FILES)
    _export("ck2", _export_dir(OutputOptions(out, flag="--export")))  # an earlier export: replaced
    assert (out / "model_card.json").read_text() == "model_card.json of ck2"
    (out / "model_card.json").write_text("edited by hand")
    with pytest.raises(WorkbenchError, match="model_card.json"):
        _export_dir(OutputOptions(out, flag="--export"))
