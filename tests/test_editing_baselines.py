"""workbench.editing.baselines: classical inpainting and Poisson blending."""
from __future__ import annotations

import numpy as np

from workbench.editing.baselines import biharmonic_inpaint, poisson_blend, telea_inpaint

from test_editing import _image


def test_baselines():
    img = np.asarray(_image(32, 32))
    mask = np.zeros((32, 32), bool)
    mask[10:20, 12:22] = True
    for fn in (biharmonic_inpaint, telea_inpaint):
        out = fn(img, mask)
        np.testing.assert_array_equal(out[~mask], img[~mask])
        assert np.abs(out[mask].astype(int) - img[mask]).mean() > 1
    # a composite whose foreground is 60 grey levels brighter than its background: Poisson blending
    # keeps the foreground's texture and removes most of the seam
    rng = np.random.default_rng(0)
    comp = np.full((32, 32, 3), 100.0) + rng.normal(0, 3, (32, 32, 3))
    tex = 20 * np.sin(np.arange(32) / 2.0)[None, :, None]
    comp[mask] = (160 + tex + np.zeros((32, 32, 3)))[mask]
    comp = comp.clip(0, 255).astype(np.uint8)
    out = poisson_blend(comp, mask)
    seam_before = comp[mask].mean() - comp[~mask].mean()
    seam_after = out[mask].astype(float).mean() - out[~mask].mean()
    assert abs(seam_after) < 0.3 * abs(seam_before)
    inner = np.zeros_like(mask)
    inner[12:18, 14:20] = True
    np.testing.assert_allclose(np.diff(out[inner].reshape(6, 6, 3)[..., 0].astype(float), axis=1),
                               np.diff(comp[inner].reshape(6, 6, 3)[..., 0].astype(float), axis=1), atol=4)
