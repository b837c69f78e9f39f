"""Turning plotly selections and clicks on an image into masks and pixels (pure functions).

On a plotly image or heatmap, box and lasso selections report nothing by themselves; the
edit view therefore lays an invisible scatter of pixel centres over the image
(`pixel_grid_trace`), which makes plotly report the selection's outline (`range` for a box,
`lassoPoints` for a lasso) and the selected centres. `mask_from_selection` rasterises the
outline at the image's own resolution (the centres are the fallback).
"""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from skimage.draw import polygon

__all__ = ["grid_stride", "pixel_grid_trace", "box_mask", "polygon_mask", "mask_from_selection", "click_xy"]


def grid_stride(size: tuple[int, int], max_points: int = 6000) -> int:
    """Stride (pixels) of the invisible grid so that it has at most `max_points` centres."""
    H, W = size
    return max(1, int(np.ceil(np.sqrt(H * W / max_points))))


def pixel_grid_trace(size: tuple[int, int], *, max_points: int = 6000) -> go.Scatter:
    """An invisible, selectable scatter over pixel centres (every `grid_stride` pixels) of an (H, W) image."""
    H, W = size
    s = grid_stride(size, max_points)
    ys, xs = np.mgrid[s // 2:H:s, s // 2:W:s]
    return go.Scatter(x=xs.ravel().astype(np.float32), y=ys.ravel().astype(np.float32), mode="markers",
                      marker=dict(size=max(4, s), opacity=0.0, color="#000"), name="pixels", showlegend=False,
                      hovertemplate="x=%{x:.0f} y=%{y:.0f}<extra></extra>",
                      selected=dict(marker=dict(opacity=0.0)), unselected=dict(marker=dict(opacity=0.0)))


def box_mask(size: tuple[int, int], x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    """Boolean (H, W): pixels whose centres lie inside the box [x0, x1] x [y0, y1] (any corner order)."""
    H, W = size
    xa, xb = sorted((x0, x1))
    ya, yb = sorted((y0, y1))
    ys, xs = np.arange(H)[:, None], np.arange(W)[None, :]
    return (xs >= xa) & (xs <= xb) & (ys >= ya) & (ys <= yb)


def polygon_mask(size: tuple[int, int], xs, ys) -> np.ndarray:
    """Boolean (H, W): pixels whose centres lie inside the polygon (xs, ys) in pixel coordinates."""
    H, W = size
    m = np.zeros((H, W), dtype=bool)
    rr, cc = polygon(np.asarray(ys, dtype=np.float64), np.asarray(xs, dtype=np.float64), shape=(H, W))
    m[rr, cc] = True
    return m


def mask_from_selection(event: dict | None, size: tuple[int, int]) -> np.ndarray | None:
    """A plotly `selected` event (Panel's `selected_data`) -> boolean mask (H, W), or None when empty."""
    if not event:
        return None
    sel = event.get("selector") or {}
    state = sel.get("selector_state") or {}
    rng = event.get("range") or ({"x": state["xrange"], "y": state["yrange"]} if "xrange" in state else None)
    lasso = event.get("lassoPoints") or ({"x": state["xs"], "y": state["ys"]} if "xs" in state else None)
    if rng and rng.get("x") and rng.get("y"):
        m = box_mask(size, rng["x"][0], rng["y"][0], rng["x"][1], rng["y"][1])
    elif lasso and len(lasso.get("x") or []) >= 3:
        m = polygon_mask(size, lasso["x"], lasso["y"])
    else:
        pts = event.get("points") or []
        m = np.zeros(size, dtype=bool)
        for p in pts:
            y, x = int(round(float(p["y"]))), int(round(float(p["x"])))
            if 0 <= y < size[0] and 0 <= x < size[1]:
                m[y, x] = True
    return m if m.any() else None


def click_xy(event: dict | None, size: tuple[int, int]) -> tuple[int, int] | None:
    """A plotly click event -> (x, y) image pixel, or None."""
    if not event or not event.get("points"):
        return None
    p = event["points"][0]
    try:
        x, y = int(round(float(p["x"]))), int(round(float(p["y"])))
    except (KeyError, TypeError, ValueError):
        return None
    H, W = size
    return (x, y) if 0 <= x < W and 0 <= y < H else None
