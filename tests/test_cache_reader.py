"""cache.reader: a group's per-slot array read lazily through xarray gives the values that were stored."""
from __future__ import annotations

import numpy as np
import xarray as xr
from xarray.core import indexing

from cache import integrity
from cache.reader import SlotArray
from cache.store import CubeStore

from test_cache_store import synthetic_cube


def test_slot_array_reads_the_stored_values(tmp_path):
    st = CubeStore(tmp_path / "st")
    ds = synthetic_cube(1, name="a")
    key = st.put(ds)
    group = next(p.parent for p in (tmp_path / "st").rglob("zarr.json") if (p.parent / "rate").exists())
    arr = SlotArray(group, "rate", integrity.array_info(group, "rate"), [key], bound=integrity.is_protected(group))
    v = xr.Variable(("image_id", "t", "y", "x"), indexing.LazilyIndexedArray(arr))
    assert v.shape == (1, *ds.rate.shape)
    np.testing.assert_array_equal(v.values[0], ds.rate.values)
    np.testing.assert_array_equal(v[0, 2, 3:5].values, ds.rate.values[2, 3:5])
