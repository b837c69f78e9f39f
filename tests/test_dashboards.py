"""The dashboards' logic without a browser: set parameters, fire events, check what the views show.

Values are checked against independent computations on the store's arrays (plain NumPy loops,
`analysis.metrics.score_all` on hand-resized maps), never against the view's own helpers.
"""
from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest
from PIL import Image

from cache.store import CubeStore
from dashboards import figures, selection
from dashboards.context import AppContext
from devtools.synthetic import synthetic_cube
from workbench.errors import WorkbenchError


def _fluct_loop(curves: np.ndarray, ts: np.ndarray, L: int, t_b: float, normalise: bool = False) -> np.ndarray:
    """Windowed variance averaged over windows, by explicit loops (independent of analysis.fluctuation)."""
    c = curves[ts > t_b]
    if normalise:
        c = c / c.sum(0)
    n = c.shape[0]
    out = np.zeros(c.shape[1:])
    for w in range(n - L + 1):
        seg = c[w:w + L]
        out += ((seg - seg.mean(0)) ** 2).mean(0)
    return out / (n - L + 1)


@pytest.fixture()
def store(tmp_path):
    st = CubeStore(tmp_path / "store")
    st.put(synthetic_cube(24, 20, 30, name="alpha", seed=1))
    st.put(synthetic_cube(16, 16, 30, name="beta", seed=2))
    return st


@pytest.fixture()
def ctx(store):
    return AppContext.from_paths(store.path, device="cpu")


def _heat(fig):
    return next(t for t in fig.data if t.type == "heatmap")


# ------------------------------------------------------------------------------------ figures
def test_downsample_is_block_mean_with_centres():
    v = np.arange(8 * 6, dtype=np.float32).reshape(8, 6)
    z, xs, ys = figures.downsample(v, max_side=4)  # factor 2
    assert z.shape == (4, 3)
    assert z[1, 2] == pytest.approx(v[2:4, 4:6].mean())
    np.testing.assert_allclose(xs, [0.5, 2.5, 4.5])
    np.testing.assert_allclose(ys, [0.5, 2.5, 4.5, 6.5])
    z1, xs1, _ = figures.downsample(v, max_side=8)
    assert z1 is not None and z1.shape == v.shape and xs1[-1] == 5


def test_click_to_pixel_rounds_to_grid_cells_and_rejects_outside():
    assert figures.click_to_pixel({"points": [{"x": 3.4, "y": 6.6}]}, (10, 10)) == (7, 3)
    assert figures.click_to_pixel({"points": [{"x": -0.7, "y": 1}]}, (10, 10)) is None
    assert figures.click_to_pixel({"points": []}, (10, 10)) is None
    assert figures.click_to_pixel(None, (10, 10)) is None


# ------------------------------------------------------------------------------------ explore
def test_explore_click_shows_the_pixels_curve_from_the_store(ctx, store):
    from dashboards.explore import ExploreView

    v = ExploreView(ctx, normalise=False)
    key = next(e["key"] for e in store.index() if e["name"] == "alpha")
    v.cube = key
    ref = store.open(key)["rate"].values
    v.fluct_pane.click_data = {"points": [{"x": 7.2, "y": 3.9, "curveNumber": 1}]}  # what a browser click sends
    assert v.pixels == [(4, 7)]
    fig = v.curve_pane.object
    assert len(fig.data) == 1 and "x=7, y=4" in fig.data[0].name
    np.testing.assert_allclose(fig.data[0].y, ref[:, 4, 7], rtol=1e-6)
    v.click(10, 2)
    assert len(v.curve_pane.object.data) == 2
    np.testing.assert_allclose(v.curve_pane.object.data[1].y, ref[:, 10, 2], rtol=1e-6)
    marks = v.fluct_pane.object.data[-1]
    assert list(marks.x) == [7, 2] and list(marks.y) == [4, 10]
    v.compare = False
    v.click(0, 0)
    assert v.pixels == [(0, 0)] and len(v.curve_pane.object.data) == 1
    v.clear()
    assert v.pixels == [] and len(v.curve_pane.object.data) == 0


