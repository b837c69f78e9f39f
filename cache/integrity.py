"""Chunk integrity: every chunk a done slot needs is present and undamaged, or reading it is a one-line error.

Groups of schema version >= 2 append a CRC32C checksum to every chunk (`zarr.codecs.Crc32cCodec`
after Blosc) and write every chunk of a slot, empty ones included. Reads go through `CheckedStore`,
a zarr `LocalStore` that verifies each chunk before zarr decodes it:

- protected arrays (crc32c in the codec list): the stored checksum must match (truncated, zeroed
  and bit-flipped chunks all fail it);
- unprotected Blosc arrays (stores of schema version 1): the Blosc header's sizes must match the
  file size and the chunk's size, so a truncated or zeroed chunk is an error before the
  decompressor sees it (a truncated chunk used to crash it with SIGSEGV);
- a chunk of a done slot that is absent is an error (zarr would serve the fill value); in
  unprotected groups only `rate` chunks are required (they skipped writing all-zero chunks).

Groups with the attribute `content_digest` also bind every slot's content to its key: before the
done flag, `write_digest` records a SHA-256 of (cube key, chunk name, chunk bytes) for every chunk
of the slot in `done/digests/<slot>.json`. A chunk copied from another cube (its checksum valid)
or rewritten through zarr (a NaN written into a rate chunk) no longer matches, and every read of it
is refused like a damaged chunk.

A damaged chunk raises `DamagedChunk` (a `WorkbenchError`) naming the chunk, its cube and the fix,
`workbench check STORE --repair`. `verify_slot` reads every chunk of one slot (what `workbench check`
does for every done slot), checks the slot's content record and the values (cache.meaning).
"""
from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path

import numpy as np
from zarr.storage import LocalStore

from workbench.errors import WorkbenchError

from . import schema

__all__ = ["DamagedChunk", "CheckedStore", "array_info", "is_protected", "verify_slot", "crc32c",
           "done_bytes", "SLOT_VARS", "DIGEST_ATTR", "write_digest", "read_digest", "digest_path", "slot_chunks"]

#: the per-slot arrays whose chunks a done slot needs
SLOT_VARS = (schema.VAR_RATE, schema.VAR_IMAGE, *schema.EXTRA_VARS)
_BLOSC_HEADER = 16
#: group attribute: "sha256" when every slot's chunks are bound to its key (see the module doc)
DIGEST_ATTR = "content_digest"
DIGEST_DIR = "digests"


class DamagedChunk(WorkbenchError):
    """A chunk of a done slot is missing or damaged (the message names it and the fix)."""


def crc32c(data: bytes) -> bytes:
    """CRC32C of `data` as the 4 little-endian bytes zarr's Crc32cCodec appends."""
    import google_crc32c

    return np.uint32(google_crc32c.value(bytes(data))).tobytes()


def done_bytes(protected: bool) -> bytes:
    """The content of a set done flag's chunk file (1, plus its checksum in protected groups)."""
    return b"\x01" + crc32c(b"\x01") if protected else b"\x01"


def array_info(group: Path, var: str) -> dict | None:
    """What verification needs of array `var` of a group (None when absent): `crc` and `blosc`
    (codecs), `chunk_nbytes` (decoded bytes of one chunk), `slotted` (leading image_id dim), `sep`."""
    try:
        meta = json.loads((Path(group) / var / "zarr.json").read_text())
    except (OSError, ValueError):
        return None
    names = [c.get("name") for c in meta.get("codecs", []) if isinstance(c, dict)]
    chunks = meta.get("chunk_grid", {}).get("configuration", {}).get("chunk_shape", [])
    try:
        itemsize = np.dtype(meta.get("data_type") if isinstance(meta.get("data_type"), str) else "uint8").itemsize
    except TypeError:  # a variable-length type (the "string" labels): no fixed chunk size to check
        itemsize = 1
    dims = meta.get("dimension_names") or []
    sep = meta.get("chunk_key_encoding", {}).get("configuration", {}).get("separator", "/")
    return {"crc": "crc32c" in names, "blosc": "blosc" in names, "shape": list(meta.get("shape", [])),
            "chunks": list(chunks), "chunk_nbytes": int(math.prod(chunks)) * itemsize,
            "slotted": bool(dims) and dims[0] == schema.DIMS["image"], "sep": sep}


def is_protected(group: Path) -> bool:
    """True when the group's rate chunks carry CRC32C checksums (schema version >= 2)."""
    info = array_info(group, schema.VAR_RATE)
    return bool(info and info["crc"])


def _slot_done(group: Path, i: int) -> bool:
    try:
        return (Path(group) / schema.VAR_DONE / "c" / str(i)).read_bytes() in (done_bytes(True), done_bytes(False))
    except OSError:
        return False


