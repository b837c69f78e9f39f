"""Chunk integrity: every chunk a done slot needs is present and undamaged, or reading it is a one-line error.

Groups of schema version >= 2 append a CRC32C checksum to every chunk (`zarr.codecs.Crc32cCodec`
after Blosc) and write every chunk of a slot, empty ones included. Reads verify each chunk before
it is decoded: the workbench's own reads through `verified_chunk` (one synchronous read of the one
chunk needed, in either layout, cache.chunks), zarr's through `CheckedStore`:

- protected arrays (crc32c in the codec list): the stored checksum must match (truncated, zeroed
  and bit-flipped chunks all fail it);
- unprotected Blosc arrays (stores of schema version 1): the Blosc header's sizes must match the
  file size and the chunk's size, so a truncated or zeroed chunk is an error before the
  decompressor sees it (a truncated chunk used to crash it with SIGSEGV);
- a chunk of a done slot that is absent is an error (zarr would serve the fill value); in
  unprotected groups only `rate` chunks are required (they skipped writing all-zero chunks).

Groups with the attribute `content_digest` also bind every slot's content to its key: before the
done flag, `write_digest` records a SHA-256 of (cube key, chunk name, chunk bytes) for every chunk
of the slot in `done/digests/<slot>.json` (a compacted group keeps every slot's record in one
file, `done/digests.json`: the chunks and their names are the same). A chunk copied from another
cube (its checksum valid) or rewritten through zarr (a NaN written into a rate chunk) no longer
matches, and every read of it is refused like a damaged chunk.

A damaged chunk raises `DamagedChunk` (a `WorkbenchError`) naming the chunk, its cube and the fix,
`workbench check STORE --repair`. `verify_slot` reads every chunk of one slot once (what `workbench
check` does for every done slot), checks the slot's content record and the values (cache.meaning).
Done flags: one file per slot (`done/c/<i>`), or, in a compacted group, one chunk holding every
slot's flag (`read_flags`).
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import zarr
from zarr.abc.store import RangeByteRequest
from zarr.storage import LocalStore

from workbench.errors import WorkbenchError

from . import chunks, schema
from .chunks import crc32c

__all__ = ["DamagedChunk", "CheckedStore", "array_info", "is_protected", "verify_slot", "crc32c",
           "done_bytes", "SLOT_VARS", "DIGEST_ATTR", "write_digest", "read_digest", "digest_path", "slot_chunks",
           "verified_chunk", "decoded_chunk", "read_flags", "slot_done", "slot_grid", "damaged", "DIGESTS_FILE",
           "slot_values", "Records", "SlotVerifier"]

#: the per-slot arrays whose chunks a done slot needs
SLOT_VARS = (schema.VAR_RATE, schema.VAR_IMAGE, *schema.EXTRA_VARS)
_BLOSC_HEADER = 16
#: group attribute: "sha256" when every slot's chunks are bound to its key (see the module doc)
DIGEST_ATTR = "content_digest"
DIGEST_DIR = "digests"
#: a compacted group's content records, every slot's in one file (inside the done array's folder)
DIGESTS_FILE = "digests.json"


class DamagedChunk(WorkbenchError):
    """A chunk of a done slot is missing or damaged (the message names it and the fix)."""


def done_bytes(protected: bool) -> bytes:
    """The content of a set done flag's chunk file (1, plus its checksum in protected groups)."""
    return b"\x01" + crc32c(b"\x01") if protected else b"\x01"


def array_info(group: Path, var: str) -> dict | None:
    """What verification needs of array `var` of a group (None when absent): `crc` and `blosc`
    (codecs), `chunk_nbytes` (decoded bytes of one chunk), `slotted` (leading image_id dim), `sep`,
    `layout` (cache.chunks.ArrayLayout; sharded arrays describe their inner chunks)."""
    lay = chunks.array_layout(group, var)
    if lay is None:
        return None
    return {"crc": lay.crc, "blosc": lay.blosc, "shape": list(lay.shape), "chunks": list(lay.chunks),
            "chunk_nbytes": lay.chunk_nbytes, "slotted": bool(lay.dims) and lay.dims[0] == schema.DIMS["image"],
            "sep": lay.sep, "layout": lay}


