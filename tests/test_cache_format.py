"""The on-disk format as other tools see it: plain xarray/zarr opens labelled groups without a warning,
consolidated metadata stays current, older groups read alike, one DataTree entry point, and the
reader of docs/format.md runs against a real store without this package."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import zarr

from cache import open_store, schema, slots
from cache.params import CubeParams
from cache.store import CubeStore, group_spec_of

from test_cache_store import synthetic_cube

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny_adapter_pixel(tiny_pixel_dir):
    from workbench.adapters import load_model

    return load_model(tiny_pixel_dir, device="cpu")


def _two_slot_group(store: CubeStore, gid: str = "b-test") -> tuple[Path, xr.Dataset, xr.Dataset]:
    a, b = synthetic_cube(1, name="a"), synthetic_cube(2, name="b")
    spec = group_spec_of(a)
    spec = slots.GroupSpec(spec.shape, spec.image_shape, spec.timesteps, spec.alphas, spec.attrs,
                           spec.slots + group_spec_of(b).slots)
    path = slots.create_group(store.group_path(gid), spec)
    return path, a, b


def _open_plain(path: Path) -> xr.Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the consolidated-metadata RuntimeWarning (or any other) fails
        return xr.open_zarr(path)


def test_group_opens_with_plain_xarray_labelled_and_without_warning(tmp_path):
    store = CubeStore(tmp_path / "st")
    path, a, b = _two_slot_group(store)
    slots.write_slot(path, 0, a.rate.values, a.image.values)
    ds = _open_plain(path)
    assert list(ds.image_id.values) == ["a", "b"]
    assert list(ds.key.values) == [a.attrs["key"], b.attrs["key"]]
    assert list(ds.source.values) == ["/data/a.png", "/data/b.png"]
    assert {"image_id", "key", "source", "done", "timestep", "step", "y", "x", "source_y_bounds",
            "source_x_bounds"} <= set(ds.coords)
    assert list(ds.done.values) == [1, 0]
    N, H, W = a.rate.shape
    np.testing.assert_array_equal(ds.step.values, np.arange(N)[::-1])  # step 0 = the largest timestep
    np.testing.assert_array_equal(ds.timestep.values, a.timestep.values)
    np.testing.assert_array_equal(ds.y.values, np.arange(H))
    # the source-pixel bounds: model pixel y covers rows [y, y+1) * scale * H0 / iy of the 30x40 source
    iy, ix = a.image.shape[:2]
    f = 2 * 30 / iy
    np.testing.assert_allclose(ds.source_y_bounds.values[0], np.stack([np.arange(H) * f, np.arange(1, H + 1) * f], 1))
    assert ds.source_y_bounds.values[0, -1, 1] == pytest.approx(30.0)
    assert ds.source_x_bounds.values[1, -1, 1] == pytest.approx(40.0)
    # CF-style attributes on every variable and coordinate; units on every numeric one
    for name, v in ds.variables.items():
        assert v.attrs.get("long_name") and v.attrs.get("description"), name
        if v.dtype.kind in "iuf":
            assert "units" in v.attrs, name
    assert ds.rate.attrs["ancillary_variables"] == "rate_se"
    np.testing.assert_array_equal(ds.rate.isel(image_id=0).values, a.rate.values)
    # selecting by label with plain xarray
    np.testing.assert_array_equal(ds.rate.sel(image_id="a").values, a.rate.values)
    # the done coordinate follows the data: slot 1 written, a new open shows it
    slots.write_slot(path, 1, b.rate.values, b.image.values)
    assert list(_open_plain(path).done.values) == [1, 1]
    assert slots.is_consolidated(path)


def test_probe_statistics_are_marked(tmp_path):
    store = CubeStore(tmp_path / "st")
    spec = group_spec_of(synthetic_cube())
    spec = slots.GroupSpec(spec.shape, spec.image_shape, spec.timesteps, spec.alphas, spec.attrs, spec.slots,
                           stat_channels=3)
    ds = _open_plain(slots.create_group(store.group_path("c-stats"), spec))
    probe = [v for v in ds.data_vars if ds[v].attrs.get(schema.ROLE_ATTR) == schema.PROBE_ROLE]
    assert sorted(probe) == [schema.VAR_SUM_S, schema.VAR_SUM_SS]
    assert set(ds.attrs["probe_statistics"].split()) == set(probe)
    assert list(ds.data_vars)[:2] == ["rate", "rate_se"] and list(ds.data_vars)[-2:] == probe  # what is seen first
    science = ds.drop_vars(probe)
    assert {"rate", "rate_se"} <= set(science.data_vars) and not set(probe) & set(science.data_vars)


def test_consolidated_metadata_equals_zarrs_own(tmp_path):
    store = CubeStore(tmp_path / "st")
    path = store.group_path(f"c-{store.put(synthetic_cube())}")
    ours = json.loads((path / "zarr.json").read_text())["consolidated_metadata"]
    copy = tmp_path / "copy.zarr"
    shutil.copytree(path, copy)
    root = json.loads((copy / "zarr.json").read_text())
    root.pop("consolidated_metadata")
    (copy / "zarr.json").write_text(json.dumps(root))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zarr warns that consolidation is not in the v3 spec yet
        zarr.consolidate_metadata(str(copy))
    theirs = json.loads((copy / "zarr.json").read_text())["consolidated_metadata"]
    assert ours["metadata"] == theirs["metadata"] and ours["kind"] == theirs["kind"] == "inline"
    # a metadata change then consolidate: current again, and no partial file left behind
    g = zarr.open_group(str(path), mode="r+", use_consolidated=False)
    g["rate"].attrs["comment"] = "edited"
    assert not slots.is_consolidated(path)
    slots.consolidate(path)
    assert slots.is_consolidated(path) and not list(path.glob("*.partial*"))
    assert _open_plain(path).rate.attrs["comment"] == "edited"


def test_groups_written_before_labels_stay_readable(tmp_path, monkeypatch):
    """A group as the workbench wrote it before labels (no coordinates, attributes or consolidated
    metadata): the store reads it, and open_store shows it labelled like a new one."""
    with monkeypatch.context() as m:
        m.setattr(schema, "label_coords", lambda *a, **k: {})
        m.setattr(schema, "VAR_ATTRS", {})
        m.setattr(schema, "GROUP_ATTRS", {})
        m.setattr(slots, "consolidate", lambda path: None)
        old_store = CubeStore(tmp_path / "old")
        old_path, a, b = _two_slot_group(old_store)
        slots.write_slot(old_path, 1, b.rate.values, b.image.values)
    raw = json.loads((old_path / "zarr.json").read_text())
    assert "consolidated_metadata" not in raw and not (old_path / "key").exists()
    new_store = CubeStore(tmp_path / "new")
    new_path, *_ = _two_slot_group(new_store)
    slots.write_slot(new_path, 1, b.rate.values, b.image.values)
    old = open_store(tmp_path / "old")["b-test"].to_dataset()
    new = open_store(tmp_path / "new")["b-test"].to_dataset()
    for c in ("image_id", "key", "source", "done", "step", "y", "x", "source_y_bounds", "source_x_bounds"):
        o, n = old[c].values, new[c].values
        if n.dtype.kind in "TOU":
            assert [str(v) for v in o.ravel()] == [str(v) for v in n.ravel()], c
        else:
            np.testing.assert_array_equal(o, n, c)
    assert old.rate.attrs["long_name"] == "generation rate"
    cube = CubeStore(tmp_path / "old", create=False).open(b.attrs["key"])
    np.testing.assert_array_equal(cube.rate.values, b.rate.values)
    assert old.curves.select("b").attrs["key"] == b.attrs["key"]


def _reader_code() -> str:
    text = (ROOT / "docs" / "format.md").read_text()
    m = re.search(r"<!-- reader -->\s*```python\n(.*?)```", text, re.S)
    assert m, "docs/format.md lost its reader block"
    return m.group(1)


def test_format_page_reader_runs_without_this_package(tmp_path, tiny_adapter_pixel):
    """The ~20-line reader of docs/format.md, run in a fresh interpreter against a store the workbench
    computed: it must find the cube's curve and never import workbench, cache or analysis."""
    from PIL import Image

    rng = np.random.default_rng(0)
    img = tmp_path / "bird.png"
    Image.fromarray(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(img)
    store = CubeStore(tmp_path / "st")
    (key,) = store.build([img], tiny_adapter_pixel, CubeParams(K=2, steps=4, seed=1))
    code = _reader_code()
    assert len(code.strip().splitlines()) <= 25
    check = ("\nimport sys\nbad = sorted(m for m in sys.modules if m.split('.')[0] in ('workbench', 'cache', "
             "'analysis', 'dashboards'))\nassert not bad, bad\nprint('CURVE', ' '.join(f'{v:.9g}' for v in curve))\n")
    out = subprocess.run([sys.executable, "-W", "error::RuntimeWarning", "-c", code + check,
                          str(tmp_path / "st"), "bird", "3", "5"],
                         capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    line = [ln for ln in out.stdout.splitlines() if ln.startswith("CURVE ")][0]
    got = np.array([float(v) for v in line.split()[1:]])
    ref = store.open(key).rate.values[:, 5, 3]
    np.testing.assert_allclose(got, ref, rtol=1e-6)
