"""workbench.pipeline: an image as the model sees it, and source pixels on the model grid."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from workbench.adapters import load_model
from workbench.ddim import invert, make_schedule
from workbench.errors import WorkbenchError
from workbench.images import to_tensor
from workbench.pipeline import prepare_image, source_to_model_pixel


def test_prepare_image_resizes_encodes_and_inverts(tiny_pixel_dir):
    ad = load_model(tiny_pixel_dir, device="cpu")
    rng = np.random.default_rng(0)
    im = Image.fromarray(rng.integers(0, 256, (10, 20, 3), dtype=np.uint8))
    prep = prepare_image(ad, im, steps=3)
    assert prep.source_size == (10, 20) and prep.pixels.shape == (3, 16, 16)
    torch.testing.assert_close(prep.pixels, to_tensor(im, (16, 16)))
    torch.testing.assert_close(prep.x0, prep.pixels)  # a pixel model's encoder is the identity
    want = invert(ad, prep.x0, make_schedule(ad, 3))
    torch.testing.assert_close(prep.trajectory.states, want.states)
    assert prepare_image(ad, im, steps=3, with_trajectory=False).trajectory is None


def test_source_pixels_map_by_the_whole_image_resize(tiny_pixel_dir):
    ad = load_model(tiny_pixel_dir, device="cpu")  # 16x16 grid
    assert source_to_model_pixel(ad, 0, 0, (10, 20)) == (0, 0)
    assert source_to_model_pixel(ad, 19, 9, (10, 20)) == (14, 15)  # y 9*16/10 = 14.4, x 19*16/20 = 15.2
    assert source_to_model_pixel(ad, 10, 5, (10, 20)) == (8, 8)
    with pytest.raises(WorkbenchError, match=r"pixel \(x=20, y=0\) is outside the 20x10 image"):
        source_to_model_pixel(ad, 20, 0, (10, 20))
