"""analysis.curvefig: the curves the paper's figures draw, by hand on small cubes."""
from __future__ import annotations

import numpy as np
import pytest

from analysis.curvefig import density_on_grid, normalise_rows, row_through_peak, salient_mean_curves
from workbench.errors import WorkbenchError


def test_row_and_column_through_the_density_peak():
    rate = np.arange(2 * 3 * 4, dtype=np.float64).reshape(2, 3, 4)
    d = np.zeros((3, 4))
    d[1, 2] = 1
    row = row_through_peak(rate, d)
    assert row["axis"] == "row" and row["index"] == 1
    np.testing.assert_array_equal(row["curves"], [[4, 16], [5, 17], [6, 18], [7, 19]])
    col = row_through_peak(rate, d, axis="column")
    assert col["index"] == 2 and col["curves"].tolist() == [[2, 14], [6, 18], [10, 22]]
    np.testing.assert_array_equal(col["density"], [0, 1, 0])
    with pytest.raises(WorkbenchError, match="axis must be 'row' or 'column'"):
        row_through_peak(rate, d, axis="diagonal")
    with pytest.raises(WorkbenchError, match="not on the cube's grid"):
        row_through_peak(rate, np.zeros((4, 3)))


def test_normalised_curves_and_salient_means():
    np.testing.assert_allclose(normalise_rows(np.array([[1.0, 3.0], [2.0, 2.0]])), [[0.25, 0.75], [0.5, 0.5]])
    with pytest.raises(WorkbenchError, match="sums to zero"):
        normalise_rows(np.zeros((1, 3)))
    rate = np.ones((2, 2, 5))
    rate[0, 0, 0] = 3.0  # the salient pixel: (3, 1) over time -> (0.75, 0.25)
    d = np.zeros((2, 5))
    d[0, 0] = 1.0
    d[1, :] = -1.0  # the five least salient pixels
    out = salient_mean_curves(rate, d, frac=0.1)
    np.testing.assert_allclose(out["salient"], [0.75, 0.25])
    np.testing.assert_allclose(out["non_salient"], [0.5, 0.5])
    grid = density_on_grid(np.full((6, 10), 2.0), (3, 5))
    np.testing.assert_allclose(grid, np.ones((3, 5)))
    with pytest.raises(WorkbenchError, match="all zeros"):
        density_on_grid(np.zeros((6, 10)), (3, 5))
