"""dashboards.selection: box, lasso and point selections as masks, against hand counts."""
from __future__ import annotations

import numpy as np

from dashboards import selection


def test_box_and_lasso_masks_against_hand_counts():
    m = selection.box_mask((10, 12), 2.2, 7.9, 5, 3)  # corners in any order; centres inside count
    assert m.sum() == 3 * 5 and m[3, 3] and m[7, 5] and not m[8, 3] and not m[3, 2]
    tri = selection.polygon_mask((10, 10), [0, 9, 0], [0, 0, 9])  # right triangle
    assert tri[1, 1] and not tri[8, 8] and 40 <= tri.sum() <= 55


def test_mask_from_plotly_selection_events():
    size = (20, 30)
    box = {"points": [{"x": 5, "y": 5}], "range": {"x": [4, 10], "y": [2, 6]}}
    np.testing.assert_array_equal(selection.mask_from_selection(box, size), selection.box_mask(size, 4, 2, 10, 6))
    lasso = {"points": [{"x": 5, "y": 5}], "lassoPoints": {"x": [2, 12, 12, 2], "y": [2, 2, 8, 8]}}
    assert selection.mask_from_selection(lasso, size).sum() == selection.box_mask(size, 2, 2, 12, 8).sum()
    pts = {"points": [{"x": 3, "y": 4}, {"x": 7, "y": 1}]}
    m = selection.mask_from_selection(pts, size)
    assert m.sum() == 2 and m[4, 3] and m[1, 7]
    assert selection.mask_from_selection({"points": []}, size) is None
    g = selection.pixel_grid_trace((600, 800), max_points=6000)
    assert len(g.x) <= 6000 and g.marker.opacity == 0