def test_explore_slider_shows_the_rate_map_at_t(ctx, store):
    from dashboards.explore import ExploreView

    v = ExploreView(ctx)
    key = next(e["key"] for e in store.index() if e["name"] == "alpha")
    v.cube = key
    ds = store.open(key)
    v.t_index = 17
    np.testing.assert_allclose(_heat(v.rate_pane.object).z, ds["rate"].values[17], rtol=1e-6)
    assert f"t={int(ds['timestep'].values[17])}" in v.rate_pane.object.layout.title.text
    v.click(5, 5)
    vline = [s for s in v.curve_pane.object.layout.shapes if s.type == "line"]
    assert vline and vline[0].x0 == pytest.approx(float(ds["timestep"].values[17]))


def test_explore_window_and_t_b_recompute_the_fluctuation(ctx, store):
    from dashboards.explore import ExploreView

    v = ExploreView(ctx)
    key = next(e["key"] for e in store.index() if e["name"] == "alpha")
    v.cube = key
    ds = store.open(key)
    ts, rate = ds["timestep"].values, ds["rate"].values.astype(np.float64)
    v.window, v.t_b, v.normalise = 5, 100, False
    np.testing.assert_allclose(_heat(v.fluct_pane.object).z, _fluct_loop(rate, ts, 5, 100), rtol=1e-4)
    v.window, v.t_b = 3, 400
    np.testing.assert_allclose(_heat(v.fluct_pane.object).z, _fluct_loop(rate, ts, 3, 400), rtol=1e-4)
    assert "L=3, t_b=400" in v.fluct_pane.object.layout.title.text
    v.normalise = True
    np.testing.assert_allclose(_heat(v.fluct_pane.object).z, _fluct_loop(rate, ts, 3, 400, True), rtol=1e-4)
    v.click(2, 3)
    c = rate[:, 2, 3]
    np.testing.assert_allclose(v.curve_pane.object.data[0].y, c / c[ts > 400].sum(), rtol=1e-5)
    v.normalise = False
    v.t_b = 990  # nothing above t_b: a message, not a crash
    assert v.message.visible and "t_b" in v.message.object and v.fluctuation() is None
    v.t_b = 100
    assert not v.message.visible
    v.opacity = 0.25
    assert _heat(v.fluct_pane.object).opacity == pytest.approx(0.25)


def test_explore_metadata_and_switching_cubes(ctx, store):
    from dashboards.explore import ExploreView

    v = ExploreView(ctx)
    assert len(v.cube_keys) == 2
    v.cube = v.cube_keys[1]
    v.t_index = 29
    v.click(1, 1)
    v.cube = v.cube_keys[0]  # another cube: the pixels are forgotten, t stays in range
    assert v.pixels == [] and v.t_index <= v.dataset.sizes["t"] - 1
    assert "hutchinson" in v.meta.object and "rate definition" in v.meta.object
    with pytest.raises(WorkbenchError, match="outside"):
        v.click(99, 0)


def test_two_sessions_do_not_share_state(ctx):
    from dashboards.app import WorkbenchApp

    a, b = WorkbenchApp(ctx), WorkbenchApp(ctx)
    a.explore.click(1, 2)
    b.explore.t_index = 5
    assert a.explore.pixels == [(1, 2)] and b.explore.pixels == []
    assert a.explore.t_index == 0 and b.explore.t_index == 5
    a.__panel__(), b.__panel__()


def test_explore_drop_an_image_computes_and_caches_its_cube(tmp_path, tiny_pixel_dir):
    from dashboards.explore import ExploreView
    from workbench.adapters import load_model

    adapter = load_model(tiny_pixel_dir, device="cpu")
    ctx = AppContext.from_paths(tmp_path / "s", adapter=adapter)
    v = ExploreView(ctx, new_steps=4, new_K=2)
    assert v.cube is None and v.empty.visible
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (20, 24, 3), dtype=np.uint8)).save(buf, format="PNG")
    job = v.upload(buf.getvalue(), "noise.png")
    assert v.progress.visible
    assert job.wait(120)
    v.poll()
    assert job.error is None and not v.progress.visible
    assert v.cube is not None and v.dataset.sizes["t"] == 4 and not v.empty.visible
    assert CubeStore(tmp_path / "s").keys() == [v.cube]
    assert v.upload(b"not an image", "x.png") is None and "not a readable image" in v.message.object


