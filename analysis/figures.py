"""Static PNG figures with PIL and NumPy only (no matplotlib, no kaleido): map grids for READMEs.

`colorize` maps a 2-D array to RGB with a viridis-like ramp; `map_grid` lays out rows of panels
(image | ground truth | maps ...) with column titles.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from .datasets import resize_map

__all__ = ["colorize", "map_grid", "save_png"]

# viridis at 0, .25, .5, .75, 1
_RAMP = np.array([[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]], dtype=np.float64)


def colorize(m: np.ndarray, *, lo: float | None = None, hi: float | None = None) -> np.ndarray:
    """(H, W) float -> (H, W, 3) uint8, linear between lo and hi (default the 1st and 99th percentiles)."""
    m = np.asarray(m, dtype=np.float64)
    lo = float(np.percentile(m, 1)) if lo is None else lo
    hi = float(np.percentile(m, 99)) if hi is None else hi
    u = np.clip((m - lo) / (hi - lo), 0, 1) if hi > lo else np.zeros_like(m)
    x = u * (len(_RAMP) - 1)
    i = np.minimum(x.astype(int), len(_RAMP) - 2)
    f = (x - i)[..., None]
    return (_RAMP[i] * (1 - f) + _RAMP[i + 1] * f).round().astype(np.uint8)


def _panel(p, size: tuple[int, int]) -> Image.Image:
    H, W = size
    if isinstance(p, Image.Image):
        return p.convert("RGB").resize((W, H), Image.Resampling.LANCZOS)
    a = np.asarray(p)
    if a.ndim == 3 and a.dtype == np.uint8:
        return Image.fromarray(a).resize((W, H), Image.Resampling.LANCZOS)
    return Image.fromarray(colorize(resize_map(a, (H, W))))


def map_grid(rows: list[list], titles: list[str], *, panel: tuple[int, int] = (150, 200), row_labels=None,
             pad: int = 4, header: int = 18) -> Image.Image:
    """A grid of panels: each row a list of PIL images, uint8 RGB arrays or 2-D maps (colourised);
    `titles` label the columns, `row_labels` (optional) the rows."""
    H, W = panel
    ncol = max(len(r) for r in rows)
    left = 60 if row_labels else 0
    out = Image.new("RGB", (left + ncol * (W + pad) + pad, header + len(rows) * (H + pad) + pad), "white")
    draw = ImageDraw.Draw(out)
    for j, t in enumerate(titles):
        draw.text((left + pad + j * (W + pad) + 2, 3), t, fill="black")
    for i, r in enumerate(rows):
        y = header + pad + i * (H + pad)
        if row_labels:
            draw.text((3, y + H // 2 - 6), str(row_labels[i]), fill="black")
        for j, p in enumerate(r):
            out.paste(_panel(p, panel), (left + pad + j * (W + pad), y))
    return out


def save_png(im: Image.Image, path: str | Path) -> Path:
    """Write a PNG (parents created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path, optimize=True)
    return path
