"""Multi-image Zarr groups with preallocated per-image slots and a `done` flag (the crash-safe layout).

A group `<gid>.zarr` holds `rate (image_id, t, y, x)` chunked one image per chunk row (so no two
writers ever touch one chunk), `image (image_id, iy, ix, rgb)`, `done (image_id)` uint8 (one 1-byte
chunk per slot, absent = 0), the shared `timestep`/`alpha`, and the attribute `slots` naming each
slot's key and source. Its metadata is written once, into `<gid>.zarr.partial-<host>-<pid>`, and
renamed into place atomically; after that only chunk files are written. A slot is written in full
before its done flag: a killed writer leaves slots with done = 0, which readers treat as absent and
a rerun rewrites. Since schema version 2 every chunk carries a CRC32C checksum and every chunk of a
slot is written (empty ones too); reads verify them (cache.integrity). Nothing is ever appended
(resizing a Zarr array rewrites its metadata, and appending left unreadable stores in 5 of 9 kills
measured on these machines). Once every slot is done, a batch compacts the group into one shard
per array (cache.compact); reads (`open_group`, cache.reader) and `read_done` serve both layouts,
and writers refuse a compacted group (`cache.compact.expand_group` first). `write_slots` is the
batch writer: many slots in one write per array and one sync before their flags.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import xarray as xr
import zarr
from xarray.core import indexing
from zarr.codecs import BloscCodec, Crc32cCodec

from workbench.errors import WorkbenchError

from . import integrity, meaning, reader, schema

__all__ = ["GroupSpec", "DEFAULT_CHUNKS", "SMALL_CUBE_BYTES", "chunks_for", "create_group", "write_slot",
           "read_done", "clear_done", "read_attrs", "slot_extras",
           "open_group", "slot_dataset", "sweep_partials", "group_lock", "PARTIAL_MARK", "consolidate",
           "is_consolidated", "fsync_tree", "fsync_dir", "write_slots", "PRECOMPACT_MARK"]

#: rate chunk (t, y, x) before clipping to the cube's shape; chosen by bench/bench_store.py (docs/cubes.md,
#: "Chunks, by measurement")
DEFAULT_CHUNKS = (10, 128, 128)
#: a cube up to this size (float32 bytes) is one chunk: one read serves any curve or map (measured faster)
SMALL_CUBE_BYTES = 2 * 1024 * 1024
PARTIAL_MARK = ".partial"
#: where a compaction without an atomic exchange keeps the old group between its two renames (cache.compact)
PRECOMPACT_MARK = ".precompact"


@dataclass(frozen=True)
class GroupSpec:
    """Everything a group's metadata needs before any slot is computed.

    `shape` = (N, H, W) of one rate cube, `image_shape` = (iy, ix), `timesteps`/`alphas` (N,),
    `attrs` the attributes shared by all slots, `slots` one dict per image (cache.schema.SLOT_ATTRS).
    Every group has `rate_se` beside `rate`; `stat_channels` = C > 0 adds the Hutchinson statistics."""

    shape: tuple[int, int, int]
    image_shape: tuple[int, int]
    timesteps: np.ndarray
    alphas: np.ndarray
    attrs: dict
    slots: list = field(default_factory=list)
    chunks: tuple[int, int, int] | None = None
    #: model channels C of the probe statistics (probe_sum_s / probe_sum_ss); 0: the cubes have none
    stat_channels: int = 0


def chunks_for(shape: tuple[int, int, int], chunks: tuple[int, int, int] | None = None) -> tuple[int, int, int]:
    """Rate chunk (t, y, x) for a cube of `shape` (N, H, W): `chunks` clipped to the shape; by
    default the whole cube when it is small (SMALL_CUBE_BYTES), else DEFAULT_CHUNKS."""
    if chunks is None and 4 * shape[0] * shape[1] * shape[2] <= SMALL_CUBE_BYTES:
        return tuple(int(v) for v in shape)
    c = chunks or DEFAULT_CHUNKS
    return tuple(int(min(a, b)) for a, b in zip(c, shape))


def _compressor():
    return BloscCodec(cname="zstd", clevel=5, shuffle="shuffle")


def _checksummed(*codecs) -> list:
    """`codecs` followed by a CRC32C checksum of the encoded chunk (cache.integrity)."""
    return [*codecs, Crc32cCodec()]


def create_group(path: Path, spec: GroupSpec) -> Path:
    """Write the group's metadata (no slot data) atomically at `path`; an existing group is kept."""
    import dask.array as da  # heavy (about 0.5 s): only creating a group needs it

    path = Path(path)
    if path.exists():
        return path
    n = len(spec.slots)
    if n < 1:
        raise ValueError("a group needs at least one slot")
    N, H, W = spec.shape
    iy, ix = spec.image_shape
    D = schema.DIMS
    tc, yc, xc = chunks_for(spec.shape, spec.chunks)
    template = xr.Dataset(
        {schema.VAR_RATE: ((D["image"], D["t"], D["y"], D["x"]),
                           da.zeros((n, N, H, W), dtype=np.float32, chunks=(1, tc, yc, xc))),
         schema.VAR_IMAGE: ((D["image"], D["image_y"], D["image_x"], D["rgb"]),
                            da.zeros((n, iy, ix, 3), dtype=np.uint8, chunks=(1, iy, ix, 3))),
         schema.VAR_DONE: ((D["image"],), da.zeros((n,), dtype=np.uint8, chunks=1)),
         schema.VAR_ALPHA: ((D["t"],), np.asarray(spec.alphas, dtype=np.float64))},
        coords={schema.COORD_T: ((D["t"],), np.asarray(spec.timesteps, dtype=np.int64)),
                **schema.label_coords(list(spec.slots), n_t=N, shape=(H, W), image_shape=(iy, ix),
                                      scale=int(spec.attrs.get("scale", 1) or 1))},
        attrs={**schema.GROUP_ATTRS, **spec.attrs, "format": schema.STORE_FORMAT,
               # what the metadata and shared arrays must be (checked and rewritten from it by cache.check),
               # and every slot's chunks bound to its key by a content record (cache.integrity)
               meaning.LAYOUT_ATTR: meaning.layout_record(spec.shape, spec.image_shape, (tc, yc, xc),
                                                          int(spec.stat_channels), spec.timesteps, spec.alphas),
               integrity.DIGEST_ATTR: "sha256",
               "schema_version": schema.SCHEMA_VERSION, "slots": list(spec.slots)})
    C = int(spec.stat_channels)
    rate_like = ((D["image"], D["t"], D["y"], D["x"]), da.zeros((n, N, H, W), dtype=np.float32,
                                                                chunks=(1, tc, yc, xc)))
    template[schema.VAR_RATE_SE] = rate_like
    encoding = {schema.VAR_RATE_SE: {"chunks": (1, tc, yc, xc), "compressors": _checksummed(_compressor())}}
    if C:
        P = C * (C + 1) // 2
        for var, dim, k in ((schema.VAR_SUM_S, D["channel"], C), (schema.VAR_SUM_SS, D["pair"], P)):
            template[var] = ((D["image"], D["t"], dim, D["y"], D["x"]),
                             da.zeros((n, N, k, H, W), dtype=np.float64, chunks=(1, tc, k, yc, xc)))
            encoding[var] = {"chunks": (1, tc, k, yc, xc), "compressors": _checksummed(_compressor())}
    encoding |= {schema.VAR_RATE: {"chunks": (1, tc, yc, xc), "compressors": _checksummed(_compressor())},
                schema.VAR_IMAGE: {"chunks": (1, iy, ix, 3), "compressors": _checksummed(_compressor())},
                schema.VAR_DONE: {"chunks": (1,), "compressors": _checksummed()},
                schema.VAR_ALPHA: {"compressors": _checksummed()},
                schema.COORD_T: {"compressors": _checksummed()}}
    template = template.set_coords(schema.VAR_DONE)  # a label that changes as slots complete: read it with the data
    for name in template.coords:  # the labels: small, written once with the metadata, checksummed
        if name not in encoding:
            encoding[name] = {"compressors": _checksummed()}
    for name, attrs in schema.VAR_ATTRS.items():
        if name in template.variables:
            template[name].attrs.update({k: v for k, v in attrs.items()
                                         if k != "ancillary_variables" or v in template.variables})
    tmp = path.with_name(f"{path.name}{PARTIAL_MARK}-{socket.gethostname()}-{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    # every label chunk on disk, also one equal to the fill value (an empty source path): an absent one is damage
    with zarr.config.set({"array.write_empty_chunks": True}):
        template.to_zarr(tmp, compute=False, encoding=encoding, zarr_format=3, consolidated=False, mode="w")
    consolidate(tmp)  # inside the folder that is renamed into place: the group appears consolidated or not at all
    try:
        tmp.rename(path)
    except OSError:  # another writer created it first: keep theirs
        shutil.rmtree(tmp, ignore_errors=True)
        if not path.exists():
            raise
    return path


def consolidate(path: Path) -> None:
    """(Re)write the consolidated metadata of a group (every array's zarr.json inlined into the group's
    zarr.json, the layout `zarr.consolidate_metadata` writes), atomically: a new zarr.json is written
    beside the old one, fsynced and renamed over it, so a reader sees the old or the new file, never a
    torn one. Call it after any change to a group's metadata (array or group attributes); chunk writes
    (slots, done flags) change no metadata and need none. Plain `xarray.open_zarr` then opens the
    group without a warning."""
    path = Path(path)
    root = json.loads((path / "zarr.json").read_text())
    meta = {}
    for child in sorted(path.iterdir()):
        f = child / "zarr.json"
        if child.is_dir() and f.is_file():
            m = json.loads(f.read_text())
            m.pop("consolidated_metadata", None)
            meta[child.name] = m
    # xarray lists variables in this order: the results first, the probe statistics last
    first = [v for v in (schema.VAR_RATE, schema.VAR_RATE_SE, schema.VAR_IMAGE, schema.VAR_ALPHA) if v in meta]
    last = [v for v in (schema.VAR_SUM_S, schema.VAR_SUM_SS) if v in meta]
    meta = {k: meta[k] for k in (*first, *(k for k in meta if k not in first and k not in last), *last)}
    root["consolidated_metadata"] = {"kind": "inline", "must_understand": False, "metadata": meta}
    tmp = path / f"zarr.json{PARTIAL_MARK}-{socket.gethostname()}-{os.getpid()}"
    with open(tmp, "w") as fh:
        fh.write(json.dumps(root, indent=2))
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path / "zarr.json")
    fsync_dir(path)


