"""What a newcomer hit in the dashboards, checked without a browser: true image shapes,
readable numbers, staleness, matching, export with nothing matched, edit status (the compute queue
and the widgets: test_dashboards_jobs.py, test_dashboards_widgets.py).

Expected values come from hand computation (cell geometry, the loop's moving-average formula,
percentiles of the raw cube), not from the views' own helpers.
"""
from __future__ import annotations

import time

import numpy as np
import pytest
from PIL import Image

from cache.store import CubeStore
from dashboards import figures
from dashboards.context import AppContext
from dashboards.jobs import Job
from devtools.synthetic import synthetic_cube
from workbench.errors import WorkbenchError
from workbench.progress import Progress


def _heat(fig):
    return next(t for t in fig.data if t.type == "heatmap")


@pytest.fixture()
def wide_ctx(tmp_path):
    """A 16x16-cell cube of an 80x60 (W x H, 4:3) photo."""
    st = CubeStore(tmp_path / "store")
    ds = synthetic_cube(16, 16, 30, name="wide", seed=7)
    ds.attrs["source_size"] = [60, 80]
    st.put(ds)
    return AppContext.from_paths(st.path, device="cpu")


# ------------------------------------------------------------------------- true shape, pixels
def test_explore_draws_every_map_at_the_photos_shape_with_axes_in_its_pixels(wide_ctx):
    from dashboards.explore import ExploreView

    v = ExploreView(wide_ctx)
    assert v.shape == (16, 16) and v.extent == (60, 80)
    for pane in (v.image_pane, v.fluct_pane, v.rate_pane):
        lay = pane.object.layout
        assert list(lay.xaxis.range) == [-0.5, 79.5] and list(lay.yaxis.range) == [59.5, -0.5]
        assert lay.yaxis.scaleanchor == "x" and lay.yaxis.scaleratio == 1  # one px is one px on both axes
    hm = _heat(v.rate_pane.object)
    # cell j of 16 spans source px [5j, 5j + 5) horizontally and [3.75j, 3.75(j + 1)) vertically
    np.testing.assert_allclose(hm.x, [5 * j + 2.5 - 0.5 for j in range(16)])
    np.testing.assert_allclose(hm.y, [3.75 * j + 1.875 - 0.5 for j in range(16)])
    # a click at source pixel (x=79, y=59) is cell (15, 15); at (x=12, y=8) cell (y=2, x=2)
    v.fluct_pane.click_data = {"points": [{"x": 79, "y": 59}]}
    v.image_pane.click_data = {"points": [{"x": 12, "y": 8}]}
    assert v.pixels == [(15, 15), (2, 2)]
    marks = v.fluct_pane.object.data[-1]
    np.testing.assert_allclose(marks.x, [77, 12])
    np.testing.assert_allclose(marks.y, [57.625, 8.875])
    names = [t.name for t in v.curve_pane.object.data]
    assert names[0].startswith("x=77, y=58") and names[1].startswith("x=12, y=9")
    assert "image px per model px" not in v.meta.object and "5 × 3.75 image px" in v.meta.object


def test_image_panel_is_clickable_through_a_pick_layer_not_the_image_trace(wide_ctx):
    from dashboards.explore import ExploreView

    v = ExploreView(wide_ctx)
    img = next(t for t in v.image_pane.object.data if t.type == "image")
    assert img.hoverinfo == "skip"  # a clicked image trace sends a Uint8ClampedArray Panel cannot serialise
    pick = _heat(v.image_pane.object)
    assert pick.opacity == 0 and pick.showscale is False


def test_colour_bars_are_titled_in_scientific_notation_and_empty_plots_have_no_axes(wide_ctx):
    from dashboards.explore import ExploreView

    v = ExploreView(wide_ctx)
    for pane in (v.fluct_pane, v.rate_pane):
        bar = _heat(pane.object).colorbar
        hm = _heat(pane.object)  # one number format per colour bar, chosen from its range
        assert bar.title.text and bar.tickformat == figures.tickformat(hm.zmin, hm.zmax)
    assert figures.tickformat(1e-5, 5e-5) == figures.TICKFORMAT and figures.tickformat(0.9, 1.5) == ".3~r"
    assert "F" in _heat(v.fluct_pane.object).colorbar.title.text
    empty = v.curve_pane.object  # no pixel clicked yet
    assert empty.layout.xaxis.visible is False and empty.layout.yaxis.visible is False
    v.click(3, 4)
    assert v.curve_pane.object.layout.xaxis.visible is not False
    assert "e-" in v.curve_pane.object.data[0].name or "e+" in v.curve_pane.object.data[0].name  # F=1.23e-04


