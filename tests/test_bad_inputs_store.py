"""Damaged cube stores: truncated, zeroed, bit-flipped and missing chunks, for query, export, run and check.

Every case asserts what tests/test_bad_inputs.py asserts of a bad input: the documented exit code
(2 for query/export/run, 1 for check: damage found), exactly one error line on stderr, no
traceback, and the store and the output folder unchanged (hashed before and after). Stores are
built here with the tiny test model (no files in the repo).
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cache import integrity, slots
from cache.store import CubeStore
from workbench.cli import main as cli

KINDS = ("truncated", "zeroed", "bitflip", "missing")
ARGS = ["--K", "4", "--steps", "4", "--device", "cpu"]


def damage(path: Path, kind: str) -> None:
    """Damage one chunk file in place the way a disk or a copy would."""
    data = path.read_bytes()
    if kind == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif kind == "zeroed":
        path.write_bytes(bytes(len(data)))
    elif kind == "bitflip":  # three flipped bytes in the middle of the payload
        b = bytearray(data)
        for off in (len(b) // 3, len(b) // 2, 2 * len(b) // 3):
            b[off] ^= 0x5A
        path.write_bytes(bytes(b))
    elif kind == "missing":
        path.unlink()
    else:
        raise ValueError(kind)


def tree_hash(folder: Path) -> str:
    """Hash of every file's relative path and bytes under `folder` (absent folder: empty hash)."""
    h = hashlib.sha256()
    if folder.exists():
        for p in sorted(folder.rglob("*")):
            if p.is_file() and not p.name.endswith(".lock"):
                h.update(str(p.relative_to(folder)).encode() + b"\0" + p.read_bytes())
    return h.hexdigest()


def rate_chunk(store: Path, name: str) -> Path:
    """The (first) rate chunk file of the cube of image `name`."""
    st = CubeStore(store, create=False)
    row = next(r for r in st.index() if r["name"] == name)
    files = sorted((st.group_path(row["group"]) / "rate" / "c" / str(row["slot"])).rglob("*"))
    return next(p for p in files if p.is_file())


def error_lines(err: str) -> list[str]:
    """stderr lines as a terminal shows them (a carriage return overwrites: progress bars vanish), less '#' notes."""
    lines = [line.split("\r")[-1] for line in err.splitlines()]
    bar = re.compile(r"\[\d+:\d\d(:\d\d)?[,<\]]")  # tqdm's [elapsed<remaining, rate] (a bar left on a non-tty)
    return [s for s in lines if s.strip() and not s.startswith("#") and not bar.search(s)]


