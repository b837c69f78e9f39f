"""Data for the paper's curve figure: generation curves of a row of pixels over time, salient versus
not, and the mean curve of an image's salient and non-salient pixels.

The ground-truth density is brought to the model grid with `analysis.datasets.resize_map` (the same
resize as everywhere). Curves are in the cube's units, t ascending.
"""
from __future__ import annotations

import numpy as np

from workbench.errors import WorkbenchError

from .datasets import resize_map

__all__ = ["density_on_grid", "row_through_peak", "salient_mean_curves", "normalise_rows"]


def density_on_grid(density: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """The image-resolution density brought to the model grid (H, W), scaled to [0, 1]."""
    d = resize_map(density, grid).astype(np.float64)
    if not d.max() > 0:
        raise WorkbenchError("the density map is all zeros on the model grid")
    return d / d.max()


def row_through_peak(rate: np.ndarray, density_grid: np.ndarray, *, axis: str = "row") -> dict:
    """Curves of the row (or column) of model pixels through the density's maximum.

    rate: (N, H, W). Returns dict(index, axis, curves (P, N), density (P,)) with P = W (row) or H (column).
    """
    N, H, W = rate.shape
    if density_grid.shape != (H, W):
        raise WorkbenchError(f"density {density_grid.shape} is not on the cube's grid {(H, W)}")
    y, x = np.unravel_index(int(np.argmax(density_grid)), density_grid.shape)
    if axis == "row":
        return {"axis": "row", "index": int(y), "curves": rate[:, y, :].T.copy(), "density": density_grid[y].copy()}
    if axis == "column":
        return {"axis": "column", "index": int(x), "curves": rate[:, :, x].T.copy(), "density": density_grid[:, x].copy()}
    raise WorkbenchError(f"axis must be 'row' or 'column', got {axis!r}")


def normalise_rows(curves: np.ndarray) -> np.ndarray:
    """Each curve divided by its sum over time (a distribution over timesteps)."""
    c = np.asarray(curves, dtype=np.float64)
    s = c.sum(-1, keepdims=True)
    if (s <= 0).any():
        raise WorkbenchError("a curve sums to zero and cannot be normalised")
    return c / s


def salient_mean_curves(rate: np.ndarray, density_grid: np.ndarray, *, frac: float = 0.1) -> dict:
    """Mean normalised curve of the top-`frac` and bottom-`frac` density pixels of one image: (N,) each."""
    d = density_grid.ravel()
    top, bottom = d >= np.quantile(d, 1 - frac), d <= np.quantile(d, frac)
    c = normalise_rows(rate.reshape(rate.shape[0], -1).T)
    return {"salient": c[top].mean(0), "non_salient": c[bottom].mean(0), "frac": frac}
