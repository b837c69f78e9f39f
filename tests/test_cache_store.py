"""Cube store: params, keys, schema round trip, content addressing, incomplete slots, bad stores, accessor."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import xarray as xr
from PIL import Image

from cache import schema, slots
from cache.build import compute_cube, cube_from_arrays
from cache.keys import cube_key, image_bytes
from cache.params import CubeParams
from cache.store import CubeStore
from workbench.errors import WorkbenchError


def synthetic_cube(seed: int = 0, N: int = 6, H: int = 12, W: int = 10, name: str = "img") -> xr.Dataset:
    rng = np.random.default_rng(seed)
    p = CubeParams(K=4, steps=N)
    attrs = {"model_fingerprint": "fp-test", "model_name": "synthetic", **p.as_attrs(), "scale": 2,
             "source_image": f"/data/{name}.png", "source_size": [30, 40], "package_version": "0",
             "schema_version": schema.SCHEMA_VERSION, "key": cube_key(rng.bytes(16), "fp-test", p), "complete": 1}
    return cube_from_arrays(rng.random((N, H, W), dtype=np.float32), np.arange(N, dtype=np.int64) * 20 + 1,
                            np.linspace(0.99, 0.1, N), rng.integers(0, 256, (2 * H, 2 * W, 3), dtype=np.uint8),
                            attrs=attrs)


# --- params and keys --------------------------------------------------------------------
def test_params_validate_and_round_trip():
    p = CubeParams(definition="eps", estimator="rsvd", K=8, seed=3, steps=20, channel=1)
    assert CubeParams.from_attrs(p.as_attrs()) == p
    assert CubeParams.from_attrs(CubeParams().as_attrs()) == CubeParams()
    assert p.as_attrs()["channel_rule"] == "channel 1"
    for bad in (dict(definition="nope"), dict(estimator="magic"), dict(K=0), dict(steps=-1), dict(seed=-2),
                dict(channel=-1), dict(K=2.5)):
        with pytest.raises(WorkbenchError):
            CubeParams(**bad)


def test_key_is_stable_and_sensitive(tmp_path):
    p = CubeParams(K=32, fixed_point=0)  # explicit: the pin is on the key recipe, not on the defaults
    k = cube_key(b"abc", "fp", p)
    # pinned: changing the key recipe orphans every stored cube, so it must be deliberate
    assert k == "2ea80725910caa876fae8109733b209f"
    assert k == cube_key(b"abc", "fp", CubeParams(definition="h", estimator="hutchinson", K=32, seed=0, steps=50,
                                                  fixed_point=0))
    others = {cube_key(b"abd", "fp", p), cube_key(b"abc", "fp2", p), cube_key(b"abc", "fp", CubeParams(K=33)),
              cube_key(b"abc", "fp", CubeParams(seed=1)), cube_key(b"abc", "fp", CubeParams(steps=49)),
              cube_key(b"abc", "fp", CubeParams(channel=0)), cube_key(b"abc", "fp", CubeParams(estimator="rsvd")),
              cube_key(b"abc", "fp", CubeParams(definition="eps")), cube_key(b"abc", "fp", CubeParams(K=32))}
    assert k not in others and len(others) == 9  # the last: the default fixed-point refined inversion
    # the same bytes under another name and folder give the same key; a new process agrees
    a, b = tmp_path / "a.png", tmp_path / "sub" / "b.png"
    b.parent.mkdir()
    Image.new("RGB", (5, 4), (10, 20, 30)).save(a)
    b.write_bytes(a.read_bytes())
    assert cube_key(image_bytes(a), "fp", p) == cube_key(image_bytes(b), "fp", p)
    code = ("from cache.keys import cube_key, image_bytes; from cache.params import CubeParams; "
            f"print(cube_key(image_bytes({str(a)!r}), 'fp', CubeParams(K=32, fixed_point=0)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONHASHSEED": "123"})
    assert out.stdout.strip() == cube_key(image_bytes(a), "fp", p)
    with pytest.raises(WorkbenchError, match="no such image"):
        image_bytes(tmp_path / "missing.png")


def test_model_identity_includes_a_non_default_dtype():
    import torch

    from cache.keys import model_identity

    class Fake:
        def __init__(self, dtype):
            self.dtype = dtype

        def fingerprint(self):
            return "abc"

    assert model_identity(Fake(torch.float32)) == "abc"  # float32 keys are the plain fingerprint
    assert model_identity(Fake(torch.float16)) == "abc@float16"


# --- store round trip ---------------------------------------------------------------------
def test_schema_round_trip(tmp_path):
    ds = synthetic_cube()
    store = CubeStore(tmp_path / "st")
    key = store.put(ds)
    assert key == ds.attrs["key"] and store.keys() == [key] and key in store
    back = store.open(key)
    assert back[schema.VAR_RATE].dims == ("t", "y", "x") and back[schema.VAR_RATE].dtype == np.float32
    assert back[schema.VAR_IMAGE].dims == ("iy", "ix", "rgb") and back[schema.VAR_IMAGE].dtype == np.uint8
    np.testing.assert_array_equal(back.rate.values, ds.rate.values)
    np.testing.assert_array_equal(back.image.values, ds.image.values)
    np.testing.assert_array_equal(back.timestep.values, ds.timestep.values)
    assert back.timestep.dtype == np.int64
    np.testing.assert_array_equal(back.alpha.values, ds.alpha.values)
    for k in schema.ATTR_KEYS:
        assert back.attrs[k] == ds.attrs[k], k
    assert "done" not in back and "slots" not in back.attrs
    # a second store object on the same folder sees it; putting again is a no-op
    again = CubeStore(tmp_path / "st", create=False)
    assert again.put(ds) == key and again.keys() == [key]
    row = again.index()[0]
    assert row["name"] == "img" and row["source_size"] == [30, 40] and row["K"] == 4
    assert again.find("img") == key and again.find("/data/img.png") == key and again.find(key) == key
    assert again.find("other") is None


def test_get_or_compute_does_not_recompute(tmp_path, tiny_pixel_dir, monkeypatch):
    from workbench.adapters import load_model
    from workbench.ddim import invert, make_schedule
    from workbench.estimators import ProbeOptions, rate_cube
    from workbench.images import read_image, to_tensor
    from workbench.rates import RateSpec

    adapter = load_model(tiny_pixel_dir, device="cpu")
    img = tmp_path / "x.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(img)
    params = CubeParams(K=4, steps=4, seed=1)
    store = CubeStore(tmp_path / "st")
    calls = []
    real = compute_cube
    monkeypatch.setattr("cache.build.compute_cube", lambda *a, **k: calls.append(1) or real(*a, **k))
    ds = store.get_or_compute(adapter, img, params)
    assert calls == [1]
    ds2 = CubeStore(tmp_path / "st").get_or_compute(adapter, img, params)
    assert calls == [1]  # served from the store
    np.testing.assert_array_equal(ds.rate.values, ds2.rate.values)
    assert ds.attrs["key"] == cube_key(img.read_bytes(), adapter.fingerprint(), params)
    assert ds.attrs["source_size"] == [20, 24] and ds.rate.shape == (4, *adapter.model_shape[1:])
    # independent path: the engine's inversion and estimator called directly
    x0 = adapter.encode(to_tensor(read_image(img), adapter.image_size)[None])[0]
    traj = invert(adapter, x0, make_schedule(adapter, 4))
    ref = rate_cube(adapter, traj, RateSpec("h", k=4), ProbeOptions("hutchinson", 4, 1)).numpy()
    np.testing.assert_allclose(ds.rate.values, ref, rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(ds.timestep.values, traj.schedule.timesteps.numpy())
    assert np.all(np.diff(ds.timestep.values) > 0)


# --- bad stores -----------------------------------------------------------------------------
def test_foreign_and_corrupt_stores_are_one_line_errors(tmp_path):
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("hello")
    with pytest.raises(WorkbenchError, match="not a cube store"):
        CubeStore(foreign)
    with pytest.raises(WorkbenchError, match="no cube store"):
        CubeStore(tmp_path / "absent", create=False)
    (tmp_path / "file").write_text("x")
    with pytest.raises(WorkbenchError, match="is a file"):
        CubeStore(tmp_path / "file")
    bad = tmp_path / "bad"
    CubeStore(bad)
    (bad / "store.json").write_text("{not json")
    with pytest.raises(WorkbenchError, match="corrupt"):
        CubeStore(bad)
    (bad / "store.json").write_text(json.dumps({"format": "something else"}))
    with pytest.raises(WorkbenchError, match="not a cube store"):
        CubeStore(bad)
    ok = tmp_path / "ok"
    store = CubeStore(ok)
    store.put(synthetic_cube())
    meta = next((ok / "groups").glob("*.zarr")) / "zarr.json"
    meta.write_text(meta.read_text()[:40])
    with pytest.raises(WorkbenchError, match="corrupt") as err:
        CubeStore(ok).keys()
    assert "\n" not in str(err.value)


def test_partials_swept_and_lock_exclusive(tmp_path):
    store = CubeStore(tmp_path / "st")
    dead = store.groups_dir / f"b-x.zarr.partial-{__import__('socket').gethostname()}-999999999"
    dead.mkdir()
    (dead / "zarr.json").write_text("{}")
    live = store.groups_dir / f"b-y.zarr.partial-{__import__('socket').gethostname()}-{os.getpid()}"
    live.mkdir()
    assert store.sweep() == [dead] and not dead.exists() and live.exists()
    with slots.group_lock(store.group_path("b-z")):
        with pytest.raises(WorkbenchError, match="another process"):
            with slots.group_lock(store.group_path("b-z")):
                pass





def test_store_creation_killed_before_marker_is_recovered(tmp_path):
    half = tmp_path / "half"
    half.mkdir()
    (half / "store.json.partial-4242").write_text('{"format": ')  # killed while writing the marker
    store = CubeStore(half)
    assert (half / "store.json").exists() and not list(half.glob("*.partial*")) and store.keys() == []
    with pytest.raises(WorkbenchError, match="not a cube store"):
        CubeStore(tmp_path / "half" / "groups", create=False)


def test_find_by_category_and_ambiguous_names(tmp_path):
    store = CubeStore(tmp_path / "st")
    a, b = synthetic_cube(1), synthetic_cube(2)
    a.attrs["source_image"], b.attrs["source_image"] = "/cat/Stimuli/Action/001.jpg", "/cat/Stimuli/Art/001.jpg"
    ka, kb = store.put(a), store.put(b)
    with pytest.raises(WorkbenchError, match="names 2 images"):
        store.find("001")
    assert store.find("Action/001") == ka and store.find("Art/001") == kb
    assert store.find("/cat/Stimuli/Art/001.jpg") == kb and store.find(kb[:10]) == kb
    assert store.find("001", params=CubeParams(K=5, steps=6)) is None
    assert sorted(r["key"] for r in store.find_all("001", K=4, steps=6)) == sorted([ka, kb])
    assert store.find_all("001", K=5) == [] and store.find("Art/001", rate_definition="h") == kb
