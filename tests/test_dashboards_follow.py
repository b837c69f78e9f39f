"""Dashboards that follow the cube and say what they show (view level: the logic a browser test
would only reach through the same methods). Each test failed on the code before these fixes."""
from __future__ import annotations

import hashlib
import types

import numpy as np
import pytest
from PIL import Image

from cache.store import CubeStore
from dashboards.context import AppContext
from devtools.synthetic import synthetic_cube
from workbench.progress import Progress


def _cube(H, W, *, name, seed, K=32, size=None):
    ds = synthetic_cube(H, W, 30, name=name, seed=seed)
    ds.attrs["K"] = ds.attrs["k"] = K
    ds.attrs["key"] = hashlib.sha256(f"{ds.attrs['key']}K{K}".encode()).hexdigest()[:32]
    if size is not None:
        ds.attrs["source_size"] = list(size)
    return ds


@pytest.fixture()
def two_sizes(tmp_path):
    """A 32x48 cube of a 683x1024 photo and a 12x16 cube of a 192x256 one; the first image twice (K 32, 8)."""
    st = CubeStore(tmp_path / "store")
    big = st.put(_cube(32, 48, name="big", seed=1, size=(683, 1024)))
    small = st.put(_cube(12, 16, name="small", seed=2, size=(192, 256)))
    big8 = st.put(_cube(32, 48, name="big", seed=3, K=8, size=(683, 1024)))
    return AppContext.from_paths(st.path, device="cpu"), st, (big, small, big8)


def test_axes_reset_when_the_cube_changes(two_sizes):
    from dashboards.explore import ExploreView

    ctx, _, (big, small, _) = two_sizes
    v = ExploreView(ctx)
    v.cube = big
    revs = [p.object.layout.uirevision for p in (v.image_pane, v.fluct_pane, v.rate_pane)]
    v.cube = small
    for pane, rev in zip((v.image_pane, v.fluct_pane, v.rate_pane), revs):
        lay = pane.object.layout
        assert list(lay.xaxis.range) == [-0.5, 255.5] and list(lay.yaxis.range) == [191.5, -0.5]
        # plotly keeps a zoom (and the old cube's ranges) while uirevision stays the same
        assert lay.uirevision != rev


def test_labels_name_the_cube_fully(two_sizes):
    from dashboards.explore import ExploreView

    ctx, _, (big, _, big8) = two_sizes
    v = ExploreView(ctx)
    labels = {key: label for label, key in v.param.cube.names.items()}
    assert labels[big] == "big · rate h · hutchinson · K 32 · 30 steps"
    assert labels[big8] == "big · rate h · hutchinson · K 8 · 30 steps"  # not just another hash


def test_the_cube_box_names_a_live_computation(two_sizes):
    from dashboards.explore import LIVE, ExploreView

    ctx, _, (big, small, _) = two_sizes
    v = ExploreView(ctx)
    v.cube = small
    v._live, v._live_K, v._live_name = True, None, "photo.jpg"
    step = types.SimpleNamespace(ds=ctx.catalog.open(big), K=8, K_final=32, final=False, stability=float("nan"))
    v._show_batch(step)
    assert v.cube == LIVE and v.shape == (32, 48)
    shown = next(label for label, key in v.param.cube.names.items() if key == v.cube)
    assert shown.startswith("photo.jpg — computing: K = 8 / 32")
    assert v.shown.object == f"Shown: {shown}"  # the full name, wrapped under the box
    v.refresh_cubes()  # a refresh meanwhile keeps following the computation
    assert v.cube == LIVE and v._live


class _IdleJob:
    """A job that never runs (the tests only look at what upload does on the UI side)."""

    def __init__(self, *a, **k):
        self.done = False

    def start(self):
        return self

    def abort(self):
        self.done = True


def test_a_valid_image_clears_a_stale_error_and_a_refused_file_leaves_the_box(two_sizes, monkeypatch):
    import io

    import dashboards.explore as explore

    monkeypatch.setattr(explore, "Job", _IdleJob)
    ctx, _, _ = two_sizes
    v = explore.ExploreView(ctx)
    v.upload(b"not an image", "notes.txt")
    assert v.message.visible and "not a readable image" in v.message.object
    buf = io.BytesIO()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(buf, format="PNG")
    assert isinstance(v.upload(buf.getvalue(), "ok.png"), _IdleJob)  # taken: its job runs
    assert not v.message.visible  # the red "not a readable image" is gone while the next image computes
    v.upload_widget.filename = "second.png"
    assert v.upload(buf.getvalue(), "second.png") is None  # busy: refused ...
    assert "second.png was not taken" in v.message.object and not v.upload_widget.filename  # ... and not kept
    v.dispose()