def is_protected(group: Path) -> bool:
    """True when the group's rate chunks carry CRC32C checksums (schema version >= 2)."""
    info = array_info(group, schema.VAR_RATE)
    return bool(info and info["crc"])


def read_flags(group: Path, n: int) -> tuple[np.ndarray, list[tuple[int, str]]]:
    """The done flags of a group of `n` slots ((n,) bool; an absent or unreadable flag is not done) and
    (slot, reason) for every flag that is neither 0 nor 1. Reads the flag files `done/c/<i>` directly
    (1 raw byte each, plus its checksum; absent = 0), or a compacted group's one flag chunk."""
    valid = {b"\x00": 0, b"\x01": 1, b"\x00" + crc32c(b"\x00"): 0, b"\x01" + crc32c(b"\x01"): 1}
    done = np.zeros(n, dtype=bool)
    bad: list[tuple[int, str]] = []
    folder = Path(group) / schema.VAR_DONE / "c"
    lay = chunks.array_layout(group, schema.VAR_DONE)
    if lay is not None and lay.shard is None and lay.chunks and lay.chunks[0] > 1:  # compacted: one chunk
        try:
            data = (folder / "0").read_bytes()
        except FileNotFoundError:
            return done, bad
        except OSError as exc:
            return done, [(i, f"its done flag is unreadable ({exc.strerror or type(exc).__name__})") for i in range(n)]
        m = lay.chunks[0]
        if len(data) != m + 4 or crc32c(data[:-4]) != data[-4:]:
            return done, [(i, "its done flag is damaged (the flag chunk fails its CRC32C checksum)") for i in range(n)]
        flags = np.frombuffer(data[:n], dtype=np.uint8)
        done[:] = flags == 1
        bad = [(int(i), f"its done flag holds {int(flags[i]):02x}, neither 0 nor 1") for i in np.nonzero(flags > 1)[0]]
        return done, bad
    if not folder.is_dir():
        return done, bad
    for f in sorted(folder.iterdir(), key=lambda p: p.name):
        if not f.name.isdigit() or int(f.name) >= n:
            continue
        try:
            data = f.read_bytes()
        except OSError as exc:
            bad.append((int(f.name), f"its done flag is unreadable ({exc.strerror or type(exc).__name__})"))
            continue
        if data in valid:
            done[int(f.name)] = bool(valid[data])
        else:
            bad.append((int(f.name), f"its done flag holds {data[:8].hex() or 'nothing'}, neither 0 nor 1"))
    return done, bad


def slot_done(group: Path, i: int) -> bool:
    """Whether slot `i`'s done flag is set: its flag file, or a compacted group's flag chunk (n bytes and
    a checksum, read without the array's metadata: longer than any one flag's file)."""
    folder = Path(group) / schema.VAR_DONE / "c"
    try:
        data = (folder / str(i)).read_bytes()
    except OSError:
        data = None
    if data in (done_bytes(True), done_bytes(False)):
        return True
    if data is None and i > 0:
        try:
            data = (folder / "0").read_bytes()
        except OSError:
            return False
    if data is None or len(data) <= len(done_bytes(True)) or len(data) - 4 <= i:
        return False
    return crc32c(data[:-4]) == data[-4:] and data[i] == 1


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
    """Raise DamagedChunk when chunk `key` (raw bytes, None when absent) of an array described
    by `info` (array_info) is missing from a done slot or fails its checksum / Blosc header."""
    parts = key.split("/")
    slot = int(parts[2]) if info["slotted"] and len(parts) > 2 and parts[2].isdigit() else None
    if data is None:
        var = parts[0]
        required = info["crc"] or var == schema.VAR_RATE
        if slot is not None and required and slot_done(group, slot):
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


