"""workbench.editing.masks: erosion and the boundary band against scipy."""
from __future__ import annotations

import numpy as np
import torch

from workbench.editing.masks import band, erode


def test_erosion_and_band_match_scikit_image():
    from scipy.ndimage import binary_erosion

    rng = np.random.default_rng(0)
    m = np.zeros((20, 24), bool)
    m[3:15, 4:20] = True
    m[rng.random(m.shape) < 0.05] = False
    for k in (3, 5):
        ours = erode(torch.from_numpy(m).float(), k).numpy() > 0.5
        ref = binary_erosion(np.pad(m, k, constant_values=True), np.ones((k, k), bool))[k:-k, k:-k]
        np.testing.assert_array_equal(ours, ref)
        np.testing.assert_array_equal(band(torch.from_numpy(m).float(), k).numpy() > 0.5, m & ~ref)
