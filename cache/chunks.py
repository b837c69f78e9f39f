"""Synchronous access to a group's chunks in both on-disk layouts: one file per chunk, or sharded.

A group as `workbench cubes` writes it keeps every chunk of a slot in a file of its own
(`rate/c/<slot>/0/0/0`): writers never share a file, so a killed writer damages nothing done. A
*compacted* group (cache.compact) holds the same chunk bytes in one Zarr v3 shard per array
(`rate/c/0/0/0/0`, codec `sharding_indexed`: the inner chunks back to back, then an index of
(offset, length) pairs with its own CRC32C). Plain zarr reads both; this module reads one chunk of
either without zarr's asynchronous machinery (one `pread`), which is what a curve or map query needs:

- `array_layout(group, var)`: what an array's metadata says (shape, the chunk a slot's data is
  cut into, codecs, sharding);
- `raw_chunk(group, layout, idx)`: the encoded bytes of chunk `idx` (None when absent), the same
  bytes in both layouts;
- `decode(layout, data)`: those bytes as an array, for the codec chains this workbench writes
  (bytes [+ Blosc] + CRC32C; the checksum is checked by the caller, cache.integrity);
- `shard_index` / `encode_index`: the shard index format (zarr's `sharding_indexed`, index at the end).
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import google_crc32c
import numpy as np
from numcodecs import blosc

__all__ = ["ArrayLayout", "array_layout", "raw_chunk", "decode", "shard_index", "encode_index", "EMPTY",
           "chunk_key", "chunk_file", "INDEX_CODECS", "fast_codecs", "crc32c"]

#: an absent inner chunk in a shard index (offset and length)
EMPTY = np.uint64(2**64 - 1)
#: the codecs of a shard's index: little-endian uint64 pairs, then their CRC32C
INDEX_CODECS = [{"name": "bytes", "configuration": {"endian": "little"}}, {"name": "crc32c"}]


def crc32c(data: bytes) -> bytes:
    """CRC32C of `data` as the 4 little-endian bytes zarr's Crc32cCodec appends."""
    return np.uint32(google_crc32c.value(bytes(data))).tobytes()


@dataclass(frozen=True)
class ArrayLayout:
    """An array of a group as its zarr.json describes it. `chunks`: the chunk shape its data is cut
    into (the inner chunks of a sharded array); `shard`: the shard shape (None: one file per chunk);
    `codecs`: the chunks' codec list; `fill`: the value of an absent chunk."""

    var: str
    shape: tuple[int, ...]
    chunks: tuple[int, ...]
    dtype: np.dtype
    codecs: tuple
    fill: object
    sep: str
    dims: tuple[str, ...]
    shard: tuple[int, ...] | None = None

    @property
    def crc(self) -> bool:
        """True when the chunks end with a CRC32C checksum."""
        return any(c.get("name") == "crc32c" for c in self.codecs if isinstance(c, dict))

    @property
    def blosc(self) -> bool:
        """True when the chunks are Blosc frames."""
        return any(c.get("name") == "blosc" for c in self.codecs if isinstance(c, dict))

    @property
    def grid(self) -> tuple[int, ...]:
        """Chunks along each dimension."""
        return tuple(math.ceil(s / c) for s, c in zip(self.shape, self.chunks))

    @property
    def chunk_nbytes(self) -> int:
        """Decoded bytes of one chunk."""
        return int(math.prod(self.chunks)) * self.dtype.itemsize

    @property
    def fast(self) -> bool:
        """True when `decode` reads these chunks (the codec chains this workbench writes)."""
        return fast_codecs(list(self.codecs)) and self.dtype.kind in "fiub"


def fast_codecs(codecs: list) -> bool:
    """True for bytes (little-endian or one-byte), optionally Blosc, then CRC32C: what `decode` reads."""
    names = [c.get("name") if isinstance(c, dict) else None for c in codecs]
    if names not in (["bytes", "blosc", "crc32c"], ["bytes", "crc32c"]):
        return False
    endian = (codecs[0].get("configuration") or {}).get("endian", "little")
    return endian == "little"


def array_layout(group: Path, var: str) -> ArrayLayout | None:
    """The layout of array `var` of a group (None when its metadata is absent or unreadable)."""
    try:
        meta = json.loads((Path(group) / var / "zarr.json").read_text())
        dtype = np.dtype(meta["data_type"]).newbyteorder("<")
        shape = tuple(int(v) for v in meta["shape"])
        grid = tuple(int(v) for v in meta["chunk_grid"]["configuration"]["chunk_shape"])
        codecs = list(meta.get("codecs") or [])
        sep = meta.get("chunk_key_encoding", {}).get("configuration", {}).get("separator", "/")
    except (OSError, ValueError, KeyError, TypeError):
        return None
    shard = None
    if codecs and isinstance(codecs[0], dict) and codecs[0].get("name") == "sharding_indexed":
        conf = codecs[0].get("configuration") or {}
        if conf.get("index_location", "end") != "end" or conf.get("index_codecs") != INDEX_CODECS:
            return None  # a shard index this workbench does not write
        shard, grid = grid, tuple(int(v) for v in conf["chunk_shape"])
        codecs = list(conf.get("codecs") or [])
    fill = meta.get("fill_value")
    fill = np.nan if fill == "NaN" else fill
    return ArrayLayout(var, shape, grid, dtype, tuple(codecs), fill, sep, tuple(meta.get("dimension_names") or ()),
                       shard)


