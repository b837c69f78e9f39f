"""Damage that checksums cannot see: `check` finds it, every read refuses it, `check --repair` heals it.

For every kind of damage (a group's metadata deleted or edited, a shared array flipped or deleted,
a done flag holding garbage, values written through zarr with valid checksums, another cube's
chunk copied in, a slot's attributes edited) the test asserts, on a copy of a store built by
`workbench cubes` with the tiny model:

1. `workbench check` exits 1 with a `DAMAGED` line;
2. `query` (a pixel's curve as CSV, a map as PNG) and `export` exit 2 with one line naming the cube and `workbench check ... --repair`
   (no traceback, nothing written);
3. `check --repair`, then the same `workbench cubes`, then `check` exits 0 and every cube equals
   the undamaged store's (rate, rate_se, image, probe statistics, same keys).
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import zarr

from cache.store import CubeStore
from workbench.cli import main as cli

from test_bad_inputs_store import error_lines, tree_hash, two_image_store

ARGS = ["--K", "4", "--steps", "4", "--device", "cpu"]


@pytest.fixture(scope="module")
def built(tmp_path_factory, tiny_pixel_dir):
    out = two_image_store(tmp_path_factory.mktemp("meaning"), tiny_pixel_dir, seed=1)
    out["rows"] = {r["name"]: r for r in CubeStore(out["store"], create=False).index()}
    return out


def _group(store: Path, row: dict) -> Path:
    return store / "groups" / f"{row['group']}.zarr"


def _edit_json(path: Path, fn) -> None:
    meta = json.loads(path.read_text())
    fn(meta)
    path.write_text(json.dumps(meta))


def _through_zarr(var: str, value):
    """Write `value` into slot a's first element of `var` through zarr (its checksum stays valid)."""
    def damage(g: Path, a: int, b: int) -> None:
        arr = zarr.open_array(str(g / var), mode="r+")
        arr[(a,) + (0,) * (arr.ndim - 1)] = value
    return damage