def test_explore_drop_an_image_shows_the_first_batch_then_refines_it_live(tmp_path, tiny_pixel_dir, monkeypatch):
    """The first probe batch's cube is shown while the job runs, each later batch replaces it keeping the
    clicked pixel, and the stored cube equals one computed in one go (exact merge)."""
    import queue
    import threading

    from cache import anytime
    from cache.build import compute_cube
    from cache.params import CubeParams
    from dashboards.explore import ExploreView
    from workbench.adapters import load_model

    real, landed, go, options = anytime.cube_batches, queue.Queue(), threading.Semaphore(0), []

    def gated(*a, **kw):  # hold the worker after each batch was handed over, until the test has polled
        options.append(kw)
        for step in real(*a, **kw):
            yield step
            landed.put(step.K)
            assert go.acquire(timeout=60)

    monkeypatch.setattr(anytime, "cube_batches", gated)
    adapter = load_model(tiny_pixel_dir, device="cpu")
    ctx = AppContext.from_paths(tmp_path / "s", adapter=adapter)
    v = ExploreView(ctx, new_steps=4, new_K=16, normalise=False, window=2, t_b=100)
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (20, 24, 3), dtype=np.uint8)).save(buf, format="PNG")
    job = v.upload(buf.getvalue(), "noise.png")
    seen = []
    for K in (4, 8, 16):
        assert landed.get(timeout=120) == K
        v.poll()
        ds = v.dataset
        assert int(ds.attrs["K"]) == K and f"K = {K} / 16" in v.job_status.object
        assert v.progress.value == round(100 * K / 16)  # probes x timesteps of the whole cube done
        assert ("not stored yet" in v.meta.object) == (K < 16)
        rate = np.asarray(ds["rate"].values, dtype=np.float64)
        F = _fluct_loop(rate, ds["timestep"].values, 2, 100)
        np.testing.assert_allclose(v.fluct_pane.object.data[1].z, F, rtol=1e-4)  # the map shown is this batch's
        seen.append(F)
        if K == 4:
            assert not job.done and CubeStore(tmp_path / "s").keys() == []  # nothing stored before the end
            v.click(2, 3)
        assert v.pixels == [(2, 3)]
        np.testing.assert_allclose(v.curve_pane.object.data[-1].y, rate[:, 2, 3], rtol=1e-6)
        go.release()
    assert job.wait(120)
    v.poll()
    assert options[0]["until_stable"] is None and (options[0]["window"], options[0]["t_b"]) == (2, 100)
    assert job.error is None and not v.progress.visible and v.pixels == [(2, 3)]
    assert not np.allclose(seen[0], seen[-1])  # the first map (4 probes) was a different, cruder one
    store = CubeStore(tmp_path / "s")
    assert store.keys() == [v.cube] and int(v.dataset.attrs["K"]) == 16
    upload = next((tmp_path / "s" / "uploads").glob("*noise.png"))
    once = compute_cube(adapter, upload, CubeParams(steps=4, K=16))
    kept = store.open(v.cube)
    assert once.attrs["key"] == v.cube
    for name in ("rate", "rate_se", "probe_sum_s", "probe_sum_ss"):
        np.testing.assert_allclose(kept[name].values, once[name].values, rtol=1e-6, err_msg=name)


