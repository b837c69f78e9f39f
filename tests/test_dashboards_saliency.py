"""dashboards.saliency without a browser: metrics against analysis.metrics.score_all on hand-resized maps."""
from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest
from PIL import Image

from cache.store import CubeStore
from dashboards.context import AppContext
from devtools.synthetic import synthetic_cube

from test_dashboards_explore import _fluct_loop


@pytest.fixture()
def saliency_ctx(tmp_path):
    """A folder of image + fixation-map pairs and synthetic cubes named after the images."""
    data = tmp_path / "pairs"
    data.mkdir()
    st = CubeStore(tmp_path / "store")
    rng = np.random.default_rng(3)
    for i, name in enumerate(("img1", "img2", "img3")):
        Image.fromarray(rng.integers(0, 255, (30, 40, 3), dtype=np.uint8)).save(data / f"{name}.png")
        fix = np.zeros((30, 40), np.uint8)
        fix[rng.integers(0, 30, 12), rng.integers(0, 40, 12)] = 255
        Image.fromarray(fix).save(data / f"{name}_map.png")
        st.put(synthetic_cube(16, 16, 30, name=name, seed=10 + i))
    return AppContext.from_paths(st.path, dataset=data)


def test_saliency_metrics_sorting_averages_and_export(saliency_ctx):
    from analysis.datasets import open_dataset, resize_map
    from analysis.metrics import score_all
    from dashboards.saliency import SaliencyView

    v = SaliencyView(saliency_ctx, window=5, t_b=100, normalise=False)
    assert [it.name for it in v.items] == ["img1", "img2", "img3"]
    df = v.per_image()
    assert len(df) == 3
    # independent: the cube's fluctuation by loops, resized with the one resize, scored directly
    items = {it.name: it for it in open_dataset(saliency_ctx.dataset)}
    cat = saliency_ctx.catalog
    nss = {}
    for name, it in items.items():
        ds = cat.open(cat.find(name))
        f = _fluct_loop(ds["rate"].values.astype(np.float64), ds["timestep"].values, 5, 100)
        nss[name] = score_all(resize_map(f.astype(np.float32), it.size), fixations=it.fixations,
                              density=it.density, metrics=("NSS",))["NSS"]
    row = df.set_index("name")
    for name in items:
        assert row.loc[name, "NSS"] == pytest.approx(nss[name], rel=1e-4)
    assert list(df["name"]) == sorted(nss, key=nss.get, reverse=True)  # best first
    v.sort_by = "KLD"
    kld = v.table.value["KLD"].to_numpy()
    assert np.all(np.diff(kld) >= 0)  # lower is better: ascending
    avg = v.dataset_averages().set_index("map")
    assert list(avg.index[:3]) == ["fluctuation", "centre_bias", "spectral_residual"]
    assert avg.loc["fluctuation", "NSS"] == pytest.approx(np.mean(list(nss.values())), rel=1e-4)
    v.image = "img2"
    z = zipfile.ZipFile(v.export_zip())
    names = set(z.namelist())
    assert {"img2/fluctuation.png", "img2/fluctuation.npy", "img2/fixation_density.png", "img2/metrics.json"} <= names
    arr = np.load(io.BytesIO(z.read("img2/fluctuation.npy")))
    assert arr.shape == (30, 40)
    meta = json.loads(z.read("img2/metrics.json"))
    assert meta["window"] == 5 and meta["normalise"] is False and {r["map"] for r in meta["rows"]} >= {"fluctuation", "centre_bias"}


def test_saliency_without_a_dataset_says_how_to_get_one(ctx):
    from dashboards.saliency import SaliencyView

    v = SaliencyView(ctx)
    assert v.message.visible and "--dataset" in v.message.object