def _flip_timestep(g, a, b):
    f = g / "timestep" / "c" / "0"
    data = bytearray(f.read_bytes())
    data[len(data) // 2] ^= 0x01
    f.write_bytes(bytes(data))


def _copy_rate_chunk(g, a, b):
    src = sorted(p for p in (g / "rate" / "c" / str(b)).rglob("*") if p.is_file())[0]
    dst = g / "rate" / "c" / str(a) / src.relative_to(g / "rate" / "c" / str(b))
    shutil.copyfile(src, dst)


def _slot_attr(field, value):
    def damage(g, a, b):
        def fn(meta):
            meta["attributes"]["slots"][a][field] = value
        _edit_json(g / "zarr.json", fn)
    return damage


DAMAGES = {
    "timestep-bit-flipped": _flip_timestep,
    "rate-zarr.json-deleted": lambda g, a, b: (g / "rate" / "zarr.json").unlink(),
    "rate-shape-edited": lambda g, a, b: _edit_json(g / "rate" / "zarr.json",
                                                    lambda m: m.__setitem__("shape", [2, 4, 8, 16])),
    "rate-data_type-float64": lambda g, a, b: _edit_json(g / "rate" / "zarr.json",
                                                         lambda m: m.__setitem__("data_type", "float64")),
    "alpha-chunk-deleted": lambda g, a, b: (g / "alpha" / "c" / "0").unlink(),
    "rate_se-inf": _through_zarr("rate_se", np.inf),
    "rate-nan": _through_zarr("rate", np.nan),
    "rate-negative": _through_zarr("rate", -1.0),
    "done-flag-garbage": lambda g, a, b: (g / "done" / "c" / str(a)).write_bytes(b"\x07garbage"),
    "rate-chunk-of-another-cube": _copy_rate_chunk,
    "slot-name-escapes": _slot_attr("name", "../../../../x"),
    "source_size-zero": _slot_attr("source_size", [0, 0]),
}


def _cubes(built, store):
    return cli(["cubes", str(built["images"]), "--store", str(store), "--model", str(built["model"]), *ARGS])


@pytest.mark.parametrize("kind", list(DAMAGES))
def test_damage_is_found_refused_and_healed(built, tmp_path, capsys, kind):
    store = tmp_path / "store"
    shutil.copytree(built["store"], store)
    rows = built["rows"]
    a, b = rows["im0"], rows["im1"]
    DAMAGES[kind](_group(store, a), a["slot"], b["slot"])
    capsys.readouterr()

    # 1. check finds it
    assert cli(["check", str(store)]) == 1
    cap = capsys.readouterr()
    assert "Traceback" not in cap.err and any(line.startswith("DAMAGED") for line in cap.out.splitlines()), cap

    # 2. every read refuses it in one line naming the cube and the fix, writing nothing
    out = tmp_path / "out"
    before = tree_hash(store)
    for argv in (["query", str(store), "--image", a["key"], "--pixel", "3,4", "--out", str(out / "c.csv")],
                 ["query", str(store), "--image", a["key"], "--t", "0", "--out", str(out / "c.png")],
                 ["export", str(store), "--out", str(out / "maps")]):
        assert cli(argv) == 2, argv
        lines = error_lines(capsys.readouterr().err)
        assert len(lines) == 1, lines
        assert "cube" in lines[0] and "workbench check" in lines[0] and "--repair" in lines[0], lines[0]
        assert a["key"] in lines[0] or "im0" in lines[0], lines[0]
    assert not out.exists() and tree_hash(store) == before

    # 3. repair, recompute, check clean, every cube as it was
    assert cli(["check", str(store), "--repair"]) == 1
    assert _cubes(built, store) == 0
    capsys.readouterr()
    assert cli(["check", str(store)]) == 0, capsys.readouterr().out
    ref, st = CubeStore(built["store"], create=False), CubeStore(store, create=False)
    assert sorted(st.keys()) == sorted(ref.keys())
    for key in ref.keys():
        x, y = ref.open(key), st.open(key)
        assert set(x.variables) == set(y.variables)
        for var in ("rate", "rate_se", "image", "probe_sum_s", "probe_sum_ss", "alpha", "timestep"):
            if var not in x:  # probe statistics only in refinable stores
                continue
            np.testing.assert_array_equal(x[var].values, y[var].values, err_msg=f"{kind}: {var}")
        assert x.attrs["name"] == y.attrs["name"] and x.attrs["source_size"] == y.attrs["source_size"]


def test_interrupted_store_creation_is_finished(built, tmp_path, capsys):
    """A full disk while store.json was written leaves store.json.partial-<pid>: the same command finishes it."""
    store = tmp_path / "store"
    store.mkdir()
    (store / "store.json.partial-99999").write_text('{"format": "genrate-wor')
    assert cli(["check", str(store)]) == 2
    lines = error_lines(capsys.readouterr().err)
    assert len(lines) == 1 and "interrupted" in lines[0] and "--repair" in lines[0]
    assert cli(["check", str(store), "--repair"]) == 0
    assert json.loads((store / "store.json").read_text())["format"] == "genrate-workbench cube store"
    assert not list(store.glob("store.json.partial*"))
    (store / "store.json").unlink()
    (store / "store.json.partial-99999").write_text("")
    assert _cubes(built, store) == 0  # refused for good before: "not a cube store (no store.json)"
    assert len(CubeStore(store, create=False).keys()) == 2


def test_write_slot_refuses_values_no_cube_can_hold(tmp_path):
    from test_cache_store import synthetic_cube

    from workbench.errors import WorkbenchError

    st = CubeStore(tmp_path / "st")
    ds = synthetic_cube(1, name="a")
    ds["rate"][0, 0, 0] = np.nan
    with pytest.raises(WorkbenchError, match="NaN"):
        st.put(ds)
    assert st.keys() == []