def test_one_re_read_updates_every_view(two_sizes):
    from dashboards.app import WorkbenchApp

    ctx, st, _ = two_sizes
    app = WorkbenchApp(ctx)
    new = st.put(_cube(8, 8, name="later", seed=9))
    app.saliency.refresh_button.clicks += 1  # the Saliency tab's button
    assert new in app.explore.cube_keys
    newer = st.put(_cube(8, 8, name="latest", seed=10))
    app.explore.refresh_button.clicks += 1
    assert newer in app.explore.cube_keys


@pytest.fixture()
def mixed_dataset(tmp_path):
    """A data set of a 1024x768-like and a 1024x683-like pair (scaled down), cubes of both (K 32) and one more
    (K 8) of the first."""
    pairs = tmp_path / "pairs"
    pairs.mkdir()
    rng = np.random.default_rng(0)
    for name, (h, w) in (("p1", (48, 64)), ("p2", (43, 64))):
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(pairs / f"{name}.png")
        fix = np.zeros((h, w), np.uint8)
        fix[rng.integers(0, h, 12), rng.integers(0, w, 12)] = 255
        Image.fromarray(fix).save(pairs / f"{name}_map.png")
    st = CubeStore(tmp_path / "store")
    st.put(_cube(16, 16, name="p1", seed=1))
    st.put(_cube(16, 16, name="p2", seed=2))
    st.put(_cube(16, 16, name="p1", seed=3, K=8))
    return AppContext.from_paths(st.path, dataset=pairs, device="cpu")


def test_saliency_scores_sauc_across_image_sizes_and_says_which_cubes(mixed_dataset):
    from dashboards.saliency import SaliencyView

    v = SaliencyView(mixed_dataset)
    rows = [r for r in v.results["rows"] if r["map"] == "fluctuation"]
    assert len(rows) == 2 and all(np.isfinite(r["sAUC"]) for r in rows)  # the sizes differ: sAUC still there
    assert v.variant == "rate h · hutchinson · K 32 · 30 steps"
    assert "K 32" in v.scored.object and "1 other kind" in v.scored.object
    assert "K 32" in v.fluct_pane.object.layout.title.text  # the map says which cube it is
    v.variant = "rate h · hutchinson · K 8 · 30 steps"  # the other cube of p1
    assert [it.name for it in v.items] == ["p1"] and "K 8" in v.scored.object
    key = v.keys["p1"]
    assert mixed_dataset.catalog.open(key).attrs["K"] == 8
    assert v.sauc_note.visible and "only one image" in v.sauc_note.object  # one image: no sAUC, and why


def test_time_left_from_the_measured_rate_and_an_estimate_before_launch(tmp_path):
    from dashboards.edit import EditView
    from dashboards.jobs import Eta, Job

    eta = Eta()
    assert eta.update(0, 100, now=10.0) is None and eta.text(1.0) == "1.0 s elapsed"
    assert eta.update(4, 100, now=18.0) == pytest.approx(2.0 * 96)  # 2 s per step measured, 96 steps left
    assert eta.text(9.0) == "9.0 s elapsed, about 3 min 12 s left"

    v = EditView(AppContext.from_paths(tmp_path / "s"), n_iter=100, steps=10)
    assert "No edit has been timed" in v.estimate.object
    job = Job(lambda r, s: None)
    job.started_at = 1.0
    v.job, v._eta, v._eta_steps = job, Eta(), 10
    job._report(progress=Progress("optimise", 1, 100, loss=0.5, best_loss=0.5))
    v._eta.update(1, 100, now=0.0)
    v._eta.update(3, 100, now=4.0)  # 2 s per iteration
    assert "about 3 min 14 s left for the iterations" in v.progress_text(job)
    job._done.set()
    v.poll()
    assert v.context.timings["edit"] == pytest.approx(0.2)  # seconds per iteration per DDIM step
    v.steps = 20
    assert "about 6 min 40 s for 100 iterations at 20 DDIM steps" in v.estimate.object


def test_a_cube_of_another_shape_gets_fresh_map_plots(two_sizes):
    """Plotly keeps the domain it shrank an axis to and pads the next cube's range: new plots for a new shape."""
    from dashboards.explore import ExploreView

    ctx, _, (big, small, big8) = two_sizes
    v = ExploreView(ctx)
    v.__panel__()
    v.cube = big
    panes = (v.image_pane, v.fluct_pane, v.rate_pane)
    v.cube = big8  # the same shape: the same plots
    assert (v.image_pane, v.fluct_pane, v.rate_pane) == panes
    v.cube = small
    assert all(new is not old for new, old in zip((v.image_pane, v.fluct_pane, v.rate_pane), panes))
    assert v._grid.objects[:3] == [v.image_pane, v.fluct_pane, v.rate_pane]
    v.fluct_pane.click_data = {"points": [{"x": 100, "y": 50}]}  # the new plots take clicks
    assert v.pixels and v.pixels[-1] == (3, 6)
