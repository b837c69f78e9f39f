"""cache.open: a whole store as one DataTree, and selection by name, key, key prefix or path."""
from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from cache import open_store, schema, slots
from cache.store import CubeStore
from workbench.errors import WorkbenchError

from test_cache_format import _two_slot_group
from test_cache_store import synthetic_cube


def test_open_store_datatree_and_select(tmp_path):
    store = CubeStore(tmp_path / "st")
    path, a, b = _two_slot_group(store)
    slots.write_slot(path, 0, a.rate.values, a.image.values)
    c = synthetic_cube(3, name="c")
    store.put(c)
    tree = open_store(tmp_path / "st")
    assert isinstance(tree, xr.DataTree)
    assert set(tree.children) == {"b-test", f"c-{c.attrs['key']}"} and tree.attrs["format"] == schema.STORE_FORMAT
    for image, ref in (("a", a), (a.attrs["key"], a), (a.attrs["key"][:10], a), ("/data/a.png", a), ("c", c)):
        got = tree.curves.select(image)
        np.testing.assert_array_equal(got.rate.values, ref.rate.values)
        assert got.attrs["key"] == ref.attrs["key"]
    got = tree["b-test"].dataset.curves.select(image="a")
    assert got.rate.dims == ("t", "y", "x") and got.attrs["name"] == "a"
    with pytest.raises(WorkbenchError, match="no complete cube of 'b'"):  # its done flag is 0
        tree.curves.select("b")
    with pytest.raises(WorkbenchError, match="no complete cube"):
        tree["b-test"].dataset.curves.select("zebra")
    with pytest.raises(WorkbenchError, match="not a cube store"):
        open_store(tmp_path)
