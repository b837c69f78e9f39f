"""cache.chunks: CRC32C as zarr appends it, and a shard's index written, read and checked."""
from __future__ import annotations

import numpy as np
import pytest

from cache.chunks import EMPTY, crc32c, encode_index, shard_index


def test_crc32c_is_the_castagnoli_checksum_little_endian():
    assert crc32c(b"123456789") == (0xE3069283).to_bytes(4, "little")  # the standard check value


def test_shard_index_round_trip_and_damage(tmp_path):
    path = tmp_path / "shard"
    path.write_bytes(bytes(range(15)) + encode_index([(0, 10), None, (10, 5)]))
    idx = shard_index(path, 3)
    assert idx.tolist() == [[0, 10], [EMPTY, EMPTY], [10, 5]]
    raw = bytearray(path.read_bytes())
    raw[-10] ^= 1  # one bit of the index
    bad = tmp_path / "bad"
    bad.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="fails its CRC32C"):
        shard_index(bad, 3)
    past = tmp_path / "past"
    past.write_bytes(bytes(range(15)) + encode_index([(0, 10), None, (10, 6)]))
    with pytest.raises(ValueError, match="points past the chunks"):
        shard_index(past, 3)
    short = tmp_path / "short"
    short.write_bytes(b"\0" * 20)
    with pytest.raises(ValueError, match=r"shorter \(20 bytes\) than its index \(52\)"):
        shard_index(short, 3)
    assert np.asarray(idx).dtype == np.dtype("<u8")