def test_explore_stops_adding_probes_once_stable_and_says_so(tmp_path, tiny_pixel_dir):
    """With `new_until_stable` R the stored cube has the K of the first batch whose stability reached R."""
    from cache.anytime import cube_batches
    from cache.params import CubeParams
    from dashboards.explore import ExploreView
    from workbench.adapters import load_model

    adapter = load_model(tiny_pixel_dir, device="cpu")
    ctx = AppContext.from_paths(tmp_path / "s", adapter=adapter)
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (20, 24, 3), dtype=np.uint8)).save(buf, format="PNG")
    path = ctx.catalog.save_upload(buf.getvalue(), "noise.png")
    stab = [b.stability for b in cube_batches(adapter, path, CubeParams(steps=4, K=16), window=3, t_b=0)]
    assert stab[1] > stab[0]  # (seeded) so that R below is first reached after 8 probes
    v = ExploreView(ctx, new_steps=4, new_K=16, new_until_stable=stab[1] - 1e-9, window=3, t_b=0)
    job = v.upload(buf.getvalue(), "noise.png")
    assert job.wait(120)
    v.poll()
    assert job.error is None and int(v.dataset.attrs["K"]) == 8 and CubeStore(tmp_path / "s").keys() == [v.cube]
    assert "K = 8 / 16" in v.job_status.object and "stable: no more probes needed" in v.job_status.object
    assert f"**split-half stability**: `{stab[1]:.4g}`" in v.meta.object


# ------------------------------------------------------------------------------------ saliency
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


# ------------------------------------------------------------------------------------ selection
def test_box_and_lasso_masks_against_hand_counts():
    m = selection.box_mask((10, 12), 2.2, 7.9, 5, 3)  # corners in any order; centres inside count
    assert m.sum() == 3 * 5 and m[3, 3] and m[7, 5] and not m[8, 3] and not m[3, 2]
    tri = selection.polygon_mask((10, 10), [0, 9, 0], [0, 0, 9])  # right triangle
    assert tri[1, 1] and not tri[8, 8] and 40 <= tri.sum() <= 55


def test_mask_from_plotly_selection_events():
    size = (20, 30)
    box = {"points": [{"x": 5, "y": 5}], "range": {"x": [4, 10], "y": [2, 6]}}
    np.testing.assert_array_equal(selection.mask_from_selection(box, size), selection.box_mask(size, 4, 2, 10, 6))
    lasso = {"points": [{"x": 5, "y": 5}], "lassoPoints": {"x": [2, 12, 12, 2], "y": [2, 2, 8, 8]}}
    assert selection.mask_from_selection(lasso, size).sum() == selection.box_mask(size, 2, 2, 12, 8).sum()
    pts = {"points": [{"x": 3, "y": 4}, {"x": 7, "y": 1}]}
    m = selection.mask_from_selection(pts, size)
    assert m.sum() == 2 and m[4, 3] and m[1, 7]
    assert selection.mask_from_selection({"points": []}, size) is None
    g = selection.pixel_grid_trace((600, 800), max_points=6000)
    assert len(g.x) <= 6000 and g.marker.opacity == 0


# ------------------------------------------------------------------------------------ edit
@pytest.fixture(scope="module")
def tiny_adapter_pixel(tiny_pixel_dir):
    from workbench.adapters import load_model

    return load_model(tiny_pixel_dir, device="cpu")


