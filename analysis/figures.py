"""Static PNG figures with PIL and NumPy only (no matplotlib, no kaleido): map grids for READMEs.

`colorize` maps a 2-D array to RGB with a viridis-like ramp; `map_grid` lays out rows of panels
(image | ground truth | maps ...) with column titles.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from .datasets import resize_map

__all__ = ["colorize", "map_grid", "save_png", "line_plot"]

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


def line_plot(x, series: list[dict], *, title: str = "", xlabel: str = "", ylabel: str = "",
              size: tuple[int, int] = (360, 640)) -> Image.Image:
    """A plain line plot: `series` = [dict(y=..., label=..., colour=(r, g, b), band=sd or None)], shared x."""
    H, W = size
    left, right, top, bottom = 70, 20, 30, 45
    im = Image.new("RGB", (W, H), "white")
    d = ImageDraw.Draw(im)
    x = np.asarray(x, dtype=np.float64)
    ys = [np.asarray(s["y"], dtype=np.float64) for s in series]
    bands = [np.asarray(s["band"], dtype=np.float64) if s.get("band") is not None else np.zeros_like(y)
             for s, y in zip(series, ys)]
    lo = min(float((y - b).min()) for y, b in zip(ys, bands))
    hi = max(float((y + b).max()) for y, b in zip(ys, bands))
    hi = hi if hi > lo else lo + 1

    def px(xv, yv):
        return (left + (xv - x.min()) / (x.max() - x.min()) * (W - left - right),
                top + (hi - yv) / (hi - lo) * (H - top - bottom))

    d.rectangle([left, top, W - right, H - bottom], outline="black")
    for k in range(5):
        yv = lo + k * (hi - lo) / 4
        _, py = px(x.min(), yv)
        d.line([left - 4, py, left, py], fill="black")
        d.text((4, py - 6), f"{yv:.3g}", fill="black")
        xv = x.min() + k * (x.max() - x.min()) / 4
        pxx, _ = px(xv, lo)
        d.line([pxx, H - bottom, pxx, H - bottom + 4], fill="black")
        d.text((pxx - 10, H - bottom + 6), f"{xv:.0f}", fill="black")
    for s, y, b in zip(series, ys, bands):
        c = tuple(s.get("colour", (0, 0, 0)))
        if b.any():
            poly = [px(a, v) for a, v in zip(x, y + b)] + [px(a, v) for a, v in zip(x[::-1], (y - b)[::-1])]
            layer = Image.new("RGB", im.size, "white")
            ImageDraw.Draw(layer).polygon(poly, fill=tuple(int(255 - 0.25 * (255 - v)) for v in c))
            mask = Image.new("L", im.size, 0)
            ImageDraw.Draw(mask).polygon(poly, fill=255)
            im.paste(Image.blend(im, layer, 0.6), (0, 0), mask)
            d = ImageDraw.Draw(im)
        d.line([px(a, v) for a, v in zip(x, y)], fill=c, width=2)
    for k, s in enumerate(series):
        d.line([W - right - 170, top + 12 + 14 * k, W - right - 150, top + 12 + 14 * k], fill=tuple(s["colour"]), width=2)
        d.text((W - right - 145, top + 6 + 14 * k), str(s["label"]), fill="black")
    d.text((left, 8), title, fill="black")
    d.text(((W - left) // 2, H - 16), xlabel, fill="black")
    d.text((4, top - 16), ylabel, fill="black")
    return im
