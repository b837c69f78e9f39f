"""Compaction (cache.compact): a finished group rewritten as one shard per array reads the same bytes and
values, damage inside a shard is found, refused and healed, a crash before the rename changes nothing,
and groups that are not compacted read as before."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import zarr

from cache import chunks, compact, integrity, slots
from cache.check import check_store, repair
from cache.store import CubeStore, group_spec_of

from test_bad_inputs_store import tree_hash
from test_cache_store import synthetic_cube

N_SLOTS = 4


def _spec(cubes: list) -> slots.GroupSpec:
    spec = group_spec_of(cubes[0])
    return slots.GroupSpec(spec.shape, spec.image_shape, spec.timesteps, spec.alphas, spec.attrs,
                           [group_spec_of(c).slots[0] for c in cubes])


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A store with one finished 4-slot group of small synthetic cubes (rate, rate_se, image), built once."""
    store = CubeStore(tmp_path_factory.mktemp("compact") / "st")
    cubes = [synthetic_cube(i, name=f"im{i}") for i in range(N_SLOTS)]
    spec = _spec(cubes)
    path = slots.create_group(store.group_path("b-test"), spec)
    for i, c in enumerate(cubes):
        slots.write_slot(path, i, c.rate.values, c.image.values, rate_se=(0.1 * c.rate.values).astype(np.float32))
    return store.path, cubes


@pytest.fixture
def group(base, tmp_path) -> tuple[CubeStore, Path, list]:
    """A copy of the base store: (store, its group, the cubes)."""
    shutil.copytree(base[0], tmp_path / "st")
    store = CubeStore(tmp_path / "st", create=False)
    return store, store.group_path("b-test"), base[1]


def _raw(path: Path) -> dict:
    """Every slot's encoded chunk bytes, by chunk name (either layout)."""
    out = {}
    for var in ("rate", "rate_se", "image"):
        lay = chunks.array_layout(path, var)
        for i in range(N_SLOTS):
            for idx in integrity.slot_grid(lay, i):
                out[chunks.chunk_key(lay, idx)] = chunks.raw_chunk(path, lay, idx)
    return out


def _files(path: Path) -> int:
    return sum(1 for p in path.rglob("*") if p.is_file())


def test_compacted_group_reads_the_same_bytes_and_values(group):
    store, path, cubes = group
    before_raw, before = _raw(path), xr.open_zarr(path).load()
    records = [integrity.read_digest(path, i) for i in range(N_SLOTS)]
    files = _files(path)
    assert compact.compactable(path) is not None  # 4 slots: below the default threshold
    assert compact.compact_group(path, min_slots=2)
    assert compact.is_compacted(path) and not compact.compact_group(path, min_slots=2)
    assert _files(path) < files - 3 * N_SLOTS
    assert (path / "rate" / "c" / "0" / "0" / "0" / "0").is_file() and not (path / "rate" / "c" / "1").exists()
    assert _raw(path) == before_raw  # byte for byte: the inner chunks are the chunk files
    assert [integrity.read_digest(path, i) for i in range(N_SLOTS)] == records
    plain = xr.open_zarr(path).load()  # plain xarray/zarr read the sharded layout
    for var in ("rate", "rate_se", "image", "done"):
        np.testing.assert_array_equal(plain[var].values, before[var].values)
    st = CubeStore(store.path, create=False)
    for c in cubes:
        ds = st.open(c.attrs["key"])
        np.testing.assert_array_equal(ds.rate.values, c.rate.values)
        np.testing.assert_array_equal(ds.image.values, c.image.values)
        np.testing.assert_array_equal(ds.curves.pixel(3, 4).values, c.rate.values[:, 3, 4])
    rep = check_store(st)
    assert rep.ok and rep.checked == N_SLOTS


def test_an_open_cube_follows_its_group_being_compacted(group):
    store, path, cubes = group
    ds = store.open(cubes[1].attrs["key"])  # lazy, opened on the layout of one file per chunk
    compact.compact_group(path, min_slots=2)
    np.testing.assert_array_equal(ds.rate.values, cubes[1].rate.values)


def _index_entries(path: Path, var: str) -> tuple[Path, np.ndarray]:
    shard = path / var / "c" / "0" / "0" / "0" / "0"
    return shard, chunks.shard_index(shard, N_SLOTS).copy()


def _rewrite_index(shard: Path, index: np.ndarray) -> None:
    data = shard.read_bytes()
    body = data[: len(data) - (16 * len(index) + 4)]
    shard.write_bytes(body + chunks.encode_index([tuple(int(v) for v in e) for e in index]))


