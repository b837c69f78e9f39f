"""`workbench curve` (workbench.commands.curve): one-line errors, the printed curve, its exactness claim."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from workbench.adapters import load_model


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "workbench.cli", *args], capture_output=True, text=True, timeout=300)


# One real process per case: exit code 2, one line, no traceback. Each case costs a process start
# (torch import, ~5 s); the same five inputs (and ~30 more) are checked in-process, message by
# message, by tests/test_bad_inputs.py (curve-image-missing, -empty, -text, curve-pixel-outside,
# curve-model-missing), so here two are kept: a bad image file and a pixel outside the image.
@pytest.mark.parametrize("case", ["missing", "outside"])
def test_cli_bad_inputs_exit_nonzero_with_one_line(tmp_path, tiny_pixel_dir, case):
    from PIL import Image

    img = tmp_path / "ok.png"
    Image.new("RGB", (20, 10), (100, 50, 20)).save(img)
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "text.png").write_text("not an image")
    args = {"missing": [str(tmp_path / "none.png"), "--pixel", "1,1", "--model", str(tiny_pixel_dir)],
            "empty": [str(tmp_path / "empty.png"), "--pixel", "1,1", "--model", str(tiny_pixel_dir)],
            "not_image": [str(tmp_path / "text.png"), "--pixel", "1,1", "--model", str(tiny_pixel_dir)],
            "outside": [str(img), "--pixel", "20,3", "--model", str(tiny_pixel_dir)],
            "no_model": [str(img), "--pixel", "1,1", "--model", str(tmp_path / "nomodel")]}[case]
    r = _cli("curve", *args)
    assert r.returncode == 2
    lines = [ln for ln in r.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("workbench curve: error:"), r.stderr
    assert "Traceback" not in r.stderr


def test_cli_curve_prints_a_curve(tmp_path, tiny_pixel_dir):
    from PIL import Image

    img = tmp_path / "ok.png"
    Image.new("RGB", (32, 32), (100, 50, 20)).save(img)
    r = _cli("curve", str(img), "--pixel", "5,7", "--model", str(tiny_pixel_dir), "--steps", "6", "--json",
             "--plot", str(tmp_path / "c.html"))
    assert r.returncode == 0, r.stderr
    import json

    out = json.loads(r.stdout.splitlines()[0])
    assert len(out["curve"]) == 6 and all(v > 0 for v in out["curve"])
    assert (tmp_path / "c.html").exists()


def test_cli_curve_is_exact_with_se_zero_and_projected_has_no_se(tmp_path, tiny_pixel_dir, capsys):
    """`workbench curve` says its h curve is exact (se 0), and it is: central differences of the model's
    h map along the pixel's unit tangents give the same column norms; `projected` gives no SE."""
    import json

    from PIL import Image

    from workbench.cli import main
    from workbench.pipeline import prepare_image

    rng = np.random.default_rng(4)
    img = tmp_path / "n.png"
    Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(img)
    base = [str(img), "--pixel", "5,7", "--model", str(tiny_pixel_dir), "--steps", "4"]
    assert main(["curve", *base, "--json", "--plot", str(tmp_path / "c.html")]) == 0
    out = json.loads(capsys.readouterr().out.splitlines()[0])
    assert out["exact"] is True and out["rate_se"] == [0.0] * 4 and "exact" in out["se_note"]
    assert "(exact)" in (tmp_path / "c.html").read_text()
    ad = load_model(tiny_pixel_dir, device="cpu")
    prep = prepare_image(ad, Image.open(img), steps=4)
    (my, mx), C = out["model_pixel"][::-1], ad.model_shape[0]
    ref = []
    for i, t in enumerate(prep.trajectory.schedule.timesteps.tolist()):
        x = prep.trajectory.states[i].double()
        norms = []
        for c in range(C):
            e = torch.zeros_like(x)
            e[c, my, mx] = 1e-3
            with torch.no_grad():
                up, down = (ad.h((x + s * e).float()[None], t)[0].double() for s in (1, -1))
            norms.append(float(((up - down) / 2e-3).norm()))
        ref.append(np.mean(norms))
    np.testing.assert_allclose(out["curve"], ref, rtol=2e-2)

    assert main(["curve", *base, "--rate", "projected", "--k", "4", "--plot", str(tmp_path / "p.html")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(ln.startswith("# projected rate") and "no SE" in ln for ln in lines)
    rows = [ln.split("\t") for ln in lines if ln and ln[0].isdigit()]
    assert lines[2] == "timestep\trate\tse" and len(rows) == 4 and all(r[2] == "nan" for r in rows)
