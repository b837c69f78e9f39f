"""dashboards.explore without a browser: set parameters, fire events, check what the view shows,
against independent computations on the store's arrays (plain NumPy loops), never the view's own helpers."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from cache.store import CubeStore
from dashboards.context import AppContext
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


def _heat(fig):
    return next(t for t in fig.data if t.type == "heatmap")


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