def chunk_key(layout: ArrayLayout, idx: tuple[int, ...]) -> str:
    """The key of chunk `idx` (chunk grid coordinates) as the unsharded layout names its file: also
    the name a sharded array's inner chunk has in a slot's content record (cache.integrity)."""
    return f"{layout.var}/c{layout.sep}" + layout.sep.join(str(int(v)) for v in idx)


def _shard_of(layout: ArrayLayout, idx: tuple[int, ...]) -> tuple[tuple[int, ...], int]:
    """(shard grid coordinates, position of inner chunk `idx` in the shard's index, C order)."""
    per = tuple(s // c for s, c in zip(layout.shard, layout.chunks))
    shard = tuple(int(i) // p for i, p in zip(idx, per))
    within = tuple(int(i) % p for i, p in zip(idx, per))
    return shard, int(np.ravel_multi_index(within, per))


_INDEX_CACHE: dict[str, tuple[tuple, np.ndarray]] = {}


def shard_index(path: Path, n_inner: int) -> np.ndarray:
    """The index of the shard file at `path` ((n_inner, 2) uint64: offset, length; EMPTY where absent),
    cached by the file's identity. Raises ValueError when the index is truncated or fails its CRC32C,
    OSError when the file is unreadable."""
    st = os.stat(path)
    ident = (st.st_ino, st.st_mtime_ns, st.st_size)
    hit = _INDEX_CACHE.get(str(path))
    if hit is not None and hit[0] == ident:
        return hit[1]
    nbytes = 16 * n_inner + 4
    if st.st_size < nbytes:
        raise ValueError(f"shorter ({st.st_size} bytes) than its index ({nbytes})")
    with open(path, "rb") as fh:
        raw = os.pread(fh.fileno(), nbytes, st.st_size - nbytes)
    if crc32c(raw[:-4]) != raw[-4:]:
        raise ValueError("its index fails its CRC32C checksum")
    index = np.frombuffer(raw[:-4], dtype="<u8").reshape(n_inner, 2)
    ends = index[:, 0].astype(object) + index[:, 1].astype(object)
    present = index[:, 0] != EMPTY
    if present.any() and max(ends[present]) > st.st_size - nbytes:
        raise ValueError("its index points past the chunks it holds")
    if len(_INDEX_CACHE) > 256:
        _INDEX_CACHE.clear()
    _INDEX_CACHE[str(path)] = (ident, index)
    return index


def encode_index(entries: list[tuple[int, int] | None]) -> bytes:
    """A shard index for inner chunks at (offset, length) each (None: absent), with its CRC32C."""
    arr = np.array([(EMPTY, EMPTY) if e is None else e for e in entries], dtype="<u8").reshape(-1, 2)
    raw = arr.tobytes()
    return raw + crc32c(raw)


def chunk_file(group: Path, layout: ArrayLayout, idx: tuple[int, ...]) -> Path:
    """The file that holds chunk `idx`: its own, or its shard."""
    return Path(group) / chunk_key(layout, idx if layout.shard is None else _shard_of(layout, idx)[0])


def raw_chunk(group: Path, layout: ArrayLayout, idx: tuple[int, ...]) -> bytes | None:
    """The encoded bytes of chunk `idx` of an array of `group` (None when absent). Raises OSError
    when a file is unreadable and ValueError when a shard's index is damaged."""
    group = Path(group)
    if layout.shard is None:
        try:
            return (group / chunk_key(layout, idx)).read_bytes()
        except FileNotFoundError:
            return None
    shard, pos = _shard_of(layout, idx)
    path = group / chunk_key(layout, shard)
    per = math.prod(s // c for s, c in zip(layout.shard, layout.chunks))
    try:
        index = shard_index(path, per)
    except FileNotFoundError:
        return None
    off, n = (int(v) for v in index[pos])
    if off == int(EMPTY):
        return None
    with open(path, "rb") as fh:
        data = os.pread(fh.fileno(), n, off)
    if len(data) != n:
        raise ValueError(f"the shard {path.name} ends inside a chunk")
    return data


def decode(layout: ArrayLayout, data: bytes) -> np.ndarray:
    """Chunk bytes (checksum included, checked by the caller) -> an array of the chunk shape.
    Only for `layout.fast` arrays; a Blosc frame that does not decode to the chunk raises ValueError."""
    payload = data[:-4] if layout.crc else data
    if layout.blosc:
        payload = blosc.decompress(payload)
    if len(payload) != layout.chunk_nbytes:
        raise ValueError(f"decodes to {len(payload)} bytes, the chunk has {layout.chunk_nbytes}")
    return np.frombuffer(payload, dtype=layout.dtype).reshape(layout.chunks)