def test_edit_launch_progress_result_and_save(tmp_path, tiny_adapter_pixel):
    from dashboards.edit import EditView

    ctx = AppContext.from_paths(tmp_path / "s", adapter=tiny_adapter_pixel)
    v = EditView(ctx, n_iter=2, steps=5)
    assert v.image_path is not None and v.image_path.name.endswith(".jpg")
    assert v.launch() is None and "select a region" in v.message.object
    H, W = v.size
    v.image_pane.selected_data = {"points": [{"x": W / 2, "y": H / 2}],
                                  "range": {"x": [W * 0.3, W * 0.6], "y": [H * 0.3, H * 0.6]}}
    assert v.mask is not None and v.mask.sum() > 0.05 * H * W
    v.task = "transfer"
    assert v.launch() is None and "reference" in v.message.object
    v.image_pane.click_data = {"points": [{"x": W * 0.1, "y": H * 0.9}]}
    assert v.reference == (int(round(W * 0.1)), int(round(H * 0.9)))
    job = v.launch()
    assert job is not None and v.cancel_button.disabled is False
    assert job.wait(600)
    v.poll()
    assert job.error is None, job.error
    r = v.result
    assert r is not None and r.iterations_done == 2 and not r.cancelled
    assert len(v.curve_pane.object.data) == 3  # before, after, reference
    lay = v.result_pane.object.layout  # original | edited, each at the source image's shape, in its pixels
    assert [lay.xaxis.range[1], lay.yaxis.range[0]] == [W - 0.5, H - 0.5] == [lay.xaxis2.range[1], lay.yaxis2.range[0]]
    np.testing.assert_allclose(v.curve_pane.object.data[0].y, r.curve_before, rtol=1e-6)
    assert "iterations" in v.metrics.object and not v.download.disabled
    assert "PSNR outside, source resolution (dB)" in v.metrics.object and "psnr_outside" not in v.metrics.object
    png = Image.open(v.result_png())
    assert png.size == (W, H)  # the source's resolution, not the model's
    path = v.save()
    assert path.is_file() and Image.open(path).size == (W, H)


@pytest.mark.slow
def test_edit_cancel_returns_the_best_so_far(tmp_path, tiny_adapter_pixel):
    import time

    from dashboards.edit import EditView

    ctx = AppContext.from_paths(tmp_path / "s", adapter=tiny_adapter_pixel)
    v = EditView(ctx, n_iter=500, steps=5, task="saliency")
    H, W = v.size
    v.select_lasso([W * 0.2, W * 0.5, W * 0.5, W * 0.2], [H * 0.2, H * 0.2, H * 0.5, H * 0.5])
    job = v.launch()
    deadline = time.time() + 600
    while time.time() < deadline and job.snapshot().get("stage") != "optimise":
        time.sleep(0.05)
    v.cancel()
    assert job.wait(600)
    v.poll()
    assert job.error is None, job.error
    assert v.result.cancelled and v.result.iterations_done < 500
    assert "cancelled" in v.metrics.object


def test_edit_errors_from_the_library_are_shown(tmp_path, tiny_adapter_pixel):
    from dashboards.edit import EditView

    ctx = AppContext.from_paths(tmp_path / "s", adapter=tiny_adapter_pixel)
    v = EditView(ctx, n_iter=1, steps=5, task="removal")
    H, W = v.size
    v.select_box(W * 0.2, H * 0.2, W * 0.6, H * 0.6)
    v.set_reference(int(W * 0.4), int(H * 0.4))  # inside the object: the library refuses it
    job = v.launch()
    assert job.wait(120)
    v.poll()
    assert v.message.visible and "inside the object" in v.message.object and v.result is None


# ------------------------------------------------------------------------------------ command
def test_dashboard_command_refuses_remote_binding_without_the_flag(tmp_path, capsys):
    from workbench.cli import main

    assert main(["dashboard", "--store", str(tmp_path / "s"), "--address", "0.0.0.0"]) == 2
    err = capsys.readouterr().err
    assert "--allow-remote" in err and "Traceback" not in err
    assert main(["dashboard", "--store", str(tmp_path / "s"), "--dataset", str(tmp_path / "nope")]) == 2
    assert "no such data set folder" in capsys.readouterr().err


def test_serve_refuses_remote_and_app_builds(ctx):
    from dashboards.app import WorkbenchApp, is_loopback, serve

    assert is_loopback("127.0.0.1") and is_loopback("::1") and not is_loopback("0.0.0.0")
    with pytest.raises(WorkbenchError, match="allow"):
        serve(ctx, address="0.0.0.0", port=0)
    app = WorkbenchApp(ctx)
    header, tabs = app.__panel__().objects
    assert list(tabs._names) == ["Explore", "Saliency", "Edit"] and str(ctx.catalog.path) in header.object
    tabs.active = 2  # the tabs and the app's `active` parameter follow each other
    assert app.active == 2
