"""analysis.protocol: the paper's extreme-pixel protocol by hand."""
from __future__ import annotations

import numpy as np
import pytest

from analysis.protocol import extreme_pixels, paper_protocol
from workbench.errors import WorkbenchError


def test_extreme_pixels_and_flat_truth():
    d = np.zeros((3, 4))
    d[1, 2] = 1.0
    top, bottom = extreme_pixels(d)
    assert top.tolist() == [6] and bottom.size == 11
    with pytest.raises(WorkbenchError, match="flat"):
        extreme_pixels(np.ones((3, 3)))


def test_paper_protocol_scores_the_pixel_under_the_maximum():
    rng = np.random.default_rng(4)
    t = np.arange(10, 1000, 40)
    cubes, dens = [], []
    for i in range(12):
        d = np.zeros((60, 80))  # ground truth at image resolution; its maximum at pixel (y, x)
        y, x = rng.integers(0, 60), rng.integers(0, 80)
        d[y, x] = 1.0
        d[0, 0] = d[59, 79] = 0.0
        rate = np.ones((t.size, 6, 8)) + 0.01 * rng.random((t.size, 6, 8))
        rate[::2, y * 6 // 60, x * 8 // 80] += 1.0  # the model pixel under the maximum oscillates
        cubes.append((rate, t))
        dens.append(d)
    res = paper_protocol(cubes, dens, windows=(3,), t_bs=(0, 400), draws=5)
    for s in res["settings"]:
        assert s["fraction"] == 1.0 and s["wins"] == 12 and s["sign_p"] < 0.001
    # with the oscillation moved off the salient pixel, the salient pixel never wins
    flipped = [(np.ones_like(r) + 0.01 * rng.random(r.shape), ts) for r, ts in cubes]
    res2 = paper_protocol(flipped, dens, windows=(3,), t_bs=(0,), draws=5)
    assert 0.0 < res2["settings"][0]["fraction_mean_over_draws"] < 1.0
    with pytest.raises(WorkbenchError, match="one cube per ground truth"):
        paper_protocol(cubes[:2], dens[:3])
