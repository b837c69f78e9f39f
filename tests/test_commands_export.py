"""`workbench export` (workbench.commands.export): the maps of every cube, as analysis.export computes them,
in a marked output folder."""
from __future__ import annotations

import json

import numpy as np

from analysis.export import cube_maps
from cache.store import CubeStore
from workbench.cli import main

from test_cache_store import synthetic_cube


def test_export_writes_each_cubes_fluctuation_map(tmp_path, capsys):
    st = CubeStore(tmp_path / "st")
    cubes = {"a": synthetic_cube(1, name="a"), "b": synthetic_cube(2, name="b")}
    for ds in cubes.values():
        st.put(ds)
    out = tmp_path / "out"
    assert main(["export", str(tmp_path / "st"), "--out", str(out), "--format", "npy", "--window", "3",
                 "--t-b", "0"]) == 0
    assert "exported 2 images (fluctuation, L=3, t_b=0)" in capsys.readouterr().out
    for name, ds in cubes.items():
        want, _ = cube_maps(ds, "fluctuation", window=3, t_b=0)["fluctuation"]
        np.testing.assert_allclose(np.load(out / "fluctuation" / f"{name}.npy"), want, rtol=1e-6)
    assert "files" in json.loads((out / ".workbench-output.json").read_text())
