"""cache.accessor: the `ds.curves` queries against the stored arrays."""
from __future__ import annotations

import numpy as np
import pytest

from cache.store import CubeStore
from workbench.errors import WorkbenchError

from test_cache_store import synthetic_cube


def test_accessor_queries(tmp_path):
    ds = synthetic_cube(5)
    store = CubeStore(tmp_path / "st")
    cube = store.open(store.put(ds))
    r = ds.rate.values
    np.testing.assert_array_equal(cube.curves.pixel(3, 4).values, r[:, 3, 4])
    assert list(cube.curves.pixel(3, 4).timestep.values) == list(ds.timestep.values)
    mask = np.zeros((12, 10), bool)
    mask[2:5, 1:3] = True
    mask[9, 9] = True
    np.testing.assert_allclose(cube.curves.region(mask).values, r[:, mask].mean(1), rtol=1e-6)
    m = cube.curves.at(45)  # timesteps 1, 21, 41, 61 ...: nearest is 41
    assert int(m.timestep) == 41 and m.dims == ("y", "x")
    np.testing.assert_array_equal(m.values, r[2])
    # source 40x30 -> image 24x20 -> model 12x10 (scale 2)
    assert cube.curves.source_pixel(39, 29) == (11, 9) and cube.curves.source_pixel(0, 0) == (0, 0)
    assert cube.curves.source_pixel(20, 15) == (6, 5)
    with pytest.raises(WorkbenchError):
        cube.curves.pixel(12, 0)
    with pytest.raises(WorkbenchError):
        cube.curves.region(np.zeros((12, 10), bool))
    with pytest.raises(WorkbenchError):
        cube.curves.region(np.ones((3, 3), bool))


def test_open_many_stacks_cubes(tmp_path):
    store = CubeStore(tmp_path / "st")
    cubes = [synthetic_cube(s, name=f"n{s}") for s in range(3)]
    keys = [store.put(c) for c in cubes]
    many = store.open_many(keys[::-1])
    assert many.rate.dims == ("image_id", "t", "y", "x") and list(many["key"].values) == keys[::-1]
    np.testing.assert_array_equal(many.rate.values[0], cubes[2].rate.values)
    np.testing.assert_array_equal(many.curves.pixel(1, 2).values[:, 0], [c.rate.values[0, 1, 2] for c in cubes[::-1]])
    store.put(synthetic_cube(9, N=7, name="odd"))
    with pytest.raises(WorkbenchError, match="different grids"):
        store.open_many()
