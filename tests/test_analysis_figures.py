"""analysis.figures: the colour ramp by hand, panels where the grid says, PNGs written."""
from __future__ import annotations

import numpy as np
from PIL import Image

from analysis.figures import colorize, line_plot, map_grid, save_png


def test_colorize_interpolates_the_viridis_stops():
    c = colorize(np.array([[0.0, 0.125, 0.5, 1.0, 2.0]]), lo=0.0, hi=1.0)
    assert c.dtype == np.uint8
    assert c[0].tolist() == [[68, 1, 84], [64, 42, 112], [33, 145, 140], [253, 231, 37], [253, 231, 37]]
    assert colorize(np.ones((2, 2)), lo=1.0, hi=1.0)[0, 0].tolist() == [68, 1, 84]  # flat: the lowest colour


def test_map_grid_places_each_panel_and_save_png_writes_it(tmp_path):
    red = np.zeros((5, 5, 3), np.uint8)
    red[...] = (200, 10, 10)
    grid = map_grid([[red, np.zeros((3, 3))], [Image.new("RGB", (2, 2), (0, 0, 250))]], ["a", "b"], panel=(10, 20))
    assert grid.size == (4 + 2 * 24, 18 + 2 * 14 + 4)  # (width, height): pads of 4, a header of 18
    px = grid.load()
    assert px[4 + 10, 22 + 5] == (200, 10, 10)  # the middle of the first panel
    assert px[4 + 24 + 10, 22 + 5] == (68, 1, 84)  # a flat map: the lowest colour
    assert px[4 + 10, 22 + 14 + 5] == (0, 0, 250)
    out = save_png(grid, tmp_path / "deep" / "g.png")
    assert Image.open(out).size == grid.size


def test_line_plot_draws_each_series_in_its_colour():
    im = line_plot(np.arange(5), [dict(y=np.arange(5.0), label="up", colour=(255, 0, 0)),
                                  dict(y=np.ones(5), label="flat", colour=(0, 0, 255), band=np.full(5, 0.2))],
                   size=(120, 200))
    colours = {c for _, c in im.getcolors(200 * 120)}
    assert im.size == (200, 120) and (255, 0, 0) in colours and (0, 0, 255) in colours