def is_consolidated(path: Path) -> bool:
    """True when the group's zarr.json holds consolidated metadata equal to its arrays' own metadata."""
    path = Path(path)
    try:
        cm = json.loads((path / "zarr.json").read_text()).get("consolidated_metadata")
    except (OSError, ValueError):
        return False
    if not isinstance(cm, dict):
        return False
    arrays = {c.name: json.loads((c / "zarr.json").read_text()) for c in sorted(path.iterdir())
              if c.is_dir() and (c / "zarr.json").is_file()}
    return cm.get("metadata") == arrays


def fsync_dir(folder: Path) -> None:
    """fsync one folder (its entries: a rename in it survives power loss); best effort."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_slot(path: Path, i: int, rate: np.ndarray, image: np.ndarray, **extra: np.ndarray) -> None:
    """Write slot `i` (rate (N, H, W), image (iy, ix, 3), and any further per-slot variables of the
    group named in `extra`, e.g. rate_se (N, H, W)) in full, then set its done flag."""

    g, arrays, values = _slot_arrays(path, i, rate, image, extra)
    with zarr.config.set({"array.write_empty_chunks": True}):  # every chunk on disk: an absent one is damage
        for var, arr in arrays.items():
            try:
                arr[i] = values[var].astype(arr.dtype)
            except OSError as exc:  # a failed write() (disk full) carries no file name: name the array
                if exc.filename is None:
                    exc.filename = str(Path(path) / var)
                raise
        for var in arrays:  # on disk before the flag, power loss included
            fsync_tree(Path(path) / var / "c" / str(i))
        _set_done(g, path, [i])


def _set_done(g, path: Path, done: list[int], *, durable_each: bool = True) -> None:
    """Write the content records (where the group keeps them), then the done flags, of slots `done`
    whose chunks are on disk. `durable_each`: fsync each record and the flags (else the caller syncs
    once, before and after)."""
    attrs = dict(g.attrs)
    if attrs.get(integrity.DIGEST_ATTR) == "sha256":  # the content record, with the flag, binds it to its key
        for i in done:
            integrity.write_digest(Path(path), i, str(attrs["slots"][i]["key"]), durable=durable_each)
    if not durable_each:
        os.sync()  # every record on disk before any flag
    with zarr.config.set({"array.write_empty_chunks": True}):
        for run in np.split(np.asarray(done), np.nonzero(np.diff(done) != 1)[0] + 1):
            # last: 1-byte chunk files (+ checksum), written only once their slots are complete
            g[schema.VAR_DONE][int(run[0]):int(run[-1]) + 1] = 1
    if durable_each:
        fsync_tree(Path(path) / schema.VAR_DONE / "c")


def _slot_arrays(path: Path, i: int, rate, image, extra: dict) -> tuple:
    """(the group opened for writing, {var: zarr array} to write, {var: values}) for slot `i`, every
    value checked (shape, what a cube can hold); raises WorkbenchError before anything is written."""
    if json.loads((Path(path) / "zarr.json").read_text()).get("attributes", {}).get("compacted"):
        raise WorkbenchError(f"{Path(path).name} is compacted (one shard per array): expand it first "
                             "(cache.compact.expand_group; `workbench cubes` does)")
    values = {schema.VAR_RATE: np.asarray(rate), schema.VAR_IMAGE: np.asarray(image),
              **{k: np.asarray(v) for k, v in extra.items() if v is not None}}
    with zarr.config.set({"array.write_empty_chunks": True}):
        g = zarr.open_group(str(path), mode="r+", use_consolidated=False)  # the arrays' own metadata, not the copy
        if schema.VAR_RATE_SE in g and schema.VAR_RATE_SE not in values:  # a cube without SEs: unknown
            values[schema.VAR_RATE_SE] = np.full(values[schema.VAR_RATE].shape, np.nan, dtype=np.float32)
        missing = [v for v in g.array_keys() if v not in values and v in schema.EXTRA_VARS]
        if missing:
            raise WorkbenchError(f"the cube lacks {', '.join(missing)} that the slots of {path.name} hold: compute it "
                                 "with cache.build.compute_cube")
        arrays = {}
        for var, v in values.items():
            problem = schema.value_problem(var, v)
            if problem:  # values no cube can hold are never stored (check and reads refuse them)
                raise WorkbenchError(f"cube {var} for slot {i} of {path.name}: {problem}; it was not stored")
            if var not in g:
                continue  # a group of an older schema without this variable
            arrays[var] = g[var]
            if tuple(arrays[var].shape[1:]) != tuple(v.shape):
                raise WorkbenchError(f"cube {var} shape {v.shape} does not fit the slots of {Path(path).name} "
                                     f"({tuple(arrays[var].shape[1:])})")
    return g, arrays, values


def write_slots(path: Path, cubes: dict[int, dict[str, np.ndarray]]) -> None:
    """Write many slots of a group at once (the batch writer: `cubes` = {slot: {"rate": (N, H, W),
    "image": (iy, ix, 3), and the group's further per-slot variables}}): every slot's chunks in one
    zarr write per array, one `os.sync` for all of them, then their content records and done
    flags, and one more sync. Crash-safe like `write_slot` (no flag before its slot's data is on
    disk); a slot whose values no cube can hold raises before anything is written."""
    if not cubes:
        return
    prepared = {i: _slot_arrays(path, i, c[schema.VAR_RATE], c[schema.VAR_IMAGE],
                                {k: v for k, v in c.items() if k not in (schema.VAR_RATE, schema.VAR_IMAGE)})
                for i, c in cubes.items()}
    g = next(iter(prepared.values()))[0]
    order = sorted(prepared)
    with zarr.config.set({"array.write_empty_chunks": True}):
        for var, arr in prepared[order[0]][1].items():
            runs = np.split(order, np.nonzero(np.diff(order) != 1)[0] + 1)  # consecutive slots: one write each
            for run in runs:
                block = np.stack([prepared[int(i)][2][var].astype(arr.dtype) for i in run])
                arr[int(run[0]):int(run[-1]) + 1] = block
    os.sync()  # the data of every slot on disk before any record or flag
    _set_done(g, path, order, durable_each=False)
    os.sync()


def slot_extras(ds: xr.Dataset) -> dict[str, np.ndarray]:
    """The per-slot variables of a single-image cube besides rate and image (cache.schema.EXTRA_VARS)."""
    return {v: ds[v].values for v in schema.EXTRA_VARS if v in ds}


def fsync_tree(folder: Path) -> None:
    """fsync every file under `folder` and the folders themselves (best effort)."""
    if not folder.exists():
        return
    for p in sorted(folder.rglob("*"), reverse=True) + [folder]:
        with contextlib.suppress(OSError):
            fd = os.open(p, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


def read_done(path: Path) -> np.ndarray:
    """The done flags (n,) bool of a group; an unreadable flag counts as not done.

    Reads the flag files `done/c/<i>` directly (1 raw byte each, absent = 0), or a compacted group's
    one flag chunk (cache.integrity.read_flags): much faster than opening the array."""
    meta = Path(path) / schema.VAR_DONE / "zarr.json"
    try:
        n = int(json.loads(meta.read_text())["shape"][0])
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        raise WorkbenchError(f"{path} is corrupt (its done flags are unreadable): delete that folder; "
                             "`workbench cubes` recomputes its cubes") from None
    return integrity.read_flags(Path(path), n)[0]


def clear_done(path: Path, i: int) -> None:
    """Unset slot `i`'s done flag (the slot is then absent and the next batch recomputes it)."""
    (Path(path) / schema.VAR_DONE / "c" / str(int(i))).unlink(missing_ok=True)
    fsync_tree(Path(path) / schema.VAR_DONE / "c")


def read_attrs(path: Path) -> dict:
    """A group's attributes, read straight from its zarr.json; a foreign or corrupt group raises WorkbenchError."""
    meta = Path(path) / "zarr.json"
    try:
        attrs = json.loads(meta.read_text()).get("attributes", {})
    except (OSError, ValueError) as exc:
        raise WorkbenchError(f"{path} is corrupt ({type(exc).__name__} reading zarr.json): delete that folder; "
                             "`workbench cubes` recomputes its cubes") from None
    if attrs.get("format") != schema.STORE_FORMAT or not isinstance(attrs.get("slots"), list):
        raise WorkbenchError(f"{path} is not a cube group of this store (no '{schema.STORE_FORMAT}' attributes): "
                             "remove it from the store folder")
    return attrs


def open_group(path: Path) -> xr.Dataset:
    """The group as a lazy multi-image Dataset (image_id, t, y, x), all slots incl. the `done` flags,
    labelled (cache.schema.label_group: groups written before labels read like new ones). The
    per-slot arrays are read synchronously, chunk by verified chunk (cache.reader.SlotArray); the
    labels, written once with the group, are read here; `done` stays lazy (it changes as slots complete)."""
    path = Path(path)
    try:
        ds = xr.open_dataset(integrity.CheckedStore(path, read_only=True), engine="zarr", consolidated=False,
                               chunks=None, zarr_format=3, cache=False)
    except Exception as exc:  # zarr/xarray raise many types for a damaged group
        raise WorkbenchError(f"{path} is not a readable cube group ({type(exc).__name__}): delete that folder; "
                             "`workbench cubes` recomputes its cubes") from None
    slots_ = ds.attrs.get("slots") if isinstance(ds.attrs.get("slots"), list) else []
    keys = [str(s.get("key", "")) if isinstance(s, dict) else "" for s in slots_]
    bound = ds.attrs.get(integrity.DIGEST_ATTR) == "sha256"
    fast = {}
    for var in integrity.SLOT_VARS:
        info = integrity.array_info(path, var) if var in ds.data_vars else None
        if info is not None and info["slotted"] and info["layout"].fast and \
                tuple(info["layout"].shape) == tuple(ds[var].shape):
            old = ds[var].variable
            fast[var] = xr.Variable(old.dims, indexing.LazilyIndexedArray(
                reader.SlotArray(path, var, info, keys, bound=bound)), old.attrs, old.encoding)
    labels = [c for c in ds.coords if c != schema.VAR_DONE and c not in ds.indexes]
    ds = ds.assign(fast).assign_coords({c: ds[c].variable.load() for c in labels})
    return schema.label_group(ds)


def slot_dataset(group: xr.Dataset, i: int) -> xr.Dataset:
    """Slot `i` of an opened group as a single-image cube (t, y, x) with the schema's attributes
    (a cube of a schema without `rate_se` gets the attribute `note`, cache.schema.NO_SE_NOTE)."""
    attrs = {k: v for k, v in group.attrs.items() if k not in ("slots", "format")}
    slot = group.attrs["slots"][i]
    ds = group.isel({schema.DIMS["image"]: i}).drop_vars(schema.VAR_DONE)
    ds.attrs = {**attrs, **slot, "complete": 1}
    if schema.VAR_RATE_SE not in ds:
        ds.attrs["note"] = schema.NO_SE_NOTE
    return ds


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_partials(folder: Path, *, max_age_s: float = 86400.0) -> list[Path]:
    """Delete `*.partial-<host>-<pid>` leftovers of dead writers (this host) or older than `max_age_s`.
    A group a dead compaction left under `<gid>.zarr.precompact-...` (cache.compact, where renames are
    not atomic) is put back when its group is missing, else deleted (its compacted copy is in place)."""
    swept = []
    host = socket.gethostname()
    for mark in (PRECOMPACT_MARK, PARTIAL_MARK):  # restore first: a partial may be the compacted copy
        for p in sorted(Path(folder).glob(f"*{mark}*")):
            if not p.exists():
                continue
            tail = p.name.rsplit(mark, 1)[1].lstrip("-")
            h, _, pid = tail.rpartition("-")
            stale = time.time() - p.stat().st_mtime > max_age_s
            dead = h == host and pid.isdigit() and not _pid_alive(int(pid))
            if not (stale or dead or not tail):
                continue
            group = p.with_name(p.name.rsplit(mark, 1)[0])
            if mark == PRECOMPACT_MARK and not group.exists():
                p.rename(group)
            else:
                shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
            swept.append(p)
    return swept


@contextlib.contextmanager
def group_lock(path: Path, *, wait: bool = False) -> Iterator[None]:
    """Exclusive writer lock on a group (`<gid>.lock`, fcntl). Held by another process: wait for it
    (`wait`), else a one-line error naming that process."""
    lock = Path(str(path) + ".lock")
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            import fcntl  # optional: absent on Windows

            fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except ImportError:  # no fcntl (Windows): no lock
            pass
        except BlockingIOError:
            other = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
            raise WorkbenchError(f"another process (pid {other}) is writing {Path(path).name} in this store: "
                                 "wait for it to finish or stop it, then rerun") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)