def test_the_rate_colour_range_can_be_fixed_across_timesteps(wide_ctx):
    from dashboards.explore import ExploreView

    v = ExploreView(wide_ctx)
    r0 = (_heat(v.rate_pane.object).zmin, _heat(v.rate_pane.object).zmax)
    v.t_index = 20
    r20 = (_heat(v.rate_pane.object).zmin, _heat(v.rate_pane.object).zmax)
    assert r0 != r20  # per timestep by default
    v.fixed_range = True
    rate = np.asarray(v.dataset["rate"].values, dtype=np.float64)
    lo, hi = np.percentile(rate, [1, 99])
    assert _heat(v.rate_pane.object).zmin == pytest.approx(lo, rel=1e-5)
    assert _heat(v.rate_pane.object).zmax == pytest.approx(hi, rel=1e-5)
    v.t_index = 3
    assert (_heat(v.rate_pane.object).zmin, _heat(v.rate_pane.object).zmax) == pytest.approx((lo, hi), rel=1e-5)


# ------------------------------------------------------------------------- saliency
@pytest.fixture()
def pairs(tmp_path):
    data = tmp_path / "pairs"
    data.mkdir()
    rng = np.random.default_rng(3)
    for name in ("1654", "1668"):
        Image.fromarray(rng.integers(0, 255, (30, 40, 3), dtype=np.uint8)).save(data / f"{name}.png")
        fix = np.zeros((30, 40), np.uint8)
        fix[rng.integers(0, 30, 12), rng.integers(0, 40, 12)] = 255
        Image.fromarray(fix).save(data / f"{name}_map.png")
    return data


def test_saliency_matches_osie_sample_names_and_notices_new_cubes(tmp_path, pairs):
    from dashboards.saliency import SaliencyView, match_cubes

    assert match_cubes({"1654", "1668", "9"}, {"osie-1654", "1668", "osie-1668", "x-9"}) == \
        {"1654": "osie-1654", "1668": "1668"}
    st = CubeStore(tmp_path / "store")
    ctx = AppContext.from_paths(st.path, dataset=pairs)
    v = SaliencyView(ctx)
    assert v.items == [] and "Re-read the store" in v.message.object and v.download.disabled
    # cubes computed while the server runs, by another process's store object (as `workbench cubes` would)
    other = CubeStore(tmp_path / "store")
    other.put(synthetic_cube(16, 16, 30, name="osie-1654", seed=1))  # the shipped sample's name
    v.refresh()
    assert [it.name for it in v.items] == ["1654"] and not v.download.disabled
    assert SaliencyView(ctx).items[0].name == "1654"  # a new tab sees it too
    other.put(synthetic_cube(16, 16, 30, name="1668", seed=2))
    assert [it.name for it in SaliencyView(ctx).items] == ["1654", "1668"]


def test_export_with_nothing_matched_says_so(tmp_path, pairs):
    from dashboards.saliency import SaliencyView

    ctx = AppContext.from_paths(CubeStore(tmp_path / "store").path, dataset=pairs)
    v = SaliencyView(ctx)
    with pytest.raises(WorkbenchError, match="nothing to export"):
        v.export_zip()
    note = v._export_download()  # what the button gets: a note, never StopIteration
    assert b"nothing to export" in note.getvalue() and v.download.filename.endswith(".txt")
    assert v.message.visible and "nothing to export" in v.message.object


def test_saliency_tables_use_the_fields_names_and_one_sort_order(tmp_path, pairs):
    from dashboards.saliency import SaliencyView

    st = CubeStore(tmp_path / "store")
    for i, name in enumerate(("1654", "1668")):
        st.put(synthetic_cube(16, 16, 30, name=name, seed=i))
    v = SaliencyView(AppContext.from_paths(st.path, dataset=pairs))
    cols = list(v.table.value.columns)
    assert {"AUC-Judd", "AUC-Borji", "sAUC", "NSS", "CC", "SIM", "KLD"} <= set(cols) and "AUC_Judd" not in cols
    assert cols[0] == "image" and "NSS − centre bias" in cols
    assert set(v.averages.value["map"]) >= {"fluctuation", "centre bias", "spectral residual"}
    assert v.table.sortable is False and v.table.layout == "fit_columns"  # no second order; fits the width
    v.sort_by = "AUC_Judd"
    assert "AUC-Judd − centre bias" in v.table.value.columns
    auc = v.table.value["AUC-Judd"].to_numpy()
    assert np.all(np.diff(auc) <= 0)