def _flip_in_slot(path: Path, i: int) -> None:
    shard, index = _index_entries(path, "rate")
    data = bytearray(shard.read_bytes())
    data[int(index[i, 0]) + int(index[i, 1]) // 2] ^= 0x10
    shard.write_bytes(bytes(data))


def _swap_slots(path: Path, i: int) -> None:
    """Slot i's index entry points at slot 0's chunk (a valid checksum: another cube's content)."""
    shard, index = _index_entries(path, "rate")
    index[i] = index[0]
    _rewrite_index(shard, index)


@pytest.mark.parametrize("damage", [_flip_in_slot, _swap_slots], ids=["bit-flipped", "another-cube's-chunk"])
def test_damage_in_a_shard_is_found_refused_and_healed(group, damage):
    store, path, cubes = group
    compact.compact_group(path, min_slots=2)
    damage(path, 2)
    st = CubeStore(store.path, create=False)
    rep = check_store(st)
    assert [(d.slot, d.kind) for d in rep.damaged] == [(2, "slot")], [d.line() for d in rep.damaged]
    assert "rate/c/2/0/0/0" in rep.damaged[0].reason
    with pytest.raises(integrity.DamagedChunk, match="--repair"):
        st.open(cubes[2].attrs["key"]).rate.values
    np.testing.assert_array_equal(st.open(cubes[3].attrs["key"]).rate.values, cubes[3].rate.values)
    through_zarr = zarr.open_group(integrity.CheckedStore(path, read_only=True), mode="r", zarr_format=3)
    with pytest.raises(integrity.DamagedChunk):  # zarr's own reads of the shard are verified too
        through_zarr["rate"][2]
    np.testing.assert_array_equal(through_zarr["rate"][3], cubes[3].rate.values)
    repair(st, rep)
    assert not compact.is_compacted(path)  # one file per chunk again, without the damaged slot
    assert sorted(st.keys()) == sorted(c.attrs["key"] for i, c in enumerate(cubes) if i != 2)
    assert check_store(st).ok
    for i in (0, 1, 3):
        np.testing.assert_array_equal(st.open(cubes[i].attrs["key"]).rate.values, cubes[i].rate.values)
    # what `workbench cubes` does next: the slot written again, the group compacted again
    slots.write_slot(path, 2, cubes[2].rate.values, cubes[2].image.values,
                     rate_se=(0.1 * cubes[2].rate.values).astype(np.float32))
    assert compact.compact_group(path, min_slots=2) and check_store(st).ok


def test_damaged_metadata_of_a_compacted_group_is_rewritten_sharded(group):
    store, path, cubes = group
    compact.compact_group(path, min_slots=2)
    meta = json.loads((path / "rate" / "zarr.json").read_text())
    (path / "rate" / "zarr.json").write_text(json.dumps({**meta, "shape": [2, 4, 8, 16]}))
    rep = check_store(store)
    assert {d.kind for d in rep.damaged} == {"meta"} and "rate: shape" in rep.damaged[0].reason
    repair(store, rep)
    assert json.loads((path / "rate" / "zarr.json").read_text()) == meta  # the compacted layout, not a fresh group's
    assert compact.is_compacted(path) and check_store(store).ok and len(store.keys()) == N_SLOTS


def test_damaged_shard_index_is_found(group):
    store, path, _ = group
    compact.compact_group(path, min_slots=2)
    shard = path / "image" / "c" / "0" / "0" / "0" / "0"
    data = bytearray(shard.read_bytes())
    data[-10] ^= 0x01
    shard.write_bytes(bytes(data))
    rep = check_store(CubeStore(store.path, create=False))
    assert sorted(d.slot for d in rep.damaged) == list(range(N_SLOTS))
    assert all("CRC32C" in d.reason for d in rep.damaged)


def test_a_crash_before_the_rename_leaves_the_group_as_it_was(group, monkeypatch):
    store, path, cubes = group
    before = tree_hash(path)

    def crash(new, old):
        raise KeyboardInterrupt  # a kill between the finished copy and the rename

    monkeypatch.setattr(compact, "_swap", crash)
    with pytest.raises(KeyboardInterrupt):
        compact.compact_group(path, min_slots=2)
    assert tree_hash(path) == before and not compact.is_compacted(path)
    assert not list(path.parent.glob("*.partial*"))
    st = CubeStore(store.path, create=False)
    np.testing.assert_array_equal(st.open(cubes[0].attrs["key"]).rate.values, cubes[0].rate.values)


def test_a_copy_left_by_a_dead_compaction_is_swept_or_restored(group):
    store, path, cubes = group
    dead = path.with_name(f"{path.name}{slots.PARTIAL_MARK}-{__import__('socket').gethostname()}-999999999")
    shutil.copytree(path, dead)
    aside = path.with_name(f"{path.name}{slots.PRECOMPACT_MARK}-{__import__('socket').gethostname()}-999999999")
    path.rename(aside)  # killed between the two renames of the fallback swap: the group is missing
    store.sweep()
    assert path.is_dir() and not aside.exists() and not dead.exists()
    assert len(CubeStore(store.path, create=False).keys()) == N_SLOTS


def test_expanding_gives_back_the_files_of_one_chunk_each(group):
    store, path, _ = group
    rate_files = {p.relative_to(path): p.read_bytes() for p in (path / "rate" / "c").rglob("*") if p.is_file()}
    compact.compact_group(path, min_slots=2)
    with slots.group_lock(path):
        assert compact.expand_group(path) == set()
    assert {p.relative_to(path): p.read_bytes() for p in (path / "rate" / "c").rglob("*") if p.is_file()} == rate_files
    assert json.loads((path / "done" / "zarr.json").read_text())["chunk_grid"]["configuration"]["chunk_shape"] == [1]
    assert check_store(CubeStore(store.path, create=False)).ok


def test_the_batch_writer_writes_what_write_slot_writes(group, tmp_path):
    store, path, cubes = group
    other = CubeStore(tmp_path / "other")
    twin = slots.create_group(other.group_path("b-test"), _spec(cubes))
    slots.write_slots(twin, {i: {"rate": c.rate.values, "image": c.image.values,
                                 "rate_se": (0.1 * c.rate.values).astype(np.float32)} for i, c in enumerate(cubes)})
    assert _raw(twin) == _raw(path)
    assert [integrity.read_digest(twin, i) for i in range(N_SLOTS)] == \
        [integrity.read_digest(path, i) for i in range(N_SLOTS)]
    assert slots.read_done(twin).all() and check_store(other).ok


def test_a_batch_compacts_its_finished_group(tmp_path, monkeypatch, tiny_pixel_dir):
    """`workbench cubes` compacts the group it finished; the store then reads and checks clean (the
    cubes are synthetic: what is tested is the batch around them)."""
    from PIL import Image

    from cache import batch
    from workbench.cli import main as cli

    def synthetic_slot(job, params, adapter=None, **kw):
        lay = slots.read_attrs(Path(job.group_path))["layout"]
        rng = np.random.default_rng(job.slot)
        rate = rng.random(tuple(lay["shape"]), dtype=np.float32)
        slots.write_slot(Path(job.group_path), job.slot, rate,
                         rng.integers(0, 256, (*lay["image_shape"], 3), dtype=np.uint8), rate_se=0.1 * rate)
        return job.slot

    images = tmp_path / "images"
    images.mkdir()
    rng = np.random.default_rng(2)
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(images / f"im{i}.png")
    monkeypatch.setattr(compact, "COMPACT_MIN_SLOTS", 2)
    monkeypatch.setattr(batch, "compute_slot", synthetic_slot)
    store = tmp_path / "store"
    assert cli(["cubes", str(images), "--store", str(store), "--model", str(tiny_pixel_dir), "--K", "4", "--steps",
                "4", "--device", "cpu"]) == 0
    (group,) = (store / "groups").glob("*.zarr")
    assert compact.is_compacted(group) and not (group / "rate" / "c" / "1").exists()
    assert cli(["check", str(store)]) == 0
    st = CubeStore(store, create=False)
    assert len(st.keys()) == 3 and st.open(st.find("im1")).rate.shape[0] == 4


def test_selections_across_chunks_read_as_zarr_reads_them_in_both_layouts(tmp_path):
    """Several chunks per slot with partial edge chunks: every selection equals plain zarr's, before and
    after compaction (the shard is padded to whole chunks)."""
    store = CubeStore(tmp_path / "st")
    cubes = [synthetic_cube(i, name=f"im{i}") for i in range(3)]  # 6 x 12 x 10 cubes
    spec = _spec(cubes)
    spec = slots.GroupSpec(spec.shape, spec.image_shape, spec.timesteps, spec.alphas, spec.attrs, spec.slots,
                           chunks=(4, 5, 4))
    path = slots.create_group(store.group_path("b-chunks"), spec)
    for i, c in enumerate(cubes):
        slots.write_slot(path, i, c.rate.values, c.image.values, rate_se=(0.1 * c.rate.values).astype(np.float32))
    want = np.stack([c.rate.values for c in cubes])
    selections = [(1, slice(None), 7, 9), (slice(None), 3, slice(2, 11), slice(None, None, -3)),
                  (-1, slice(5, 0, -2), slice(None), 4), (slice(0, 2), slice(None), slice(11, 12), slice(3, 9, 2))]
    for compacted in (False, True):
        if compacted:
            assert compact.compact_group(path, min_slots=2)
        ds = slots.open_group(path)
        for sel in selections:
            np.testing.assert_array_equal(ds.rate.values[sel], want[sel])
            np.testing.assert_array_equal(ds.rate[sel].values, want[sel])
        np.testing.assert_array_equal(xr.open_zarr(path).rate.values, want)
    assert check_store(store).ok
