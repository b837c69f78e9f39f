"""Pictures of an edit with PIL only: a labelled image row/grid and a line chart of curves."""
from __future__ import annotations

from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

__all__ = ["image_grid", "curves_png", "mask_overlay", "COLOURS"]

COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2"]


def _font(size: int = 12):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def image_grid(rows: Sequence[Sequence[Image.Image]], labels: Sequence[str] = (), *, cell: int = 192,
               row_labels: Sequence[str] = (), pad: int = 4) -> Image.Image:
    """A grid of images (each resized to `cell` x `cell`, nearest) with column labels on top and
    optional row labels on the left."""
    n_cols = max(len(r) for r in rows)
    head = 18 if labels else 0
    left = 150 if row_labels else 0
    W = left + n_cols * (cell + pad) + pad
    H = head + len(rows) * (cell + pad) + pad
    out = Image.new("RGB", (W, H), "white")
    draw = ImageDraw.Draw(out)
    font = _font(12)
    for j, lab in enumerate(labels):
        draw.text((left + pad + j * (cell + pad) + 2, 2), lab, fill="black", font=font)
    for i, row in enumerate(rows):
        y = head + pad + i * (cell + pad)
        if i < len(row_labels):
            draw.text((4, y + cell // 2 - 6), row_labels[i][:24], fill="black", font=font)
        for j, im in enumerate(row):
            if im is None:
                continue
            out.paste(im.convert("RGB").resize((cell, cell), Image.Resampling.NEAREST), (left + pad + j * (cell + pad), y))
    return out


def mask_overlay(image: Image.Image, mask: np.ndarray, colour=(255, 0, 0), alpha: float = 0.45) -> Image.Image:
    """The image with a bool/float mask (H, W) at its size tinted in `colour`."""
    arr = np.asarray(image.convert("RGB")).astype(np.float32)
    m = np.asarray(mask, np.float32)[..., None] * alpha
    out = arr * (1 - m) + np.asarray(colour, np.float32) * m
    return Image.fromarray(out.clip(0, 255).astype(np.uint8))


def curves_png(timesteps: np.ndarray, curves: dict[str, np.ndarray], *, title: str = "", size=(640, 400),
               t_b: float | None = None) -> Image.Image:
    """Line chart of named curves over timesteps (x: timestep, y: generation rate), with a legend."""
    W, H = size
    l, r, t, b = 60, 150, 28, 40
    img = Image.new("RGB", size, "white")
    d = ImageDraw.Draw(img)
    font = _font(11)
    ts = np.asarray(timesteps, np.float64)
    vals = np.concatenate([np.asarray(c, np.float64) for c in curves.values()]) if curves else np.zeros(1)
    lo, hi = float(np.nanmin(vals)), float(np.nanmax(vals))
    lo, hi = (lo - 0.05 * (hi - lo + 1e-9), hi + 0.05 * (hi - lo + 1e-9))
    x0, x1 = float(ts.min()), float(ts.max()) if ts.max() > ts.min() else float(ts.min()) + 1

    def px(tv, v):
        return (l + (tv - x0) / (x1 - x0) * (W - l - r), t + (hi - v) / (hi - lo) * (H - t - b))

    d.rectangle([l, t, W - r, H - b], outline="black")
    for k in range(5):
        v = lo + (hi - lo) * k / 4
        _, yy = px(x0, v)
        d.line([l - 4, yy, l, yy], fill="black")
        d.text((4, yy - 6), f"{v:.3g}", fill="black", font=font)
        tv = x0 + (x1 - x0) * k / 4
        xx, _ = px(tv, lo)
        d.line([xx, H - b, xx, H - b + 4], fill="black")
        d.text((xx - 10, H - b + 6), f"{tv:.0f}", fill="black", font=font)
    d.text((l + (W - l - r) // 2 - 30, H - 16), "timestep t", fill="black", font=font)
    d.text((l, 6), title[:80], fill="black", font=_font(12))
    if t_b is not None and x0 <= t_b <= x1:
        xx, _ = px(t_b, lo)
        d.line([xx, t, xx, H - b], fill="#bbbbbb")
        d.text((xx + 2, t + 2), "t_b", fill="#888888", font=font)
    for n, (name, c) in enumerate(curves.items()):
        col = COLOURS[n % len(COLOURS)]
        pts = [px(tv, v) for tv, v in zip(ts, np.asarray(c, np.float64))]
        d.line(pts, fill=col, width=2)
        for p in pts:
            d.ellipse([p[0] - 2, p[1] - 2, p[0] + 2, p[1] + 2], fill=col)
        d.line([W - r + 10, t + 10 + 16 * n, W - r + 30, t + 10 + 16 * n], fill=col, width=3)
        d.text((W - r + 34, t + 4 + 16 * n), name[:16], fill="black", font=font)
    return img