class Records:
    """The content records of a group's slots, re-read when their file changes (either layout)."""

    def __init__(self, group: Path):
        self.group = Path(group)
        self._cache: dict = {}

    def get(self, i: int) -> dict | None:
        """Slot `i`'s content record ({"key", "sha256": {chunk: hex}}), None when absent or unreadable."""
        merged = self.group / schema.VAR_DONE / DIGESTS_FILE
        path = merged if merged.exists() else digest_path(self.group, i)
        try:
            st = path.stat()
            stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        except OSError:
            return None
        name = path.name if path == merged else i
        hit = self._cache.get(name)
        if hit is None or hit[0] != stamp:
            hit = (stamp, _load_records(path, merged=path == merged))
            self._cache[name] = hit
        return hit[1].get(i) if path == merged else hit[1]


def _load_records(path: Path, *, merged: bool):
    try:
        rec = json.loads(path.read_text())
    except (OSError, ValueError):
        return {} if merged else None
    if merged:
        slots_ = rec.get("slots") if isinstance(rec, dict) else None
        if not isinstance(slots_, dict):
            return {}
        return {int(k): v for k, v in slots_.items() if str(k).isdigit() and isinstance(v, dict)
                and isinstance(v.get("sha256"), dict)}
    return rec if isinstance(rec, dict) and isinstance(rec.get("sha256"), dict) else None


def _group_attrs(group: Path) -> dict:
    try:
        return json.loads((Path(group) / "zarr.json").read_text())["attributes"]
    except Exception:  # the group's own metadata is checked elsewhere (cache.meaning)
        return {}


