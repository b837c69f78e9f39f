"""Experiments end to end on 3 images with a tiny model; export (the paired test: test_analysis_paired.py)."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from workbench.errors import WorkbenchError

from test_analysis_datasets import write_osie


# ------------------------------------------------------------------------------ end to end
@pytest.fixture(scope="module")
def osie3(tmp_path_factory):
    root = tmp_path_factory.mktemp("osie3")
    rng = np.random.default_rng(0)
    subs = [[(list(rng.uniform(1, 40, 6)), list(rng.uniform(1, 30, 6))) for _ in range(3)] for _ in range(3)]
    return write_osie(root, subs, size=(30, 40))


@pytest.mark.slow
def test_experiments_end_to_end_and_export(osie3, tiny_pixel_dir, tmp_path):
    from workbench.cli import main

    store, out = tmp_path / "store", tmp_path / "report"
    args = ["experiment", "saliency", "--data", str(osie3), "--store", str(store), "--out", str(out),
            "--model", str(tiny_pixel_dir), "--device", "cpu", "--images", "all", "--steps", "10", "--K", "4",
            "--window", "3", "--t-b", "0", "--draws", "5", "--sigma", "3", "--map-blur", "2"]
    assert main(args) == 0
    for f in ("report.html", "figures.json", "results.json", "tables.md", "maps.png"):
        assert (out / f).stat().st_size > 0, f
    res = json.loads((out / "results.json").read_text())
    assert res["images"] == ["100", "101", "102"]
    assert res["config"]["window"] == 3 and res["config"]["t_b"] == 0
    pm = res["paired"]["maps"]
    assert {"fluctuation[h,hutchinson]", "fluctuation[h,hutchinson]+blur", "fluctuation[h,hutchinson]/smoothed-curves",
            "centre_bias", "spectral_residual",
            "chance"} <= set(pm)
    assert all(0 <= m["fraction"] <= 1 and m["n"] == 3 for m in pm.values())
    summ = res["predictor"]["summary"]
    assert set(summ["fluctuation[h,hutchinson]"]) == {"AUC_Judd", "AUC_Borji", "sAUC", "NSS", "CC", "SIM", "KLD"}
    assert all(np.isfinite(v["mean"]) for m in summ.values() for v in m.values())
    assert len(res["curves"]["salient_mean"]) == 10 and len(res["perceptual"]["per_image"]) == 3
    figs = json.loads((out / "figures.json").read_text())
    assert {"paired", "predictor", "curves_mean", "perceptual_example"} <= set(figs)
    html = (out / "report.html").read_text()
    assert html.count("Plotly.newPlot") >= 4 and "<table>" in html

    # the cubes are cached: a second experiment reuses them (no new cube in the store)
    from cache.store import CubeStore

    assert len(CubeStore(store).keys()) == 3
    assert main(args[:1] + ["paired"] + args[2:]) == 0
    assert len(CubeStore(store).keys()) == 3
    # the paper's own protocol (maximal vs minimal ground-truth pixel) as a named experiment
    assert main(args[:1] + ["protocol"] + args[2:]) == 0
    settings = json.loads((out / "results.json").read_text())["protocol"]["fluctuation[h,hutchinson]"]["settings"]
    assert settings and all(r["n"] == 3 and r["wins"] + r["losses"] + r["ties"] == 3 for r in settings)
    assert "Paper protocol" in (out / "tables.md").read_text()

    # export: PNG + npy at the image's original resolution, named like the input
    exp = tmp_path / "exp"
    assert main(["export", str(store), "--out", str(exp), "--what", "fluctuation,rate@500", "--window", "3",
                 "--t-b", "0", "--no-normalise"]) == 0
    png = Image.open(exp / "fluctuation" / "101.png")
    assert png.size == (40, 30) and png.mode == "L"
    arr = np.load(exp / "fluctuation" / "101.npy")
    assert arr.shape == (30, 40) and arr.dtype == np.float32
    # the exported map is the cube's fluctuation brought to the image's size by the one resize
    from analysis.cubes import open_cubes
    from analysis.datasets import resize_map
    from analysis.fluctuation import fluctuation

    ds = dict(open_cubes(store))["101"]
    ref = resize_map(fluctuation(ds["rate"].values, ds["timestep"].values, window=3, t_b=0, normalise=False), (30, 40))
    np.testing.assert_allclose(arr, ref, rtol=1e-6)
    assert np.asarray(png).max() == 255 and np.asarray(png).min() == 0
    rate_dirs = [p.name for p in exp.iterdir() if p.name.startswith("rate_t")]
    assert len(rate_dirs) == 1 and (exp / rate_dirs[0] / "100.npy").exists()
    man = json.loads((exp / "manifest.json").read_text())
    assert man["window"] == 3 and man["normalise"] is False and set(man["maps"]) == {"100", "101", "102"}


def test_nan_cube_gives_one_line_error(tmp_path):
    import xarray as xr

    from analysis.export import export_maps
    from cache.params import FluctuationParams

    ds = xr.Dataset({"rate": (("t", "y", "x"), np.full((10, 4, 4), np.nan, np.float32))},
                    coords={"timestep": ("t", np.arange(10) * 100)}, attrs={"source_image": "a.jpg"})
    with pytest.raises(WorkbenchError, match="NaN"):
        export_maps([("a", ds)], tmp_path, fluct=FluctuationParams(window=3, t_b=0))
    import analysis  # noqa: F401  (registers the accessor's fluctuation)

    with pytest.raises(WorkbenchError, match="NaN"):
        ds.curves.fluctuation(window=3, t_b=0)
