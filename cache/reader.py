"""The group's per-slot arrays as lazy xarray data read synchronously, one verified chunk at a time.

`xarray.open_dataset(engine="zarr")` reads through zarr's asynchronous store: every read waits for
an event-loop thread, which on a loaded 2-core machine costs more than the read itself (measured:
a 64x64x25 cube's curve 20-80 ms at load 7-13, the chunk's read and decoding well under 1 ms).
`SlotArray` is an xarray `BackendArray` over one per-slot array of a group (rate, rate_se, image,
the probe statistics) that reads the chunks a selection needs with one `pread` each, in either
layout (cache.chunks), verifies them as `cache.integrity.CheckedStore` does (presence in a done
slot, CRC32C, the slot's content record) and decodes them itself. `cache.slots.open_group` puts
it under the variables whose codecs it decodes; the Dataset is otherwise what xarray's zarr
backend made (attributes, encoding, coordinates). A group rewritten while open (compacted or
expanded by cache.compact: the same values in another layout) is followed: the array re-reads its
layout when the group's metadata file changed. Decoded chunks are kept (`CACHE_BYTES` per process)
while the file holding them is unchanged (inode, modification time, size): a cube's curve, map and
standard errors read the same chunk, verified once.
"""
from __future__ import annotations

import itertools
import os
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np
from xarray.backends import BackendArray
from xarray.core import indexing

from . import chunks, integrity

__all__ = ["SlotArray", "CACHE_BYTES"]

#: decoded chunks kept per process (least recently used first out), each valid while its file is unchanged
CACHE_BYTES = 64 * 2**20
_DECODED: OrderedDict = OrderedDict()
_DECODED_BYTES = 0
_LOCK = threading.Lock()


def _drop(nbytes: int) -> None:
    global _DECODED_BYTES
    _DECODED_BYTES -= nbytes


def _identity(path: Path) -> tuple | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


class SlotArray(BackendArray):
    """Array `var` of the group at `group` (cache.integrity.array_info `info`), read lazily; `keys`:
    the slots' cube keys, `bound`: the group binds chunks to them (content records)."""

    def __init__(self, group: Path, var: str, info: dict, keys: list[str], *, bound: bool):
        self.group, self.var, self.keys, self.bound = Path(group), var, list(keys), bool(bound)
        self.shape = tuple(info["layout"].shape)
        self.dtype = info["layout"].dtype.newbyteorder("=")
        self._load(info)

    def _load(self, info: dict) -> None:
        self._info = info
        self._records = integrity.Records(self.group) if self.bound else None
        self._stamp = _identity(self.group / "zarr.json")

    def __getitem__(self, key: indexing.ExplicitIndexer) -> np.ndarray:
        return indexing.explicit_indexing_adapter(key, self.shape, indexing.IndexingSupport.BASIC, self._raw)

    def _current(self) -> dict:
        """The array's layout, re-read when the group was rewritten since (compaction)."""
        if _identity(self.group / "zarr.json") != self._stamp:
            info = integrity.array_info(self.group, self.var)
            if info is not None and info["layout"].fast and tuple(info["layout"].shape) == self.shape:
                self._load(info)
        return self._info

    def _chunk(self, info: dict, idx: tuple[int, ...]) -> np.ndarray | None:
        """Chunk `idx` decoded: read and verified, or from the cache while the file holding it is unchanged
        (the curve, the map and the SEs of one cube read the same chunks)."""
        lay = info["layout"]
        ident = _identity(chunks.chunk_file(self.group, lay, idx))
        ck = (str(self.group), self.var, idx)
        with _LOCK:  # dashboards read from several threads
            hit = _DECODED.get(ck)
            if hit is not None and ident is not None and hit[0] == ident:
                _DECODED.move_to_end(ck)
                return hit[1]
        cube_key = self.keys[idx[0]] if idx[0] < len(self.keys) else None
        block = integrity.decoded_chunk(self.group, info, idx, self._records, cube_key)
        if block is not None and ident is not None:
            with _LOCK:
                old = _DECODED.pop(ck, None)
                if old is not None:
                    _drop(old[1].nbytes)
                _DECODED[ck] = (ident, block)
                _drop(-block.nbytes)
                while _DECODED_BYTES > CACHE_BYTES and _DECODED:
                    _drop(_DECODED.popitem(last=False)[1][1].nbytes)
        return block

    def _raw(self, key: tuple) -> np.ndarray:
        info = self._current()
        lay = info["layout"]
        sel = []
        for k, n in zip(key, self.shape):
            if isinstance(k, slice):
                sel.append(range(*k.indices(n)))
            else:
                sel.append(int(k) + n if int(k) < 0 else int(k))
        shape = [len(s) for s in sel if isinstance(s, range)]
        if any(isinstance(s, range) and len(s) == 0 for s in sel):
            return np.empty(shape, dtype=self.dtype)
        lo = [s if isinstance(s, int) else min(s[0], s[-1]) for s in sel]
        hi = [s + 1 if isinstance(s, int) else max(s[0], s[-1]) + 1 for s in sel]
        box = np.full([h - l for l, h in zip(lo, hi)], lay.fill, dtype=self.dtype)
        spans = [range(l // c, (h - 1) // c + 1) for l, h, c in zip(lo, hi, lay.chunks)]
        for idx in itertools.product(*spans):
            block = self._chunk(info, idx)
            if block is None:
                continue
            g0 = [max(i * c, l) for i, c, l in zip(idx, lay.chunks, lo)]
            g1 = [min((i + 1) * c, h) for i, c, h in zip(idx, lay.chunks, hi)]
            box[tuple(slice(a - l, b - l) for a, b, l in zip(g0, g1, lo))] = \
                block[tuple(slice(a - i * c, b - i * c) for a, b, i, c in zip(g0, g1, idx, lay.chunks))]
        local = []
        for s, l in zip(sel, lo):
            if isinstance(s, int):
                local.append(s - l)
            else:
                stop = s.stop - l
                local.append(slice(s.start - l, stop if stop >= 0 else None, s.step))
        return box[tuple(local)]