def _cube_of(group: Path, i: int | None) -> str:
    try:
        slot = json.loads((Path(group) / "zarr.json").read_text())["attributes"]["slots"][i]
        return f"{slot.get('name') or '?'} ({slot['key']})"
    except Exception:  # a damaged group still gets its error message
        return f"slot {i}"


def damaged(group: Path, key: str, reason: str) -> DamagedChunk:
    """The one-line error for chunk `key` (e.g. 'rate/c/0/0/0/0') of a group."""
    group = Path(group)
    parts = key.split("/")
    slot = int(parts[2]) if len(parts) > 2 and parts[1] == "c" and parts[2].isdigit() else None
    store = group.parent.parent
    return DamagedChunk(f"cube {_cube_of(group, slot)}: chunk {group.name}/{key} is {reason}: run `workbench check "
                        f"{store} --repair`, then `workbench cubes` again to recompute it")


def check_chunk(group: Path, key: str, data: bytes | None, info: dict) -> None:
    """Raise DamagedChunk when chunk `key` (raw file bytes, None when absent) of an array described
    by `info` (array_info) is missing from a done slot or fails its checksum / Blosc header."""
    parts = key.split("/")
    slot = int(parts[2]) if info["slotted"] and len(parts) > 2 and parts[2].isdigit() else None
    if data is None:
        var = parts[0]
        required = info["crc"] or var == schema.VAR_RATE
        if slot is not None and required and _slot_done(group, slot):
            raise damaged(group, key, "missing")
        return
    if info["crc"]:
        if len(data) < 4 or crc32c(data[:-4]) != data[-4:]:
            raise damaged(group, key, f"damaged (CRC32C checksum mismatch, {len(data)} bytes)")
        return
    if info["blosc"]:
        if len(data) < _BLOSC_HEADER:
            raise damaged(group, key, f"truncated ({len(data)} bytes, less than a Blosc header)")
        nbytes, cbytes = (int.from_bytes(data[o:o + 4], "little") for o in (4, 12))
        if data[0] == 0 or cbytes != len(data) or nbytes != info["chunk_nbytes"]:
            raise damaged(group, key, f"damaged (Blosc header says {cbytes} bytes holding {nbytes}, the file has "
                                      f"{len(data)} and the chunk needs {info['chunk_nbytes']})")


class CheckedStore(LocalStore):
    """A read-only zarr LocalStore over one cube group that verifies every chunk it serves (see module doc)."""

    def _info(self, var: str) -> dict | None:
        cache = self.__dict__.setdefault("_infos", {})
        if var not in cache:
            cache[var] = array_info(Path(self.root), var)
        return cache[var]

    def _verify(self, key: str, buf):
        parts = key.split("/")
        if len(parts) < 3 or parts[1] != "c" or parts[0] == schema.VAR_DONE:
            return buf
        info = self._info(parts[0])
        if info is None:
            return buf
        data = None if buf is None else buf.to_bytes()
        check_chunk(Path(self.root), key, data, info)
        if data is not None and parts[0] in SLOT_VARS and info["slotted"] and len(parts) > 2 and parts[2].isdigit() \
                and self._bound():
            self._check_bound(key, int(parts[2]), data)
        return buf

    def _bound(self) -> bool:
        if "_attrs" not in self.__dict__:
            try:
                self.__dict__["_attrs"] = json.loads((Path(self.root) / "zarr.json").read_text())["attributes"]
            except Exception:  # the group's own metadata is checked elsewhere (cache.meaning)
                self.__dict__["_attrs"] = {}
        return self.__dict__["_attrs"].get(DIGEST_ATTR) == "sha256"

    def _check_bound(self, key: str, i: int, data: bytes) -> None:
        group = Path(self.root)
        cache = self.__dict__.setdefault("_records", {})
        try:
            stamp = digest_path(group, i).stat().st_mtime_ns
        except OSError:
            stamp = None
        if cache.get(i, (None,))[0] != stamp or stamp is None:
            cache[i] = (stamp, read_digest(group, i))
        slots_ = self.__dict__["_attrs"].get("slots") or []
        cube_key = slots_[i].get("key") if i < len(slots_) and isinstance(slots_[i], dict) else None
        check_bound(group, key, data, cache[i][1], cube_key)

    async def get(self, key, prototype=None, byte_range=None):
        buf = await super().get(key, prototype, byte_range)
        return buf if byte_range is not None else self._verify(key, buf)

    def get_sync(self, key, *, prototype=None, byte_range=None):
        buf = super().get_sync(key, prototype=prototype, byte_range=byte_range)
        return buf if byte_range is not None else self._verify(key, buf)


