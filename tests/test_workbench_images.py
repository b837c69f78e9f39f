"""workbench.images: high bit depths scaled not clipped, the [-1, 1] round trip, one-line errors."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from workbench.errors import WorkbenchError
from workbench.images import check_image_file, check_pixels, read_image, resize_tensor, to_rgb, to_tensor, to_uint8


def test_to_rgb_scales_high_bit_depths_and_drops_alpha():
    sixteen = Image.fromarray(np.array([[0, 32768, 65535]], dtype=np.uint16))
    assert np.asarray(to_rgb(sixteen))[0, :, 0].tolist() == [0, 128, 255]  # 32768 * 255 / 65535 = 127.5 -> 128
    unit = Image.fromarray(np.array([[0.0, 0.5, 1.0]], dtype=np.float32))
    assert np.asarray(to_rgb(unit))[0, :, 1].tolist() == [0, 128, 255]
    wide = Image.fromarray(np.array([[-1.0, 1.0, 3.0]], dtype=np.float32))  # outside 0..255: min-max scaled
    assert np.asarray(to_rgb(wide))[0, :, 2].tolist() == [0, 128, 255]
    rgba = Image.fromarray(np.array([[[10, 20, 30, 0]]], dtype=np.uint8), "RGBA")
    assert np.asarray(to_rgb(rgba)).tolist() == [[[10, 20, 30]]]


def test_tensor_round_trip_is_exact_for_every_grey_level():
    levels = np.arange(256, dtype=np.uint8)
    im = Image.fromarray(np.stack([levels.reshape(16, 16)] * 3, -1))
    x = to_tensor(im)
    assert x.shape == (3, 16, 16) and float(x.min()) == -1.0 and float(x.max()) == 1.0
    np.testing.assert_array_equal(to_uint8(x), np.asarray(im))


def test_resize_tensor_nearest_is_subsampling_and_keeps_leading_dims():
    x = torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).reshape(2, 3, 4, 4)
    torch.testing.assert_close(resize_tensor(x, (2, 2), mode="nearest"), x[..., ::2, ::2])
    assert resize_tensor(torch.full((5, 8, 8), 0.25), (3, 5)).allclose(torch.tensor(0.25))


def test_read_image_errors_are_one_line(tmp_path, monkeypatch):
    with pytest.raises(WorkbenchError, match="no such image"):
        read_image(tmp_path / "none.png")
    with pytest.raises(WorkbenchError, match="is a directory"):
        read_image(tmp_path)
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(WorkbenchError, match="is an empty file"):
        read_image(tmp_path / "empty.png")
    (tmp_path / "text.png").write_text("not an image")
    with pytest.raises(WorkbenchError, match=r"not a readable image \(UnidentifiedImageError\)"):
        read_image(tmp_path / "text.png")
    Image.new("RGB", (11, 10)).save(tmp_path / "ok.png")
    assert check_image_file(tmp_path / "ok.png") == (11, 10)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    check_pixels(10, 10, "small")
    with pytest.raises(WorkbenchError, match="big is 11x10 = 0 Mpx, more than"):
        check_pixels(11, 10, "big")
    with pytest.raises(WorkbenchError, match="decompression bomb"):
        check_image_file(tmp_path / "ok.png")