# ------------------------------------------------------------------------- edit
def test_edit_alert_goes_once_a_region_is_drawn_and_knobs_are_bounded(tmp_path):
    from dashboards.edit import MIN_EDIT_STEPS, EditView, check_knobs

    v = EditView(AppContext.from_paths(tmp_path / "s"))
    assert v.launch() is None and v.message.visible and "select a region" in v.message.object
    H, W = v.size
    v.select_box(W * 0.2, H * 0.2, W * 0.5, H * 0.5)
    assert not v.message.visible
    v.task = "transfer"
    assert v.launch() is None and "reference" in v.message.object
    v.set_reference(2, 2)
    assert not v.message.visible
    for n_iter, steps in ((0, 10), (10, 2), (10, 1), (-3, 10)):
        with pytest.raises(WorkbenchError):
            check_knobs(n_iter, steps)
    check_knobs(1, MIN_EDIT_STEPS)
    with pytest.raises(ValueError):
        v.n_iter = 0
    with pytest.raises(ValueError):
        v.steps = 2


def test_edit_status_never_shows_nan_or_inf_and_names_the_phase(tmp_path):
    from dashboards.edit import EditView

    v = EditView(AppContext.from_paths(tmp_path / "s"))
    job = Job(lambda report, stop: None)
    job.started_at = time.perf_counter() - 3
    job._report(progress=Progress("invert", 0, 200, loss=float("nan"), best_loss=float("nan")))
    text = v.progress_text(job)
    assert text.startswith("inverting") and "nan" not in text and "3.0 s" in text
    job._report(progress=Progress("optimise", 12, 200, loss=0.25, best_loss=float("inf")))
    text = v.progress_text(job)
    assert text.startswith("optimising 12/200") and "inf" not in text and "loss 0.25" in text
    job._report(progress=Progress("evaluate", 200, 200, loss=0.1, best_loss=0.09))
    assert v.progress_text(job).startswith("evaluating")


def test_metric_labels_do_not_break_the_markdown_table():
    from dashboards.edit import METRIC_LABELS, format_metric

    assert not [v for v in METRIC_LABELS.values() if "|" in v]  # a "|" would split the table's row
    assert format_metric(float("nan")) == "n/a" and format_metric(float("inf")).startswith("inf")
    assert format_metric(2.2e-07) == "2.200e-07" and format_metric(24.123) == "24.12"


# ------------------------------------------------------------------------- uncertainty: bands, mask
def _fluct_ref(rate: np.ndarray, ts: np.ndarray, L: int, t_b: float, normalise: bool) -> np.ndarray:
    """Windowed variance averaged over windows by explicit loops (independent of analysis.fluctuation)."""
    c = rate[ts > t_b]
    if normalise:
        c = c / c.sum(0)
    n = c.shape[0]
    return sum(((c[w:w + L] - c[w:w + L].mean(0)) ** 2).mean(0) for w in range(n - L + 1)) / (n - L + 1)


def _z_ref(rate, se, ts, L, t_b, normalise, h=1e-6):
    """z = (F - median F) / se(F), se(F) by central differences of F along each sample (delta method)."""
    F = _fluct_ref(rate, ts, L, t_b, normalise)
    var = np.zeros_like(F)
    for t in range(rate.shape[0]):
        step = h * np.maximum(np.abs(rate[t]), 1e-12)
        up, down = rate.copy(), rate.copy()
        up[t] += step
        down[t] -= step
        g = (_fluct_ref(up, ts, L, t_b, normalise) - _fluct_ref(down, ts, L, t_b, normalise)) / (2 * step)
        var += (g * se[t]) ** 2
    return F, (F - np.median(F)) / np.sqrt(var)


@pytest.fixture()
def se_ctx(tmp_path):
    """A store with one cube with standard errors (10% relative) and one without (NaN: unknown)."""
    st = CubeStore(tmp_path / "store")
    st.put(synthetic_cube(12, 14, 24, name="a-se", seed=5, relative_se=0.1))
    st.put(synthetic_cube(12, 14, 24, name="b-nose", seed=6))
    return AppContext.from_paths(st.path, device="cpu"), st


def test_band_trace_is_a_closed_translucent_polygon_without_hover_or_legend():
    ts, v, h = np.array([1, 5, 9]), np.array([1.0, 2.0, 4.0]), np.array([0.5, 0.1, np.nan])
    tr = figures.band_trace(ts, v, h, "#0072B2")
    np.testing.assert_allclose(tr.x, [1, 5, 9, 9, 5, 1])
    np.testing.assert_allclose(tr.y, [1.5, 2.1, 4.0, 4.0, 1.9, 0.5])  # upper, then lower reversed; NaN -> no band
    assert tr.fill == "toself" and tr.fillcolor == "rgba(0,114,178,0.2)"
    assert tr.hoverinfo == "skip" and tr.showlegend is False
    fig = figures.curves_figure(ts, [("a", v), ("b", 2 * v)], bands=[h, None], note="band: ±2 SE")
    assert [t.fill for t in fig.data] == ["toself", None, None]  # bands below, the curves last
    assert fig.data[1].line.color == fig.data[0].line.color
    assert any(a.text == "band: ±2 SE" for a in fig.layout.annotations)


