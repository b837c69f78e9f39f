"""The accumulated curve: the kernel against an independent loop, and every reader of curves offering it
(the accessor, `workbench query --curve`, the fluctuation, the information experiment's features)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from analysis.features import curve_features, feature_names
from analysis.fluctuation import fluctuation, fluctuation_map
from cache.store import CubeStore
from workbench.cli import main as cli
from workbench.curve_kinds import accumulated, accumulated_se, step_widths
from workbench.errors import WorkbenchError
from workbench.fluctuation import fluctuation as raw_fluctuation

from test_cache_store import synthetic_cube


def _independent(rate: np.ndarray, ts: np.ndarray) -> np.ndarray:
    """A(t_i) = sum over the generation steps j >= i of rate_j * (t_j - t_{j-1}), the last step as wide as
    the first gap: a plain double loop, in generation order."""
    N = len(ts)
    out = np.zeros(rate.shape, dtype=np.float64)
    total = np.zeros(rate.shape[1:], dtype=np.float64)
    for j in range(N - 1, -1, -1):  # generation order: the largest timestep first
        width = ts[j] - ts[j - 1] if j > 0 else ts[1] - ts[0]
        total = total + rate[j].astype(np.float64) * width
        out[j] = total
    return out


def test_accumulated_matches_an_independent_loop():
    rng = np.random.default_rng(0)
    ts = np.array([1, 21, 41, 81, 121, 201, 401, 981])  # uneven widths
    rate = rng.random((len(ts), 5, 4)).astype(np.float32)
    np.testing.assert_allclose(accumulated(rate, ts, axis=0), _independent(rate, ts), rtol=1e-12)
    # time on the last axis, curves (P, N)
    curves = rate.reshape(len(ts), -1).T
    np.testing.assert_allclose(accumulated(curves, ts), _independent(rate, ts).reshape(len(ts), -1).T, rtol=1e-12)
    # closed form: a constant rate 1 on an even grid accumulates (N - i) * dt
    even = np.arange(50) * 20 + 1
    np.testing.assert_allclose(accumulated(np.ones(50), even), (50 - np.arange(50)) * 20.0)
    np.testing.assert_array_equal(step_widths(even), np.full(50, 20.0))
    # monotone in generation order, whole integral at the smallest timestep
    a = accumulated(rate, ts, axis=0)
    assert (np.diff(a, axis=0) <= 0).all()
    assert a[0].sum() == pytest.approx((rate.astype(np.float64) * step_widths(ts)[:, None, None]).sum())
    np.testing.assert_allclose(accumulated_se(rate, ts, axis=0), a)


def test_accumulated_rejects_bad_grids():
    with pytest.raises(WorkbenchError, match="strictly ascending"):
        accumulated(np.ones(3), [5, 3, 1])
    with pytest.raises(WorkbenchError, match="one timestep per"):
        accumulated(np.ones(4), [1, 2, 3])
    with pytest.raises(WorkbenchError, match="unknown curve kind"):
        fluctuation(np.ones((4, 2, 2)), np.arange(4), curve="integral")


def test_accessor_offers_the_accumulated_curve(tmp_path):
    ds = synthetic_cube(4)
    ds["rate_se"] = ds.rate * 0.1
    ts = ds.timestep.values
    ref = _independent(ds.rate.values, ts)
    got = ds.curves.pixel(3, 2, kind="accumulated")
    np.testing.assert_allclose(got.values, ref[:, 3, 2], rtol=1e-6)
    np.testing.assert_allclose(got.rate_se.values, _independent(ds.rate_se.values, ts)[:, 3, 2], rtol=1e-6)
    mask = np.zeros(ds.rate.shape[1:], bool)
    mask[2:5, 1:4] = True
    np.testing.assert_allclose(ds.curves.region(mask, kind="accumulated").values, ref[:, mask].mean(1), rtol=1e-6)
    np.testing.assert_allclose(ds.curves.at(int(ts[2]), kind="accumulated").values, ref[2], rtol=1e-6)
    np.testing.assert_allclose(ds.curves.accumulated().values, ref, rtol=1e-6)
    np.testing.assert_allclose(ds.curves.pixel(3, 2).values, ds.rate.values[:, 3, 2])  # the default is unchanged


def test_query_curve_accumulated(tmp_path, capsys):
    ds = synthetic_cube(5)
    st = str(tmp_path / "st")
    CubeStore(st).put(ds)
    capsys.readouterr()
    assert cli(["query", st, "--image", "img", "--pixel", "5,7", "--curve", "accumulated", "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    my, mx = ds.curves.source_pixel(5, 7)
    np.testing.assert_allclose(out["accumulated"], _independent(ds.rate.values, ds.timestep.values)[:, my, mx],
                               rtol=1e-6)
    assert out["curve"] == "accumulated" and "rate" not in out
    assert cli(["query", st, "--image", "img", "--pixel", "5,7", "--curve", "accumulated"]) == 0
    assert "timestep,accumulated,accumulated_se" in capsys.readouterr().out
    assert cli(["query", st, "--image", "img", "--pixel", "5,7", "--curve", "integral"]) == 2
    assert "--curve: invalid choice: 'integral'" in capsys.readouterr().err


def test_fluctuation_and_features_of_the_accumulated_curve():
    ds = synthetic_cube(6)
    rate, ts = ds.rate.values, ds.timestep.values
    acc = _independent(rate, ts)
    np.testing.assert_allclose(fluctuation(rate, ts, window=3, t_b=0, curve="accumulated"),
                               raw_fluctuation(acc, ts, window=3, t_b=0, normalise=True), rtol=1e-10)
    m = fluctuation_map(ds.rate, window=3, t_b=0, curve="accumulated")
    assert m.attrs["curve"] == "accumulated" and m.attrs["long_name"].startswith("fluctuation")
    np.testing.assert_allclose(m.values, raw_fluctuation(acc, ts, window=3, t_b=0, normalise=True), rtol=1e-10)
    feats = curve_features(rate, ts, windows=(3,), curve="accumulated")
    assert list(feats) == feature_names(ts, windows=(3,), curve="accumulated")
    assert "peak_t" not in feats and "peak_height" not in feats
    np.testing.assert_allclose(feats["log_mean"], np.log(acc.mean(0)), rtol=1e-10)
    assert list(curve_features(rate, ts, windows=(3,))) == feature_names(ts, windows=(3,))


def test_information_experiment_checks_its_curves():
    from analysis.information import InformationExperiment, _stream

    with pytest.raises(WorkbenchError, match="--curves"):
        InformationExperiment(store="s", data="d", curves=("integral",))
    assert _stream("h", "accumulated") == "h+accumulated" and _stream("eps", "rate") == "eps"


def test_explore_plots_the_accumulated_curve(tmp_path):
    from dashboards.context import AppContext
    from dashboards.explore import ExploreView

    ds = synthetic_cube(7)
    ds["rate_se"] = ds.rate * 0.1
    st = CubeStore(tmp_path / "st")
    key = st.put(ds)
    v = ExploreView(AppContext.from_paths(st.path, device="cpu"), normalise=False)
    v.cube = key
    v.click(3, 4)
    line = [t for t in v.curve_pane.object.data if t.fill != "toself"][-1]
    np.testing.assert_allclose(line.y, ds.rate.values[:, 3, 4], rtol=1e-6)
    v.curve_kind = "accumulated"
    fig = v.curve_pane.object
    line = [t for t in fig.data if t.fill != "toself"][-1]
    band = [t for t in fig.data if t.fill == "toself"][-1]
    ref, ref_se = (_independent(a, ds.timestep.values)[:, 3, 4] for a in (ds.rate.values, ds.rate_se.values))
    np.testing.assert_allclose(line.y, ref, rtol=1e-6)
    np.testing.assert_allclose(band.y[:len(ref)], ref + 2 * ref_se, rtol=1e-6)
    assert "accumulated" in fig.layout.yaxis.title.text


def test_information_experiment_reads_the_accumulated_curve_beside_the_per_step_one(tmp_path):
    from test_analysis_information import _make, _run

    data, store = _make(tmp_path)
    out = tmp_path / "out"
    assert _run(data, store, out, "--min-train", "5", "--curves", "rate,accumulated") == 0
    res = json.loads((out / "results.json").read_text())
    assert res["config"]["curves"] == ["rate", "accumulated"]
    assert {"curves[h]", "curves[h+accumulated]", "curves[h+accumulated]+lowlevel"} <= set(res["families"])
    assert "timesteps[h+accumulated]" not in res["families"] and list(res["per_timestep"]) == ["h"]
    assert {"h:fluct_L3", "h+accumulated:fluct_L3", "h+accumulated:log_mean"} <= set(res["single"])
    assert not any(k.startswith("h+accumulated:peak") for k in res["single"])
    assert set(res["key"]) == {"h", "h+accumulated"} and "h+accumulated:fluct_L3" in res["map_density"]
    assert res["families"]["curves[h+accumulated]"]["n_test"] == res["families"]["curves[h]"]["n_test"]
