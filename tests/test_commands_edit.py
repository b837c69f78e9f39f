"""`workbench edit` (workbench.commands.edit): a mask of the wrong size is one line, exit 2."""
from __future__ import annotations

import numpy as np
from PIL import Image

from test_editing import _image


def test_cli_mask_size_mismatch_exits_2(tmp_path, tiny_pixel_dir, capsys):
    from workbench.cli import main

    _image().save(tmp_path / "a.png")
    Image.fromarray(np.zeros((9, 16), np.uint8)).save(tmp_path / "m.png")
    rc = main(["edit", "removal", str(tmp_path / "a.png"), "--mask", str(tmp_path / "m.png"),
               "--model", str(tiny_pixel_dir), "--device", "cpu"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and err == ["workbench edit: error: the mask m.png is 16x9 but the image is 16x16: "
                               "draw the mask on the image itself (same width and height)"]
