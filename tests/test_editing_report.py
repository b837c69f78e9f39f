"""workbench.editing.report: the grid's geometry, the overlay's formula, the chart's colours."""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageColor

from workbench.editing.report import COLOURS, curves_png, image_grid, mask_overlay


def test_image_grid_places_each_image_in_its_cell():
    red, blue = Image.new("RGB", (3, 3), (255, 0, 0)), Image.new("RGB", (5, 2), (0, 0, 255))
    g = image_grid([[red, None], [blue]], labels=["a", "b"], cell=10, pad=2)
    assert g.size == (2 + 2 * 12, 18 + 2 * 12 + 2)
    px = g.load()
    assert px[2 + 5, 18 + 2 + 5] == (255, 0, 0)  # row 0, column 0
    assert px[2 + 12 + 5, 18 + 2 + 5] == (255, 255, 255)  # a missing image leaves its cell white
    assert px[2 + 5, 18 + 2 + 12 + 5] == (0, 0, 255)  # row 1
    assert image_grid([[red]], row_labels=["x"], cell=10).size[0] == 150 + 4 + 14


def test_mask_overlay_tints_only_the_mask():
    im = Image.new("RGB", (2, 1), (100, 100, 100))
    out = np.asarray(mask_overlay(im, np.array([[True, False]]), colour=(200, 0, 0), alpha=0.5))
    assert out.tolist() == [[[150, 50, 50], [100, 100, 100]]]


def test_curves_png_draws_each_curve_in_its_colour():
    ts = np.array([1, 21, 41, 61])
    img = curves_png(ts, {"before": np.array([1.0, 2, 3, 4]), "after": np.array([4.0, 3, 2, 1])}, t_b=30, size=(320, 200))
    colours = {c for _, c in img.getcolors(320 * 200)}
    assert img.size == (320, 200)
    assert ImageColor.getrgb(COLOURS[0]) in colours and ImageColor.getrgb(COLOURS[1]) in colours
