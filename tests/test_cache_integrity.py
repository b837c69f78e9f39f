"""cache.integrity: a done slot verifies; one flipped byte in one of its chunks is named; the done flag
and the content record are read back."""
from __future__ import annotations

import pytest

from cache import integrity
from cache.store import CubeStore

from test_cache_store import synthetic_cube


def test_a_flipped_byte_is_found_in_the_chunk_that_holds_it(tmp_path):
    st = CubeStore(tmp_path / "st")
    key = st.put(synthetic_cube(1, name="a"))
    group = next(p.parent for p in (tmp_path / "st").rglob("zarr.json") if (p.parent / "rate").exists())
    assert integrity.slot_done(group, 0) and not integrity.slot_done(group, 1)
    integrity.verify_slot(group, 0)
    assert integrity.is_protected(group) and integrity.read_digest(group, 0)["key"] == key
    assert integrity.slot_chunks(group, 0) == ["rate/c/0/0/0/0", "image/c/0/0/0/0", "rate_se/c/0/0/0/0"]
    chunk = next(p for p in (group / "rate").rglob("*") if p.is_file() and p.name != "zarr.json")
    raw = bytearray(chunk.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    chunk.write_bytes(bytes(raw))
    with pytest.raises(integrity.DamagedChunk, match="rate"):
        integrity.verify_slot(group, 0)
