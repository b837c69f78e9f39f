"""Cubes with standard errors and refinement: rate_se stored, old cubes still open, K -> 2K exact and crash-safe."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from PIL import Image

from cache import schema, slots
from cache.build import compute_cube, probe_stats_of
from cache.params import CubeParams, FluctuationParams
from cache.store import CubeStore
from workbench.errors import WorkbenchError

PARAMS = CubeParams(K=3, steps=3, seed=5)


@pytest.fixture(scope="module")
def adapter(tiny_pixel_dir):
    from workbench.adapters import load_model

    return load_model(tiny_pixel_dir, device="cpu")


@pytest.fixture()
def image(tmp_path):
    p = tmp_path / "im.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(p)
    return p


def test_new_cubes_store_rate_se_and_probe_statistics(tmp_path, adapter, image):
    store = CubeStore(tmp_path / "st")
    ds = store.get_or_compute(adapter, image, PARAMS)
    assert ds.attrs["schema_version"] == "3" and "note" not in ds.attrs
    assert ds.rate_se.dims == ds.rate.dims and ds.rate_se.dtype == np.float32
    C = adapter.model_shape[0]
    assert ds.probe_sum_s.shape == (3, C, *ds.rate.shape[1:]) and ds.probe_sum_s.dtype == np.float64
    # independent: rate and SE from the stored sums by hand (per-element mean/variance, delta method, C = 1 rule
    # checked on channel means by Monte Carlo below is overkill here; recompute the channel-mean formula directly)
    s1 = ds.probe_sum_s.values
    m = s1 / PARAMS.K
    np.testing.assert_allclose(ds.rate.values, np.sqrt(m).mean(1), rtol=1e-5)
    pairs = [(a, b) for a in range(C) for b in range(a, C)]
    s2 = ds.probe_sum_ss.values
    cov = np.zeros((3, C, C, *ds.rate.shape[1:]))
    for j, (a, b) in enumerate(pairs):
        cov[:, a, b] = cov[:, b, a] = (s2[:, j] - PARAMS.K * m[:, a] * m[:, b]) / (PARAMS.K - 1)
    w = 1 / (2 * C * np.sqrt(m))
    var = np.einsum("tayx,tabyx,tbyx->tyx", w, cov, w) / PARAMS.K
    np.testing.assert_allclose(ds.rate_se.values, np.sqrt(np.clip(var, 0, None)), rtol=1e-4, atol=1e-8)
    # the accessor carries the SE
    c = ds.curves.pixel(2, 3)
    np.testing.assert_array_equal(c.rate_se.values, ds.rate_se.values[:, 2, 3])
    r = ds.curves.at(int(ds.timestep[1]))
    np.testing.assert_array_equal(r.rate_se.values, ds.rate_se.values[1])
    mask = np.zeros(ds.rate.shape[1:], bool)
    mask[1:3, 2:4] = True
    np.testing.assert_allclose(ds.curves.region(mask).rate_se.values, ds.rate_se.values[:, mask].mean(1), rtol=1e-6)


def test_cubes_of_schema_2_still_open_with_a_note(tmp_path, monkeypatch):
    from test_cache_store import synthetic_cube

    with monkeypatch.context() as m:  # a group as schema 2 wrote it: no rate_se variable
        m.setattr("cache.schema.SCHEMA_VERSION", "2")
        orig = slots.create_group

        def create_v2(path, spec):
            out = orig(path, spec)
            import shutil

            shutil.rmtree(out / schema.VAR_RATE_SE)
            return out

        m.setattr(slots, "create_group", create_v2)
        store = CubeStore(tmp_path / "st")
        key = store.put(synthetic_cube())
    ds = CubeStore(tmp_path / "st", create=False).open(key)
    assert schema.VAR_RATE_SE not in ds and "before standard errors" in ds.attrs["note"]
    assert ds.curves.se is None and "rate_se" not in ds.curves.pixel(1, 1).coords
    assert ds.curves.at(1).shape == ds.rate.shape[1:]


def test_refine_k_to_2k_equals_2k_at_once(tmp_path, adapter, image, monkeypatch):
    import workbench.estimators as est

    calls = []
    real = est.hutchinson_cube_stats

    def spy(adapter, trajectory, spec, opts, **k):
        calls.append((opts.K, k.get("first", 0)))
        return real(adapter, trajectory, spec, opts, **k)

    monkeypatch.setattr(est, "hutchinson_cube_stats", spy)
    # a refinable store: the layout every batch had before probe statistics became opt-in
    k1 = CubeStore(tmp_path / "st", refinable=True).build([image], adapter, PARAMS)[0]
    store = CubeStore(tmp_path / "st")  # opened as any store is: its refinable cubes are refined
    calls.clear()
    k2 = store.refine([image], adapter, PARAMS, 2 * PARAMS.K)[0]
    assert calls == [(PARAMS.K, PARAMS.K)]  # only the K new probes ran, with disjoint indices K .. 2K-1
    once = compute_cube(adapter, image, CubeParams(K=2 * PARAMS.K, steps=PARAMS.steps, seed=PARAMS.seed))
    refined = store.open(k2)
    assert k2 == once.attrs["key"] and k1 in store  # the K cube is kept, readable
    np.testing.assert_allclose(refined.probe_sum_s.values, once.probe_sum_s.values, rtol=1e-12)
    np.testing.assert_allclose(refined.probe_sum_ss.values, once.probe_sum_ss.values, rtol=1e-12)
    np.testing.assert_allclose(refined.rate.values, once.rate.values, rtol=1e-6)
    np.testing.assert_allclose(refined.rate_se.values, once.rate_se.values, rtol=1e-5)
    assert int(refined.attrs["K"]) == 2 * PARAMS.K
    calls.clear()
    assert store.refine([image], adapter, PARAMS, 2 * PARAMS.K) == [k2] and calls == []  # already refined


def test_killed_refinement_leaves_the_old_cube_and_a_rerun_finishes(tmp_path, adapter, image, monkeypatch):
    store = CubeStore(tmp_path / "st")
    k1 = store.build([image], adapter, PARAMS)[0]
    before = store.open(k1).rate.values.copy()
    import cache.batch as batch

    def killed(path, i, *a, **k):
        zarr_rate = __import__("zarr").open_group(str(path), mode="r+")["rate"]
        zarr_rate[i] = np.zeros(zarr_rate.shape[1:], np.float32)  # half-written, then the process dies
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(batch.slots, "write_slot", killed)
        with pytest.raises(KeyboardInterrupt):
            store.refine([image], adapter, PARAMS, 2 * PARAMS.K)
    st = CubeStore(tmp_path / "st", create=False)
    assert st.keys() == [k1]
    np.testing.assert_array_equal(st.open(k1).rate.values, before)
    k2 = st.refine([image], adapter, PARAMS, 2 * PARAMS.K)[0]
    assert set(st.keys()) == {k1, k2}
    once = compute_cube(adapter, image, CubeParams(K=2 * PARAMS.K, steps=PARAMS.steps, seed=PARAMS.seed))
    np.testing.assert_allclose(st.open(k2).rate.values, once.rate.values, rtol=1e-6)


def test_refine_needs_hutchinson(tmp_path, adapter, image):
    store = CubeStore(tmp_path / "st")
    with pytest.raises(WorkbenchError, match="Hutchinson"):
        store.refine([image], adapter, CubeParams(K=2, steps=3, estimator="rsvd"), 4)


def test_cubes_refine_to_command(tmp_path, tiny_pixel_dir, capsys):
    from workbench.cli import main as cli

    folder = tmp_path / "imgs"
    folder.mkdir()
    Image.fromarray(np.random.default_rng(2).integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(folder / "a.png")
    common = ["--store", str(tmp_path / "st"), "--model", str(tiny_pixel_dir), "--steps", "3", "--seed", "5",
              "--device", "cpu"]
    assert cli(["cubes", str(folder), "--K", "2", *common]) == 0
    assert cli(["cubes", str(folder), "--refine-to", "4", *common]) == 0
    assert "(1 computed" in capsys.readouterr().out
    st = CubeStore(tmp_path / "st", create=False)
    assert sorted(r["K"] for r in st.index()) == [2, 4]
    assert cli(["cubes", str(folder), "--refine-to", "4", *common]) == 0  # rerun: nothing left to do
    assert "(0 computed" in capsys.readouterr().out


def test_query_prints_the_curves_standard_error(tmp_path, capsys):
    from test_cache_store import synthetic_cube

    from cache.build import cube_from_arrays
    from workbench.cli import main as cli

    ds = synthetic_cube(3, name="q")
    se = np.random.default_rng(0).random(ds.rate.shape).astype(np.float32) * 0.1
    ds = cube_from_arrays(ds.rate.values, ds.timestep.values, ds.alpha.values, ds.image.values, attrs=ds.attrs,
                          rate_se=se)
    store = CubeStore(tmp_path / "st")
    store.put(ds)
    assert cli(["query", str(tmp_path / "st"), "--image", "q", "--pixel", "4,6", "--format", "json"]) == 0
    import json

    out = json.loads(capsys.readouterr().out)
    y, x = store.open(ds.attrs["key"]).curves.source_pixel(4, 6)
    np.testing.assert_allclose(out["rate_se"], se[:, y, x], rtol=1e-6)
    assert cli(["query", str(tmp_path / "st"), "--image", "q", "--pixel", "4,6"]) == 0
    assert "timestep,rate,rate_se" in capsys.readouterr().out


#: a fluctuation map a 4-step tiny cube can give
FLUCT = FluctuationParams(window=2, t_b=0)


def test_until_stable_stops_at_the_stability_or_the_cap(tmp_path, adapter, image):
    from cache.build import split_half_stability

    a = np.random.default_rng(0).random((5, 6))
    assert split_half_stability(a, a) == pytest.approx(1.0)
    r = 0.5
    b = a + np.random.default_rng(1).random((5, 6))
    from scipy.stats import spearmanr

    r = spearmanr(a.ravel(), b.ravel()).statistic
    assert split_half_stability(a, b) == pytest.approx(2 * r / (1 + r))  # Spearman-Brown
    store = CubeStore(tmp_path / "st")
    params = CubeParams(K=4, steps=4, seed=5)
    seen = []
    easy = store.until_stable([image], adapter, params, 0.01, fluct=FLUCT, block=2, cap=16,
                              progress=lambda p: p.phase == "block" and seen.append((p.K, p.stability)))
    assert easy[0]["K"] == 4 and easy[0]["computed"] and seen[0][0] == 4
    hard = store.until_stable([image], adapter, params, 0.99999, fluct=FLUCT, block=2, cap=8)
    assert hard[0]["K"] == 8 and hard[0]["stability"] < 0.99999
    # the stable cube is the K-probe cube computed at once (same seed, probes 0 .. K-1)
    once = compute_cube(adapter, image, CubeParams(K=8, steps=4, seed=5))
    ds = store.open(hard[0]["key"])
    assert hard[0]["key"] == once.attrs["key"] and ds.attrs["until_stable"] == 0.99999
    np.testing.assert_allclose(ds.rate.values, once.rate.values, rtol=1e-6)
    again = store.until_stable([image], adapter, params, 0.01, fluct=FLUCT, block=2, cap=16)
    assert not again[0]["computed"]  # a cube stable enough is already stored


def test_cubes_until_stable_command(tmp_path, tiny_pixel_dir, capsys):
    from workbench.cli import main as cli

    folder = tmp_path / "imgs"
    folder.mkdir()
    Image.fromarray(np.random.default_rng(3).integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(folder / "b.png")
    args = ["cubes", str(folder), "--store", str(tmp_path / "st"), "--model", str(tiny_pixel_dir), "--steps", "4",
            "--K", "4", "--device", "cpu", "--until-stable", "0.999999", "--max-K", "8"]
    assert cli(args) == 0
    got = capsys.readouterr()
    out = got.out
    assert "b " in out and " 8 " in out and "1 computed" in out
    assert "# b: K=4 stability " in got.err and "# b: K=8 stability " in got.err  # one line per probe block
    assert cli(args) == 0 and "(already stored)" in capsys.readouterr().out


def test_open_many_mixes_cubes_with_and_without_rate_se(tmp_path, monkeypatch):
    from test_cache_store import synthetic_cube

    store = CubeStore(tmp_path / "st")
    with monkeypatch.context() as m:  # one group as schema 2 wrote it
        orig = slots.create_group

        def create_v2(path, spec):
            import shutil

            out = orig(path, spec)
            shutil.rmtree(out / schema.VAR_RATE_SE)
            meta = json.loads((out / "zarr.json").read_text())  # and its attributes as schema 2 wrote them
            meta["attributes"]["schema_version"] = "2"
            for k in ("layout", "content_digest"):
                meta["attributes"].pop(k, None)
            (out / "zarr.json").write_text(json.dumps(meta))
            slots.consolidate(out)
            return out

        m.setattr(slots, "create_group", create_v2)
        old = store.put(synthetic_cube(1, name="old"))
    new = store.put(synthetic_cube(2, name="new"))
    many = store.open_many([old, new])
    assert many.rate.shape[0] == 2 and schema.VAR_RATE_SE not in many
    assert schema.VAR_RATE_SE in store.open_many([new])


def _data_bytes(folder: Path) -> int:
    """Bytes of the chunk files under `folder` (the metadata, zarr.json, is once per group of many cubes)."""
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file() and f.name != "zarr.json")


def test_batch_cubes_keep_rate_and_se_only_unless_refinable(tmp_path, adapter, image):
    """Default batch cubes: no probe statistics, at most 2x the bytes of rate + rate_se; refining one
    runs all K2 probes and gives the one-go cube (with statistics, refinable further)."""
    store = CubeStore(tmp_path / "st")
    k1 = store.build([image], adapter, PARAMS)[0]
    ds = store.open(k1)
    assert schema.VAR_SUM_S not in ds and schema.VAR_SUM_SS not in ds and schema.VAR_RATE_SE in ds
    assert np.isfinite(ds.rate_se.values).all()
    group = store.group_path(store.index()[0]["group"])
    assert _data_bytes(group) <= 2 * (_data_bytes(group / "rate") + _data_bytes(group / "rate_se"))
    big = CubeStore(tmp_path / "big", refinable=True)
    kb = big.build([image], adapter, PARAMS)[0]
    assert kb == k1 and schema.VAR_SUM_S in big.open(kb)  # the same key: refinable or not is storage only
    np.testing.assert_array_equal(big.open(kb).rate.values, ds.rate.values)
    np.testing.assert_array_equal(big.open(kb).rate_se.values, ds.rate_se.values)
    k2 = store.refine([image], adapter, PARAMS, 2 * PARAMS.K)[0]  # nothing to add to: all K2 probes run
    once = compute_cube(adapter, image, CubeParams(K=2 * PARAMS.K, steps=PARAMS.steps, seed=PARAMS.seed))
    refined = store.open(k2)
    np.testing.assert_allclose(refined.rate.values, once.rate.values, rtol=1e-6)
    np.testing.assert_allclose(refined.rate_se.values, once.rate_se.values, rtol=1e-5)
    np.testing.assert_allclose(refined.probe_sum_s.values, once.probe_sum_s.values, rtol=1e-12)


def test_cubes_command_refinable_flag(tmp_path, tiny_pixel_dir, image):
    from workbench.cli import main

    for flag, has in (([], False), (["--refinable"], True)):
        st = tmp_path / f"st{len(flag)}"
        assert main(["cubes", str(image), "--store", str(st), "--model", str(tiny_pixel_dir), "--device", "cpu",
                     "--K", "2", "--steps", "2", *flag]) == 0
        s = CubeStore(st, create=False)
        assert (schema.VAR_SUM_S in s.open(s.keys()[0])) is has
