"""`workbench run`, the README's main job, end to end on a tiny model."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
from PIL import Image


def _cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "workbench.cli", *args], capture_output=True, text=True,
                          timeout=600, cwd=cwd)


def test_run_builds_cubes_and_exports_maps_at_source_resolution(tmp_path, tiny_pixel_dir):
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
    second = _cli(*args, cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert "(0 computed" in second.stdout and "2 already in the store" in second.stdout
    np.testing.assert_array_equal(np.load(tmp_path / "out" / "fluctuation" / "a.npy"), before)


def test_run_on_a_missing_image_is_one_line(tmp_path, tiny_pixel_dir):
    r = _cli("run", str(tmp_path / "nope.png"), "--model", str(tiny_pixel_dir), cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [r.stderr.strip()] and "error:" in r.stderr and "Traceback" not in r.stderr
