"""The edit at the source resolution: the model-size change, upsampled and composited into the source."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import distance_transform_edt

from workbench.editing.composite import composite_change, default_feather, feather_weights


def _images(H0=90, W0=120, h=16, w=16, seed=0):
    rng = np.random.default_rng(seed)
    source = rng.integers(20, 230, (H0, W0, 3), dtype=np.uint8)
    original = rng.integers(20, 230, (h, w, 3), dtype=np.uint8)
    return source, original


def test_outside_the_feathered_band_the_output_is_the_input_exactly():
    source, original = _images()
    rng = np.random.default_rng(1)
    edited = np.clip(original.astype(int) + rng.integers(-60, 60, original.shape), 0, 255).astype(np.uint8)
    mask = np.zeros(source.shape[:2], bool)
    mask[30:60, 40:80] = True
    feather = 6.0
    out = composite_change(source, original, edited, mask, feather=feather)
    assert out.shape == source.shape and out.dtype == np.uint8  # the source's resolution
    dist = distance_transform_edt(~mask)  # independent: distance of every pixel to the mask
    outside = dist >= feather
    assert outside.sum() > 0.5 * mask.size
    np.testing.assert_array_equal(out[outside], source[outside])  # bit for bit
    assert np.abs(out[mask].astype(int) - source[mask]).mean() > 5  # and the edit is there inside


def test_a_constant_change_is_added_inside_and_faded_linearly_across_the_band():
    source, original = _images(seed=3)
    edited = np.clip(original.astype(int) + 12, 0, 255).astype(np.uint8)
    delta = edited.astype(int) - original  # 12 wherever no clipping happened (values 20..229)
    assert (delta == 12).all()
    mask = np.zeros(source.shape[:2], bool)
    mask[20:50, 30:70] = True
    out = composite_change(source, original, edited, mask, feather=5.0)
    # closed form: source + round(w * 12), w = 1 inside, 1 - d/5 in the band, 0 beyond
    w = np.clip(1 - distance_transform_edt(~mask) / 5.0, 0, 1)
    expect = np.clip(np.rint(source + w[..., None] * 12), 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(out, expect)


def test_without_a_mask_the_change_applies_everywhere_at_the_source_size():
    source, original = _images(seed=4)
    edited = np.clip(original.astype(int) - 7, 0, 255).astype(np.uint8)
    out = composite_change(source, original, edited, None)
    np.testing.assert_array_equal(out, np.clip(source.astype(int) - 7, 0, 255).astype(np.uint8))


def test_feather_weights_and_default_width():
    mask = np.zeros((11, 11), bool)
    mask[5, 5] = True
    w = feather_weights(mask, 4.0)
    assert w[5, 5] == 1 and w[5, 7] == pytest.approx(0.5) and w[5, 9] == 0 and w[0, 0] == 0
    assert default_feather((600, 800), (64, 64)) == pytest.approx(2 * 800 / 64)
    with pytest.raises(ValueError):
        composite_change(np.zeros((8, 8, 3), np.uint8), np.zeros((4, 4, 3), np.uint8), np.zeros((4, 4, 3), np.uint8),
                         np.zeros((7, 8), bool))
