"""analysis.cubes: saving and opening cubes, and every cube under a store, a folder or one path."""
from __future__ import annotations

import numpy as np
import pytest

from analysis.cubes import cube_name, open_cube, open_cubes, save_cube
from cache.store import CubeStore
from workbench.errors import WorkbenchError

from test_cache_store import synthetic_cube


def test_save_then_open_round_trips_and_never_replaces_a_foreign_folder(tmp_path):
    ds = synthetic_cube(1, name="cat")
    assert cube_name(ds) == "cat"
    path = save_cube(ds, tmp_path / "cat.zarr")
    assert not (tmp_path / "cat.zarr.partial").exists()
    back = open_cube(path)
    np.testing.assert_array_equal(back.rate.values, ds.rate.values)
    save_cube(synthetic_cube(2, name="cat"), path)  # a cube written here is replaced
    np.testing.assert_array_equal(open_cube(path).rate.values, synthetic_cube(2, name="cat").rate.values)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    with pytest.raises(WorkbenchError, match="exists and is not a Zarr cube"):
        save_cube(ds, tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep"
    with pytest.raises(WorkbenchError, match="is not a readable cube"):
        open_cube(tmp_path / "mine")


def test_open_cubes_from_a_store_a_folder_or_one_cube(tmp_path):
    st = CubeStore(tmp_path / "st")
    st.put(synthetic_cube(1, name="a"))
    st.put(synthetic_cube(2, name="b"))
    assert sorted(n for n, _ in open_cubes(tmp_path / "st")) == ["a", "b"]
    assert sorted(n for n, _ in open_cubes(tmp_path / "st", params={"K": 4})) == ["a", "b"]
    with pytest.raises(WorkbenchError, match="holds no complete cubes with {'K': 5}"):
        list(open_cubes(tmp_path / "st", params={"K": 5}))
    folder = tmp_path / "folder"
    for s, n in ((3, "y"), (4, "x")):
        save_cube(synthetic_cube(s, name=n), folder / f"{n}.zarr")
    got = list(open_cubes(folder))
    assert [n for n, _ in got] == ["x", "y"]
    np.testing.assert_array_equal(got[0][1].rate.values, synthetic_cube(4, name="x").rate.values)
    assert [n for n, _ in open_cubes(folder / "y.zarr")] == ["y"]
    with pytest.raises(WorkbenchError, match="no such cube store or cube"):
        list(open_cubes(tmp_path / "nope"))
    with pytest.raises(WorkbenchError, match="neither a cube store nor a folder of .zarr cubes"):
        list(open_cubes(tmp_path))
