"""Interop with pysaliency (the field's evaluation library): `workbench export --format pysaliency` writes
maps pysaliency loads as models, and pysaliency's own AUC, NSS and information gain agree with
analysis.metrics / analysis.infogain on the same maps."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import xarray as xr
from PIL import Image

from analysis.export import as_log_density, export_maps
from analysis.fluctuation import fluctuation_significance
from analysis.infogain import information_gain
from analysis.metrics import AUC_Judd, NSS
from cache.store import CubeStore
from workbench.cli import main as cli

from test_cache_store import synthetic_cube

TS12 = np.arange(12) * 80

pysaliency = pytest.importorskip("pysaliency", reason="pysaliency is not installed (pip install -e .[test])")


def _scene(tmp_path, n_fix: int = 25):
    """A store of two cubes (sources 30x40), their stimuli files and unique random fixations."""
    st = tmp_path / "st"
    store = CubeStore(st)
    for seed, name in ((1, "a"), (2, "b")):
        store.put(synthetic_cube(seed, name=name))
    rng = np.random.default_rng(0)
    files, xs, ys, ns = [], [], [], []
    for i, name in enumerate(("a", "b")):
        f = tmp_path / "stimuli" / f"{name}.png"
        f.parent.mkdir(exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)).save(f)
        files.append(str(f))
        cells = rng.choice(30 * 40, size=n_fix, replace=False)
        ys += list(cells // 40)
        xs += list(cells % 40)
        ns += [i] * n_fix
    fix = pysaliency.Fixations.create_without_history(np.array(xs), np.array(ys), np.array(ns))
    return st, pysaliency.FileStimuli(files), fix, np.array(xs), np.array(ys), np.array(ns)


def test_export_pysaliency_scores_like_analysis_metrics(tmp_path, monkeypatch):
    # pysaliency 0.2.22's AUC (numba_utils.general_roc_numba) calls np.trapz, which NumPy 2.4 removed: give it
    # back its successor for this test only
    monkeypatch.setattr(np, "trapz", np.trapezoid, raising=False)
    st, stimuli, fix, xs, ys, ns = _scene(tmp_path)
    out = tmp_path / "out"
    assert cli(["export", str(st), "--out", str(out), "--what", "fluctuation,accumulated@41",
                "--format", "pysaliency"]) == 0
    assert (out / "pysaliency" / "fluctuation" / "a.npy").exists() and not (out / "fluctuation").exists()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pysaliency's own deprecation warnings
        smodel = pysaliency.SaliencyMapModelFromDirectory(stimuli, str(out / "pysaliency" / "fluctuation"))
        dmodel = pysaliency.ModelFromDirectory(stimuli, str(out / "pysaliency" / "fluctuation_log_density"))
        auc = smodel.AUC_per_image(stimuli, fix, nonfixations="unfixated", thresholds="fixations")
        nss = smodel.NSSs(stimuli, fix)
        ig = dmodel.information_gains(stimuli, fix, pysaliency.UniformModel())
    diffs = {"AUC": 0.0, "NSS": 0.0, "IG": 0.0}
    for i, name in enumerate(("a", "b")):
        m = np.load(out / "pysaliency" / "fluctuation" / f"{name}.npy")
        np.testing.assert_array_equal(smodel.saliency_map(stimuli[i]), m)  # pysaliency reads the exported map
        sel = ns == i
        fmap = np.zeros(m.shape, bool)
        fmap[ys[sel], xs[sel]] = True
        ours_auc = AUC_Judd(m, fmap, jitter=False)
        # NSS: analysis z-scores with the sample sd (ddof 1), pysaliency with ddof 0
        ours_nss = NSS(m, fmap) / np.sqrt((m.size - 1) / m.size)
        counts = np.zeros(m.shape)
        np.add.at(counts, (ys[sel], xs[sel]), 1)
        ours_ig = information_gain(as_log_density(m), np.zeros(m.shape), counts)
        diffs["AUC"] = max(diffs["AUC"], abs(ours_auc - auc[i]))
        diffs["NSS"] = max(diffs["NSS"], abs(ours_nss - nss[sel].mean()))
        diffs["IG"] = max(diffs["IG"], abs(ours_ig - ig[sel].mean()))
    print("max abs difference, analysis vs pysaliency:", {k: f"{v:.2e}" for k, v in diffs.items()})
    assert diffs["AUC"] < 1e-9 and diffs["NSS"] < 1e-9 and diffs["IG"] < 1e-9
    assert (out / "pysaliency" / "accumulated_t0041" / "b.npy").exists()


def test_as_log_density_is_a_proper_density():
    from scipy.special import logsumexp

    rng = np.random.default_rng(1)
    m = rng.normal(size=(7, 9))
    lp = as_log_density(m)
    assert logsumexp(lp) == pytest.approx(0.0, abs=1e-12) and np.isfinite(lp).all()
    assert np.argmax(lp) == np.argmax(m) and np.argmin(lp) == np.argmin(m)
    np.testing.assert_allclose(as_log_density(np.ones((3, 4))), np.full((3, 4), -np.log(12)))


def test_export_writes_the_z_map_beside_the_fluctuation_when_the_cube_has_rate_se():
    from analysis.export import cube_maps

    rng = np.random.default_rng(4)
    N, H, W = 12, 4, 5
    rate = 1 + 0.05 * rng.random((N, H, W))
    D = ("t", "y", "x")
    ds = xr.Dataset({"rate": (D, rate)}, coords={"timestep": ("t", TS12)})
    assert set(cube_maps(ds, "fluctuation", window=3, t_b=0)) == {"fluctuation"}  # cubes without SEs: as before
    ds["rate_se"] = (D, np.full_like(rate, 0.01))
    maps = cube_maps(ds, "fluctuation", window=3, t_b=0)
    z, info = maps["fluctuation_z"]
    want = fluctuation_significance(rate, ds["rate_se"].values, TS12, window=3, t_b=0)["z"]
    np.testing.assert_allclose(z, want, rtol=1e-5)
    assert info["window"] == 3 and "se(F)" in info["z"]
