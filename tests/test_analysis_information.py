"""`workbench experiment information` end to end on a tiny synthetic data set and store (fast), and
on real OSIE cubes where a store of them exists (marked `data`)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cache import schema
from cache.build import cube_from_arrays
from cache.keys import cube_key
from cache.params import CubeParams
from cache.store import CubeStore
from workbench.cli import main

N_IMAGES, HELD_OUT = 10, 3
T = np.array([21, 181, 341, 501, 661, 821, 981])


def _make(tmp_path: Path, informative: bool = True) -> tuple[Path, Path]:
    """A pairs-layout data set (NAME.png + NAME_fixmap.png) whose fixations cluster on a blob where
    the cubes' curves fluctuate (or, with informative=False, anywhere)."""
    rng = np.random.default_rng(0)
    data, store_dir = tmp_path / "data", tmp_path / "store"
    data.mkdir()
    store = CubeStore(store_dir)
    p = CubeParams(K=4, steps=T.size)
    for i in range(N_IMAGES):
        name = f"im{i:02d}"
        img = rng.integers(60, 200, (48, 64, 3), dtype=np.uint8)
        Image.fromarray(img).save(data / f"{name}.png")
        cy, cx = rng.integers(10, 38), rng.integers(10, 54)  # blob centre, image pixels
        fix = np.zeros((48, 64), np.uint8)
        src = (cy, cx) if informative else (rng.integers(10, 38), rng.integers(10, 54))
        for _ in range(25):
            y, x = np.clip(np.round(rng.normal(src, 3)), 0, [47, 63]).astype(int)
            fix[y, x] = 255
        Image.fromarray(fix).save(data / f"{name}_fixmap.png")
        yy, xx = np.mgrid[0:16, 0:16]
        blob = np.exp(-0.5 * (((yy - cy * 16 / 48) / 1.5) ** 2 + ((xx - cx * 16 / 64) / 1.5) ** 2))
        wiggle = np.where(np.arange(T.size) % 2 == 0, 1.0, -1.0)[:, None, None]
        rate = (1.0 + 0.05 * rng.random((T.size, 16, 16)) + 0.8 * blob[None] * (1 + 0.5 * wiggle)).astype(np.float32)
        attrs = {"model_fingerprint": "fp-test", "model_name": "synthetic", **p.as_attrs(), "scale": 1,
                 "source_image": str(data / f"{name}.png"), "source_size": [48, 64], "package_version": "0",
                 "schema_version": schema.SCHEMA_VERSION, "key": cube_key(rng.bytes(16), "fp-test", p), "complete": 1}
        store.put(cube_from_arrays(rate, T, np.linspace(0.99, 0.1, T.size), img[::3, ::4], attrs=attrs))
    return data, store_dir


def _run(data, store, out, *extra) -> int:
    return main(["experiment", "information", "--data", str(data), "--store", str(store), "--out", str(out),
                 "--held-out", str(HELD_OUT), "--boot", "200", "--grid", "12x16", *extra])


def test_information_command_writes_the_report(tmp_path, capsys):
    data, store = _make(tmp_path)
    out = tmp_path / "out"
    assert _run(data, store, out, "--min-train", "5") == 0
    for f in ("report.html", "results.json", "tables.md", "bits_vs_t.png", "feature_ranking.png",
              "per_image_scatter.png"):
        assert (out / f).is_file(), f
    res = json.loads((out / "results.json").read_text())
    assert res["images"]["held_out"] == ["im07", "im08", "im09"] and len(res["images"]["train"]) == 7
    assert res["split"] == "train"
    fam = res["families"]
    assert set(fam) >= {"lowlevel", "curves[h]", "timesteps[h]", "curves[h]+lowlevel"}
    # the curves carry the fixations' position here: their readout gains over the centre bias
    assert fam["curves[h]"]["mean"] > 0.5
    assert fam["curves[h]"]["n_train"] == 7 and fam["curves[h]"]["n_test"] == 3
    assert res["key"]["h"]["difference"]["mean"] > 0.3
    assert len(res["per_timestep"]["h"]) == T.size
    assert {"h:fluct_L3", "low:contrast"} <= set(res["single"])
    assert res["protocol"]["h"]["settings"][0]["n"] == 3
    assert "h:fluct_L3" in res["map_density"]
    assert "bits/fix" in capsys.readouterr().out
    # reproducible from the store: a second run gives the same numbers
    out2 = tmp_path / "out2"
    assert _run(data, store, out2, "--min-train", "5") == 0
    res2 = json.loads((out2 / "results.json").read_text())
    assert res2["families"] == res["families"] and res2["single"] == res["single"]


