"""`workbench run`, the README's main job, end to end on a tiny model."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
from PIL import Image

from workbench.cli import main


def _cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "workbench.cli", *args], capture_output=True, text=True,
                          timeout=600, cwd=cwd)


def test_run_builds_cubes_and_exports_maps_at_source_resolution(tmp_path, tiny_pixel_dir, monkeypatch, capsys):
    rng = np.random.default_rng(0)
    for name, size in (("a", (40, 30)), ("b", (24, 24))):
        Image.fromarray(rng.integers(0, 255, (*size, 3), dtype=np.uint8)).save(tmp_path / f"{name}.png")
    args = ["run", str(tmp_path / "a.png"), str(tmp_path / "b.png"), "--model", str(tiny_pixel_dir), "--steps", "12",
            "--K", "4", "--store", str(tmp_path / "store"), "--out", str(tmp_path / "out")]
    first = _cli(*args, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    rows = [ln.split() for ln in first.stdout.splitlines() if ln.startswith(("a ", "b "))]
    assert [r[0] for r in rows] == ["a", "b"]
    for name, (H, W) in (("a", (40, 30)), ("b", (24, 24))):
        png = np.asarray(Image.open(tmp_path / "out" / "fluctuation" / f"{name}.png"))
        fmap = np.load(tmp_path / "out" / "fluctuation" / f"{name}.npy")
        assert png.shape == (H, W) and fmap.shape == (H, W)  # the source image's resolution, not the model's
        assert np.isfinite(fmap).all() and fmap.max() > fmap.min() >= 0
        assert (tmp_path / "out" / f"{name}-overview.png").exists()
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert set(manifest["maps"]) == {"a", "b"}
    assert "(2 computed" in first.stdout
    # a second run finds both cubes in the store, computes nothing and exports the same maps
    before = np.load(tmp_path / "out" / "fluctuation" / "a.npy")
    # (in this process: the first run above is the real process start, exit code and output of the main job)
    monkeypatch.chdir(tmp_path)
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "(0 computed" in out and "2 already in the store" in out
    np.testing.assert_array_equal(np.load(tmp_path / "out" / "fluctuation" / "a.npy"), before)


def test_run_on_a_missing_image_is_one_line(tmp_path, tiny_pixel_dir, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # in this process (a real process's exit and stderr: tests/test_bad_inputs.py)
    assert main(["run", str(tmp_path / "nope.png"), "--model", str(tiny_pixel_dir)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.splitlines() == [err] and "error:" in err and "nope.png" in err and "Traceback" not in err
    assert not (tmp_path / "workbench-store").exists() and not (tmp_path / "workbench-out").exists()