def two_image_store(root: Path, model_dir: Path, seed: int) -> dict:
    """A store under `root` with the cubes of two random 20x24 images (`seed`), computed by `workbench cubes`."""
    images = root / "images"
    images.mkdir()
    rng = np.random.default_rng(seed)
    for i in range(2):
        Image.fromarray(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(images / f"im{i}.png")
    store = root / "store"
    assert cli(["cubes", str(images), "--store", str(store), "--model", str(model_dir), *ARGS]) == 0
    return {"images": images, "store": store, "model": model_dir}


@pytest.fixture(scope="module")
def built(tmp_path_factory, tiny_pixel_dir):
    """A store with the cubes of two small images, computed once by `workbench cubes` (tiny model)."""
    return two_image_store(tmp_path_factory.mktemp("damaged"), tiny_pixel_dir, seed=0)


def _copy(built, tmp_path) -> Path:
    store = tmp_path / "store"
    shutil.copytree(built["store"], store)
    return store


def _commands(built, store: Path, out: Path) -> dict[str, list[str]]:
    return {"query": ["query", str(store), "--image", "im0", "--pixel", "3,4", "--out", str(out / "curve.csv")],
            "export": ["export", str(store), "--out", str(out)],
            "run": ["run", str(built["images"]), "--store", str(store), "--out", str(out), "--model",
                    str(built["model"]), *ARGS],
            "check": ["check", str(store)]}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("command", ("query", "export", "run", "check"))
def test_damaged_chunk_is_one_line_error(built, tmp_path, capsys, command, kind):
    store = _copy(built, tmp_path)
    out = tmp_path / "out"
    damage(rate_chunk(store, "im0"), kind)  # the first cube exported: nothing may be written before the error
    before = tree_hash(store), tree_hash(out)
    capsys.readouterr()
    code = cli(_commands(built, store, out)[command])
    cap = capsys.readouterr()
    assert "Traceback" not in cap.err
    if command == "check":
        assert code == 1
        damaged = [line for line in cap.out.splitlines() if line.startswith("DAMAGED")]
        assert len(damaged) == 1 and "im0" in damaged[0] and ("missing" if kind == "missing" else "CRC32C") in \
            damaged[0], cap.out
        assert error_lines(cap.err) == []
    else:
        assert code == 2, cap.err
        lines = error_lines(cap.err)
        assert len(lines) == 1, cap.err
        assert lines[0].startswith(f"workbench {command}: error: cube im0") and "workbench check" in lines[0] and \
            "--repair" in lines[0]
        assert ("missing" if kind == "missing" else "checksum mismatch") in lines[0]
    assert (tree_hash(store), tree_hash(out)) == before


def test_check_repair_then_cubes_recomputes_exactly_the_damaged(built, tmp_path, capsys):
    store = _copy(built, tmp_path)
    intact = rate_chunk(store, "im0")
    stamp = (intact.stat().st_mtime_ns, intact.read_bytes())
    damage(rate_chunk(store, "im1"), "bitflip")
    assert cli(["check", str(store)]) == 1
    assert cli(["check", str(store), "--repair"]) == 1
    cap = capsys.readouterr()
    assert "repaired 1 damaged cubes" in cap.err
    st = CubeStore(store, create=False)
    assert [r["name"] for r in st.index()] == ["im0"]  # the damaged cube is no longer served
    assert cli(["cubes", str(built["images"]), "--store", str(store), "--model", str(built["model"]), *ARGS]) == 0
    cap = capsys.readouterr()
    assert "(1 computed" in cap.out, cap.out
    assert cli(["check", str(store)]) == 0
    assert (intact.stat().st_mtime_ns, intact.read_bytes()) == stamp  # the intact cube was not rewritten
    ref = CubeStore(built["store"], create=False)
    st = CubeStore(store, create=False)
    for name in ("im0", "im1"):
        a = st.open(st.find(name)).rate.values
        np.testing.assert_array_equal(a, ref.open(ref.find(name)).rate.values)


def test_intact_store_checks_clean(built, capsys):
    before = tree_hash(built["store"])
    assert cli(["check", str(built["store"])]) == 0
    cap = capsys.readouterr()
    assert "2 cubes in 1 groups verified: all intact" in cap.err and "unprotected" not in cap.err
    assert tree_hash(built["store"]) == before


def test_new_groups_are_protected_and_write_every_chunk(tmp_path):
    from test_cache_store import synthetic_cube

    st = CubeStore(tmp_path / "st")
    ds = synthetic_cube()
    ds["image"][:] = 0  # an all-zero chunk is still written (zarr skips fill-value chunks by default)
    key = st.put(ds)
    g = st.group_path(f"c-{key}")
    assert integrity.is_protected(g)
    assert (g / "image" / "c" / "0" / "0" / "0" / "0").is_file()
    assert (g / "done" / "c" / "0").read_bytes() == integrity.done_bytes(True)
    np.testing.assert_array_equal(st.open(key).image.values, 0)


# --- stores written before checksums (schema version 1) ---------------------------------------
@pytest.fixture()
def old_store(tmp_path, monkeypatch):
    """A store in the version-1 layout: Blosc without checksums, empty chunks not written."""
    from test_cache_store import synthetic_cube

    with monkeypatch.context() as m:
        m.setattr(slots, "_checksummed", lambda *codecs: list(codecs) or None)
        m.setattr("cache.schema.SCHEMA_VERSION", "1")
        st = CubeStore(tmp_path / "old")
        st.put(synthetic_cube(1, name="im1"))
    assert not integrity.is_protected(next(st.groups_dir.glob("*.zarr")))
    return tmp_path / "old"


def test_old_store_truncated_chunk_is_an_error_not_a_crash(old_store, tmp_path):
    damage(rate_chunk(old_store, "im1"), "truncated")
    before = tree_hash(old_store)
    out = tmp_path / "curve.csv"
    res = subprocess.run([sys.executable, "-m", "workbench.cli", "query", str(old_store), "--image", "im1", "--pixel",
                          "3,4", "--out", str(out)], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[1])
    assert res.returncode == 2, (res.returncode, res.stderr)  # was -11: SIGSEGV inside the Blosc decompressor
    lines = error_lines(res.stderr)
    assert len(lines) == 1 and "Traceback" not in res.stderr and "workbench check" in lines[0]
    assert not out.exists() and tree_hash(old_store) == before


@pytest.mark.parametrize("kind", ("zeroed", "missing"))
def test_old_store_damage_is_an_error(old_store, tmp_path, capsys, kind):
    damage(rate_chunk(old_store, "im1"), kind)
    before = tree_hash(old_store)
    out = tmp_path / "curve.csv"
    assert cli(["query", str(old_store), "--image", "im1", "--pixel", "3,4", "--out", str(out)]) == 2
    lines = error_lines(capsys.readouterr().err)
    assert len(lines) == 1 and ("missing" if kind == "missing" else "Blosc header") in lines[0]
    assert not out.exists() and tree_hash(old_store) == before


def test_old_store_reads_and_checks_as_unprotected(old_store, capsys):
    st = CubeStore(old_store, create=False)
    assert st.open(st.find("im1")).rate.shape == (6, 12, 10)
    assert cli(["check", str(old_store)]) == 0
    assert "1 of 1 groups are unprotected" in capsys.readouterr().err
    damage(rate_chunk(old_store, "im1"), "truncated")
    assert cli(["check", str(old_store)]) == 1
    assert "Blosc header" in capsys.readouterr().out


def test_check_reports_and_sets_aside_a_group_with_unreadable_metadata(tmp_path, capsys):
    from test_cache_store import synthetic_cube

    st = CubeStore(tmp_path / "st")
    st.put(synthetic_cube(1, name="a"))
    kb = st.put(synthetic_cube(2, name="b"))
    meta = st.group_path(f"c-{kb}") / "zarr.json"
    meta.write_text(meta.read_text()[:30])
    assert cli(["check", str(tmp_path / "st")]) == 1
    out = capsys.readouterr().out
    assert len([line for line in out.splitlines() if line.startswith("DAMAGED")]) == 1 and f"c-{kb}" in out
    assert cli(["check", str(tmp_path / "st"), "--repair"]) == 1
    assert st.group_path(f"c-{kb}").with_name(f"c-{kb}.zarr.damaged").is_dir()  # set aside, not deleted
    assert cli(["check", str(tmp_path / "st")]) == 0
    assert [r["name"] for r in CubeStore(tmp_path / "st", create=False).index()] == ["a"]


@pytest.mark.parametrize("command", ("export", "run"))
def test_damage_in_a_later_cube_leaves_no_partial_output(built, tmp_path, capsys, command):
    store = _copy(built, tmp_path)
    out = tmp_path / "out"
    damage(rate_chunk(store, "im1"), "bitflip")  # the second cube: the first one's maps must not be left behind
    before = tree_hash(store), tree_hash(out)
    assert cli(_commands(built, store, out)[command]) == 2
    lines = error_lines(capsys.readouterr().err)
    assert len(lines) == 1 and "cube im1" in lines[0]
    assert (tree_hash(store), tree_hash(out)) == before