def test_uninformative_curves_gain_nothing(tmp_path):
    data, store = _make(tmp_path, informative=False)
    out = tmp_path / "out"
    assert _run(data, store, out, "--readout-split", "crossfit", "--low-train", "5") == 0
    res = json.loads((out / "results.json").read_text())
    assert res["split"] == "crossfit" and res["families"]["curves[h]"]["n_test"] == HELD_OUT
    low = res["families"]["lowlevel (all held-out images)"]
    assert low["n_train"] == 5 and low["n_test"] == HELD_OUT and low["split"] == "train"
    assert res["centre_bias"]["ll_over_uniform_all_held_out"]["n"] == HELD_OUT
    assert res["families"]["curves[h]"]["mean"] < 0.3


def test_information_bad_inputs_are_one_line_errors(tmp_path, capsys):
    data, store = _make(tmp_path)
    assert main(["experiment", "information", "--data", str(data), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--store" in err[0]
    assert _run(data, tmp_path / "nostore", tmp_path / "o") == 2
    assert "not a cube store" in capsys.readouterr().err
    assert _run(data, store, tmp_path / "o", "--rate", "eps") == 2
    assert "no complete cubes" in capsys.readouterr().err
    assert main(["experiment", "information", "--data", str(data), "--store", str(store), "--out",
                 str(tmp_path / "o"), "--held-out", "10"]) == 2
    assert "--held-out 10 leaves no training images out of 10" in capsys.readouterr().err


#: an OSIE cube store (`workbench cubes ... --split held-out`), named by the environment: no machine's path here
OSIE_STORE = Path(os.environ.get("WORKBENCH_OSIE_STORE", "")) if os.environ.get("WORKBENCH_OSIE_STORE") else None


@pytest.mark.data
@pytest.mark.slow
def test_information_on_real_osie_cubes(tmp_path):
    from tests.conftest import SHARED_DATA

    osie = SHARED_DATA / "osie"
    if not osie.is_dir() or OSIE_STORE is None or not OSIE_STORE.is_dir():
        pytest.skip(f"needs {osie} and an OSIE cube store named by WORKBENCH_OSIE_STORE (workbench cubes ... --split held-out)")
    from analysis.information import store_cubes

    cubes = store_cubes(OSIE_STORE, rates=("h",))["h"]
    names = sorted(p.stem for p in (osie / "data" / "stimuli").iterdir())
    if len([n for n in names[-50:] if n in cubes]) < 4:
        pytest.skip("the OSIE store holds fewer than 4 held-out cubes")
    rc = main(["experiment", "information", "--data", str(osie), "--store", str(OSIE_STORE), "--out",
               str(tmp_path / "o"), "--rate", "h", "--readout-split", "crossfit", "--max-train", "2", "--boot", "200"])
    assert rc == 0
    res = json.loads((tmp_path / "o" / "results.json").read_text())
    assert res["split"] == "crossfit" and np.isfinite(res["families"]["lowlevel"]["mean"])


def test_cubes_split_selects_the_held_out_images_by_name(tmp_path):
    from cache.sources import ImageSource
    from workbench.commands.cubes import _select_split
    from workbench.errors import WorkbenchError

    paths = tuple(tmp_path / f"{n}.jpg" for n in ("c", "a", "e", "b", "d"))
    src = ImageSource("plain folder", tmp_path, tuple(sorted(paths)))
    assert [p.stem for p in _select_split(src, "held-out", 2, None).images] == ["d", "e"]
    assert [p.stem for p in _select_split(src, "train", 2, None).images] == ["a", "b", "c"]
    assert [p.stem for p in _select_split(src, "train", 2, 2).images] == ["a", "b"]
    assert _select_split(src, "all", 2, None).images == src.images
    with pytest.raises(WorkbenchError, match="no images in that split"):
        _select_split(src, "train", 5, None)