class CheckedStore(LocalStore):
    """A read-only zarr LocalStore over one cube group that verifies every chunk it serves (see module doc);
    a compacted group's shards are verified inner chunk by inner chunk."""

    def _info(self, var: str) -> dict | None:
        cache = self.__dict__.setdefault("_infos", {})
        if var not in cache:
            cache[var] = array_info(Path(self.root), var)
        return cache[var]

    def _verify(self, key: str, buf, byte_range=None):
        parts = key.split("/")
        if len(parts) < 3 or parts[1] != "c" or parts[0] == schema.VAR_DONE:
            return buf
        info = self._info(parts[0])
        if info is None:
            return buf
        lay = info["layout"]
        if lay.shard is not None:
            return self._verify_shard(key, buf, byte_range, info)
        if byte_range is not None:
            return buf
        data = None if buf is None else buf.to_bytes()
        self._check(key, data, info)
        return buf

    def _check(self, key: str, data: bytes | None, info: dict) -> None:
        check_chunk(Path(self.root), key, data, info)
        parts = key.split("/")
        if data is not None and parts[0] in SLOT_VARS and info["slotted"] and len(parts) > 2 and parts[2].isdigit() \
                and self._bound():
            i = int(parts[2])
            slots_ = self.__dict__["_attrs"].get("slots") or []
            cube_key = slots_[i].get("key") if i < len(slots_) and isinstance(slots_[i], dict) else None
            check_bound(Path(self.root), key, data, self._records().get(i), cube_key)

    def _records(self) -> Records:
        return self.__dict__.setdefault("_recs", Records(Path(self.root)))

    def _verify_shard(self, key: str, buf, byte_range, info: dict):
        """Inner chunks of a shard: a read of one (a byte range the index names) or of the whole shard."""
        if buf is None or not (byte_range is None or isinstance(byte_range, RangeByteRequest)):
            return buf  # an absent shard (every chunk missing: found by check) or the index (zarr checks its CRC32C)
        lay = info["layout"]
        per = tuple(s // c for s, c in zip(lay.shard, lay.chunks))
        shard = tuple(int(v) for v in key.split("/")[2:])
        try:
            index = chunks.shard_index(Path(self.root) / key, int(np.prod(per)))
        except (OSError, ValueError) as exc:
            raise damaged(Path(self.root), key, f"damaged ({exc})") from None
        data = buf.to_bytes()
        for pos, (off, n) in enumerate(index.tolist()):
            if off == int(chunks.EMPTY):
                continue
            if byte_range is not None and (off, off + n) != (byte_range.start, byte_range.end):
                continue
            within = np.unravel_index(pos, per)
            idx = tuple(int(s * p + w) for s, p, w in zip(shard, per, within))
            part = data if byte_range is not None else data[off:off + n]
            self._check(chunks.chunk_key(lay, idx), part, info)
        return buf

    def _bound(self) -> bool:
        if "_attrs" not in self.__dict__:
            self.__dict__["_attrs"] = _group_attrs(Path(self.root))
        return self.__dict__["_attrs"].get(DIGEST_ATTR) == "sha256"

    async def get(self, key, prototype=None, byte_range=None):
        buf = await super().get(key, prototype, byte_range)
        return self._verify(key, buf, byte_range)

    def get_sync(self, key, *, prototype=None, byte_range=None):
        buf = super().get_sync(key, prototype=prototype, byte_range=byte_range)
        return self._verify(key, buf, byte_range)


def digest_path(group: Path, i: int) -> Path:
    """Where slot `i`'s content record lies (next to its done flag) in a group that is not compacted."""
    return Path(group) / schema.VAR_DONE / DIGEST_DIR / f"{int(i)}.json"


def _hash(cube_key: str, rel: str, data: bytes) -> str:
    return hashlib.sha256(cube_key.encode() + b"\0" + rel.encode() + b"\0" + bytes(data)).hexdigest()


def slot_chunks(group: Path, i: int) -> list[str]:
    """Keys of every chunk of slot `i` of every per-slot array of a group (present or not)."""
    keys = []
    for var in SLOT_VARS:
        info = array_info(group, var)
        if info is not None and info["slotted"]:
            keys += [chunks.chunk_key(info["layout"], idx) for idx in slot_grid(info["layout"], i)]
    return keys


def write_digest(group: Path, i: int, cube_key: str, *, durable: bool = True) -> None:
    """Record the SHA-256 of every chunk of slot `i` bound to `cube_key` (before its done flag is set);
    `durable`: fsynced before it is renamed into place (else the caller syncs before any flag)."""
    group = Path(group)
    recs = {}
    for rel in slot_chunks(group, i):
        with open(group / rel, "rb") as fh:
            recs[rel] = _hash(cube_key, rel, fh.read())
    target = digest_path(group, i)
    target.parent.mkdir(exist_ok=True)
    tmp = target.with_name(f"{target.name}.partial-{os.getpid()}")
    with open(tmp, "w") as fh:
        fh.write(json.dumps({"key": cube_key, "sha256": recs}))
        if durable:
            fh.flush()
            os.fsync(fh.fileno())
    tmp.replace(target)


def read_digest(group: Path, i: int) -> dict | None:
    """Slot `i`'s content record ({"key", "sha256": {chunk: hex}}), None when absent or unreadable."""
    return Records(Path(group)).get(int(i))


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


def slot_grid(lay: chunks.ArrayLayout, i: int) -> list[tuple[int, ...]]:
    """Chunk grid coordinates of every chunk of slot `i` of a slotted array (one image per chunk row)."""
    return [(int(i), *idx) for idx in np.ndindex(*lay.grid[1:])]


def verified_chunk(group: Path, info: dict, idx: tuple[int, ...], records: Records | None = None,
                   cube_key: str | None = None) -> bytes | None:
    """The raw bytes of chunk `idx` of the array `info` (array_info) describes, read once (either
    layout) and verified as `CheckedStore` verifies them: present if its slot is done, checksum or
    Blosc header, and, with `records` (the group's content records), bound to `cube_key`. None when
    absent from a slot that is not done."""
    lay = info["layout"]
    key = chunks.chunk_key(lay, idx)
    try:
        data = chunks.raw_chunk(group, lay, idx)
    except ValueError as exc:
        raise damaged(group, key, f"unreadable ({exc})") from None
    except OSError as exc:
        raise damaged(group, key, f"unreadable ({exc.strerror or type(exc).__name__})") from None
    check_chunk(group, key, data, info)
    if data is not None and records is not None and info["slotted"]:
        check_bound(group, key, data, records.get(int(idx[0])), cube_key)
    return data


def decoded_chunk(group: Path, info: dict, idx: tuple[int, ...], records: Records | None = None,
                  cube_key: str | None = None) -> np.ndarray | None:
    """Chunk `idx` read and verified (`verified_chunk`) and decoded to the chunk shape (a fast-decodable
    array: cache.chunks.ArrayLayout.fast); None when absent from a slot that is not done."""
    data = verified_chunk(group, info, idx, records, cube_key)
    if data is None:
        return None
    try:
        return chunks.decode(info["layout"], data)
    except Exception as exc:  # a frame whose checksum held but that does not decode (unprotected groups)
        raise damaged(group, chunks.chunk_key(info["layout"], idx), f"undecodable ({type(exc).__name__})") from None


def slot_values(group: Path, info: dict, i: int, records: Records | None, cube_key: str | None) -> np.ndarray:
    """Slot `i` of a fast-decodable slotted array (cache.chunks.ArrayLayout.fast), every chunk verified
    and decoded (`decoded_chunk`): shape = the array's shape without its first dimension."""
    lay = info["layout"]
    out = np.full(lay.shape[1:], lay.fill, dtype=lay.dtype)
    for idx in slot_grid(lay, i):
        block = decoded_chunk(group, info, idx, records, cube_key)
        if block is None:
            continue
        region = tuple(slice(j * c, min((j + 1) * c, s)) for j, c, s in zip(idx[1:], lay.chunks[1:], lay.shape[1:]))
        out[region] = block[0][tuple(slice(0, r.stop - r.start) for r in region)]
    return out


class SlotVerifier:
    """Verifies the slots of one group (`verify(i)`: see `verify_slot`), reading the group's metadata and
    content records once for all of them (the group's zarr.json holds every slot's attributes: parsing it
    per slot cost more than the slot's chunks in a group of 1,000)."""

    def __init__(self, group: Path):
        self.group = Path(group)
        self.attrs = _group_attrs(self.group)
        self.records = Records(self.group) if self.attrs.get(DIGEST_ATTR) == "sha256" else None
        self.infos = {}
        for var in SLOT_VARS:
            info = array_info(self.group, var)
            if info is not None and info["slotted"]:
                self.infos[var] = info

    def verify(self, i: int) -> None:
        """Read and verify every chunk of slot `i` once; raise DamagedChunk naming the first bad one."""
        group = self.group
        try:
            cube_key = self.attrs["slots"][i]["key"]
        except Exception:  # the group's own metadata is checked elsewhere (cache.meaning)
            cube_key = None
        slow = []
        for var, info in self.infos.items():
            if not info["layout"].fast:
                for idx in slot_grid(info["layout"], i):
                    verified_chunk(group, info, idx, self.records, cube_key)
                slow.append(var)
                continue
            problem = schema.value_problem(var, slot_values(group, info, i, self.records, cube_key))
            if problem:
                raise damaged(group, f"{var}/c/{i}", f"damaged ({problem})")
        if slow:  # codecs this module does not decode (older groups): through zarr
            g = zarr.open_group(CheckedStore(group, read_only=True), mode="r", zarr_format=3)
            for var in slow:
                try:
                    values = np.asarray(g[var][i])
                except DamagedChunk:
                    raise
                except Exception as exc:  # a decoder failure on an unprotected chunk whose header looked fine
                    raise damaged(group, f"{var}/c/{i}", f"undecodable ({type(exc).__name__})") from None
                problem = schema.value_problem(var, values)
                if problem:
                    raise damaged(group, f"{var}/c/{i}", f"damaged ({problem})")


def verify_slot(group: Path, i: int) -> None:
    """Read and verify every chunk of slot `i` once (presence, checksum / Blosc header, content record,
    decoding, values no cube can hold); raise DamagedChunk naming the first bad one."""
    SlotVerifier(group).verify(i)