def test_explore_draws_2se_bands_normalised_like_the_curve(se_ctx):
    from dashboards.explore import ExploreView

    ctx, st = se_ctx
    key = next(e["key"] for e in st.index() if e["name"] == "a-se")
    ds = st.open(key)
    rate, se, ts = (np.asarray(ds[k].values, dtype=np.float64) for k in ("rate", "rate_se", "timestep"))
    v = ExploreView(ctx, normalise=False)
    v.cube = key
    v.click(3, 4)
    v.click(7, 10)
    fig = v.curve_pane.object
    bands = [t for t in fig.data if t.fill == "toself"]
    lines = [t for t in fig.data if t.fill != "toself"]
    assert len(bands) == 2 and len(lines) == 2
    for band, line, (y, x) in zip(bands, lines, [(3, 4), (7, 10)]):
        n = len(ts)
        np.testing.assert_allclose(band.y[:n], rate[:, y, x] + 2 * se[:, y, x], rtol=1e-6)
        np.testing.assert_allclose(band.y[n:][::-1], rate[:, y, x] - 2 * se[:, y, x], rtol=1e-6)
        assert band.line.color == line.line.color and band.showlegend is False
    assert any("±2 SE" in a.text for a in fig.layout.annotations)
    v.t_b, v.normalise = 200, True
    band = [t for t in v.curve_pane.object.data if t.fill == "toself"][0]
    s = rate[ts > 200, 3, 4].sum()
    np.testing.assert_allclose(band.y[:len(ts)], (rate[:, 3, 4] + 2 * se[:, 3, 4]) / s, rtol=1e-6)


def test_explore_without_standard_errors_draws_no_band_and_says_so(se_ctx):
    from dashboards.explore import NO_SE_TEXT, ExploreView

    ctx, st = se_ctx
    key = next(e["key"] for e in st.index() if e["name"] == "b-nose")
    v = ExploreView(ctx)
    v.cube = key
    v.click(2, 2)
    fig = v.curve_pane.object
    assert [t.fill for t in fig.data] == [None]
    # a Hutchinson cube stored with unknown (NaN) SEs: an older cube put into a schema-3 store
    assert any(a.text == NO_SE_TEXT for a in fig.layout.annotations)
    assert v.sig_box.disabled and v.sig_note.visible
    # a cube written before schema 3 (no rate_se variable at all)
    old = st.open(key).drop_vars("rate_se").load()
    ctx.catalog.open = lambda _k: old
    v.cube = next(e["key"] for e in st.index() if e["name"] == "a-se")
    v.click(1, 1)
    assert [t.fill for t in v.curve_pane.object.data] == [None]
    assert any(a.text == NO_SE_TEXT for a in v.curve_pane.object.layout.annotations)
    v.significant_only = True  # no SEs: nothing is masked, and the title says why
    assert np.isfinite(_heat(v.fluct_pane.object).z).all() and "not masked" in v.fluct_pane.object.layout.title.text


def test_explore_masks_the_fluctuation_map_to_significant_pixels(se_ctx):
    from dashboards.explore import ExploreView

    ctx, st = se_ctx
    key = next(e["key"] for e in st.index() if e["name"] == "a-se")
    ds = st.open(key)
    rate, se, ts = (np.asarray(ds[k].values, dtype=np.float64) for k in ("rate", "rate_se", "timestep"))
    v = ExploreView(ctx, normalise=True, window=3, t_b=0)
    v.cube = key
    assert not v.sig_box.disabled and np.isfinite(_heat(v.fluct_pane.object).z).all()
    v.significant_only = True
    for window, t_b, normalise, side in ((3, 0, True, "higher"), (5, 300, False, "lower"), (3, 0, True, "lower")):
        v.window, v.t_b, v.normalise, v.significance_side = window, t_b, normalise, side
        F, z = _z_ref(rate, se, ts, window, t_b, normalise)
        clear = np.abs(np.abs(z) - 2) > 1e-3  # leave out pixels on the threshold (finite-difference noise)
        shown = _heat(v.fluct_pane.object).z
        keep = z > 2 if side == "higher" else z < -2  # one-sided, as the label says
        assert 0 < keep.sum() < keep.size  # the check can fail both ways
        np.testing.assert_array_equal(np.isfinite(shown)[clear], keep[clear])
        np.testing.assert_allclose(np.asarray(shown)[keep & clear], F[keep & clear], rtol=1e-5)
        title = v.fluct_pane.object.layout.title.text
        assert f"{100 * keep.mean():.0f}% of pixels, F significantly {side}<br>than the image median" in title, title
        assert "one-sided z" in title
    v.significant_only = False
    assert np.isfinite(_heat(v.fluct_pane.object).z).all()