def digest_path(group: Path, i: int) -> Path:
    """Where slot `i`'s content record lies (next to its done flag)."""
    return Path(group) / schema.VAR_DONE / DIGEST_DIR / f"{int(i)}.json"


def _hash(cube_key: str, rel: str, data: bytes) -> str:
    return hashlib.sha256(cube_key.encode() + b"\0" + rel.encode() + b"\0" + bytes(data)).hexdigest()


def slot_chunks(group: Path, i: int) -> list[str]:
    """Keys of every chunk of slot `i` of every per-slot array of a group (present or not)."""
    keys = []
    for var in SLOT_VARS:
        info = array_info(group, var)
        if info is not None and info["slotted"]:
            keys += _chunk_keys(var, info, i)
    return keys


def write_digest(group: Path, i: int, cube_key: str) -> None:
    """Record the SHA-256 of every chunk of slot `i` bound to `cube_key` (before its done flag is set)."""
    group = Path(group)
    chunks = {}
    for rel in slot_chunks(group, i):
        with open(group / rel, "rb") as fh:
            chunks[rel] = _hash(cube_key, rel, fh.read())
    target = digest_path(group, i)
    target.parent.mkdir(exist_ok=True)
    tmp = target.with_name(f"{target.name}.partial-{os.getpid()}")
    with open(tmp, "w") as fh:
        fh.write(json.dumps({"key": cube_key, "sha256": chunks}))
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(target)


def read_digest(group: Path, i: int) -> dict | None:
    """Slot `i`'s content record ({"key", "sha256": {chunk: hex}}), None when absent or unreadable."""
    try:
        rec = json.loads(digest_path(group, i).read_text())
    except (OSError, ValueError):
        return None
    return rec if isinstance(rec, dict) and isinstance(rec.get("sha256"), dict) else None


def check_bound(group: Path, key: str, data: bytes, record: dict | None, cube_key: str | None) -> None:
    """Raise DamagedChunk unless chunk `key` (raw bytes `data`) is the one recorded for its slot's cube."""
    if record is None:
        raise damaged(group, key, "unverifiable (its cube's content record is missing or unreadable)")
    if not cube_key or record.get("key") != cube_key:
        raise damaged(group, key, "another cube's (its content record names another key)")
    want = record["sha256"].get(key)
    if want is None or _hash(cube_key, key, data) != want:
        raise damaged(group, key, "not this cube's content (its SHA-256 differs from the record written with "
                                  "the cube: copied from another cube or changed after it was written)")


def _chunk_keys(var: str, info: dict, i: int) -> list[str]:
    """Keys of every chunk of slot `i` of a slotted array."""
    grid = [math.ceil(s / c) for s, c in zip(info["shape"][1:], info["chunks"][1:])]
    keys = []
    for idx in np.ndindex(*grid):
        keys.append(f"{var}/c{info['sep']}" + info["sep"].join(str(v) for v in (i, *idx)))
    return keys


def verify_slot(group: Path, i: int) -> None:
    """Read and verify every chunk of slot `i` (presence, checksum / Blosc header, decoding, finite
    rates); raise DamagedChunk naming the first bad one."""
    import zarr

    group = Path(group)
    try:
        attrs = json.loads((group / "zarr.json").read_text())["attributes"]
        cube_key = attrs["slots"][i]["key"]
    except Exception:  # the group's own metadata is checked elsewhere (cache.meaning)
        attrs, cube_key = {}, None
    record = read_digest(group, i) if attrs.get(DIGEST_ATTR) == "sha256" else None
    for var in SLOT_VARS:
        info = array_info(group, var)
        if info is None or not info["slotted"]:
            continue
        for key in _chunk_keys(var, info, i):
            try:
                data = (group / key).read_bytes()
            except FileNotFoundError:
                data = None
            except OSError as exc:
                raise damaged(group, key, f"unreadable ({exc.strerror or type(exc).__name__})") from None
            check_chunk(group, key, data, info)
            if data is not None and attrs.get(DIGEST_ATTR) == "sha256":
                check_bound(group, key, data, record, cube_key)
    g = zarr.open_group(CheckedStore(group, read_only=True), mode="r", zarr_format=3)
    for var in SLOT_VARS:
        if var not in g:
            continue
        try:
            values = np.asarray(g[var][i])
        except DamagedChunk:
            raise
        except Exception as exc:  # a decoder failure on an unprotected chunk whose header looked fine
            raise damaged(group, f"{var}/c/{i}", f"undecodable ({type(exc).__name__})") from None
        problem = schema.value_problem(var, values)
        if problem:
            raise damaged(group, f"{var}/c/{i}", f"damaged ({problem})")
