"""analysis.lowlevel: low-level features see edges and colour."""
from __future__ import annotations

import numpy as np

from analysis.lowlevel import LOWLEVEL_NAMES, lowlevel_features


def test_lowlevel_features_see_edges_and_colour():
    img = np.full((60, 80, 3), 128, np.uint8)
    img[:, 40:] = 20  # a vertical luminance edge
    img[10:20, 10:20] = (255, 0, 0)  # a red square
    f = lowlevel_features(img, width=80)
    assert tuple(f) == LOWLEVEL_NAMES
    assert all(m.shape == (60, 80) and np.isfinite(m).all() for m in f.values())
    assert f["edges"][30, 38:42].max() > 5 * f["edges"][30, 60]  # the edge, not the flat right half
    assert f["contrast"][30, 40] > f["contrast"][50, 70]
    assert f["colour"][15, 15] > f["colour"][50, 60]
    assert f["saturation"][15, 15] > f["saturation"][50, 60]
    flat = lowlevel_features(np.full((30, 40, 3), 90, np.uint8), width=40)
    assert np.allclose(flat["contrast"], 0, atol=1e-6) and np.allclose(flat["edges"], 0, atol=1e-6)
