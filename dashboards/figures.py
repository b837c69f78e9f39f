"""Plotly figures of the dashboards, as pure functions of arrays (no Panel, no state).

Coordinates: maps are drawn in the cube's grid coordinates (column x, row y; cell j spans
[j - 0.5, j + 0.5]); an image of another resolution is stretched over the same extent, so
a click anywhere lands on grid coordinates that `click_to_pixel` rounds to a cell.
Large maps are block-averaged for display (`downsample`) so a slider step sends at most
`max_side`^2 values; the full-resolution values stay on the server.
"""
from __future__ import annotations

import base64
import io

import numpy as np
import plotly.graph_objects as go

__all__ = ["COLOURS", "LIGHT", "png_data_uri", "image_trace", "downsample", "robust_range", "heatmap_trace",
           "markers_trace", "map_figure", "curves_figure", "click_to_pixel", "colour_lut", "overlay_rgb"]

#: curve / marker colours (colour-blind-safe Okabe-Ito, then Tableau)
COLOURS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9", "#F0E442", "#000000",
           "#8c564b", "#7f7f7f")


_GRID = "#E5ECF6"
#: a small light template: plotly's default templates are large and copied on every figure, which
#: costs tens of milliseconds per update
LIGHT = go.layout.Template(layout=dict(
    paper_bgcolor="white", plot_bgcolor="white", font=dict(color="#2a3f5f"), colorway=list(COLOURS),
    xaxis=dict(gridcolor=_GRID, linecolor=_GRID, zerolinecolor=_GRID, ticks=""),
    yaxis=dict(gridcolor=_GRID, linecolor=_GRID, zerolinecolor=_GRID, ticks=""),
    hoverlabel=dict(align="left")))


def png_data_uri(rgb: np.ndarray) -> str:
    """uint8 (H, W, 3) or (H, W) -> 'data:image/png;base64,...'."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb)).save(buf, format="PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def image_trace(rgb: np.ndarray, extent: tuple[int, int] | None = None, *, name: str = "image") -> go.Image:
    """An image trace (uint8 (h, w, 3)) stretched over the grid extent (H, W) (default its own size)."""
    h, w = rgb.shape[:2]
    H, W = extent or (h, w)
    dx, dy = W / w, H / h
    return go.Image(source=png_data_uri(rgb), x0=-0.5 + dx / 2, y0=-0.5 + dy / 2, dx=dx, dy=dy, name=name,
                    hoverinfo="x+y", hovertemplate="x=%{x:.0f} y=%{y:.0f}<extra></extra>")


def downsample(values: np.ndarray, max_side: int = 256) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Block-average a map (H, W) to at most `max_side` per side.

    Returns (z (h, w) float32, xs (w,), ys (h,)) where xs/ys are the block centres in grid units.
    """
    v = np.asarray(values, dtype=np.float32)
    H, W = v.shape
    f = max(1, int(np.ceil(max(H, W) / max_side)))
    if f == 1:
        return v, np.arange(W, dtype=np.float32), np.arange(H, dtype=np.float32)
    h, w = H // f, W // f
    z = v[:h * f, :w * f].reshape(h, f, w, f).mean(axis=(1, 3))
    centre = (f - 1) / 2
    return (z.astype(np.float32), (np.arange(w) * f + centre).astype(np.float32),
            (np.arange(h) * f + centre).astype(np.float32))


def robust_range(values: np.ndarray, lo: float = 1.0, hi: float = 99.0) -> tuple[float, float]:
    """Colour range from percentiles (ignores outliers); never an empty range."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return 0.0, 1.0
    a, b = (float(x) for x in np.percentile(v, [lo, hi]))
    if b <= a:
        a, b = float(v.min()), float(v.max())
        if b <= a:
            b = a + 1.0
    return a, b


def heatmap_trace(values: np.ndarray, *, name: str, colorscale: str = "Viridis", opacity: float = 1.0,
                  max_side: int = 256, colorbar_title: str = "", zrange: tuple[float, float] | None = None
                  ) -> go.Heatmap:
    """A heatmap of a (H, W) map in grid coordinates, block-averaged to `max_side` for display."""
    z, xs, ys = downsample(values, max_side)
    zmin, zmax = zrange or robust_range(z)
    return go.Heatmap(z=z, x=xs, y=ys, zmin=zmin, zmax=zmax, colorscale=colorscale, opacity=opacity, name=name,
                      colorbar=dict(title=dict(text=colorbar_title, side="right"), thickness=12, len=0.9),
                      hovertemplate="x=%{x:.0f} y=%{y:.0f}<br>" + name + "=%{z:.4g}<extra></extra>")


def markers_trace(pixels: list[tuple[int, int]], *, name: str = "pixels") -> go.Scatter:
    """Clicked pixels (y, x) as numbered markers in the curve colours."""
    ys = [p[0] for p in pixels]
    xs = [p[1] for p in pixels]
    cols = [COLOURS[i % len(COLOURS)] for i in range(len(pixels))]
    return go.Scatter(x=xs, y=ys, mode="markers+text", name=name, text=[str(i + 1) for i in range(len(pixels))],
                      textposition="top right", textfont=dict(color="white", size=12),
                      marker=dict(symbol="circle-open", size=13, line=dict(width=3), color=cols),
                      hoverinfo="skip", showlegend=False)


def _map_layout(fig: go.Figure, shape: tuple[int, int], title: str, height: int) -> None:
    H, W = shape
    fig.update_layout(title=dict(text=title, x=0.02, y=0.98, font=dict(size=14)), height=height,
                      margin=dict(l=40, r=10, t=34, b=30), template=LIGHT, hovermode="closest",
                      clickmode="event", uirevision="keep", dragmode="zoom", showlegend=False)
    fig.update_xaxes(range=[-0.5, W - 0.5], constrain="domain", showgrid=False, zeroline=False)
    fig.update_yaxes(range=[H - 0.5, -0.5], scaleanchor="x", scaleratio=1, constrain="domain", showgrid=False,
                     zeroline=False)


def map_figure(shape: tuple[int, int], *, image: np.ndarray | None = None, values: np.ndarray | None = None,
               name: str = "value", title: str = "", opacity: float = 1.0, colorscale: str = "Viridis",
               pixels: list[tuple[int, int]] = (), height: int = 430, max_side: int = 256,
               zrange: tuple[float, float] | None = None) -> go.Figure:
    """A map on the grid (H, W): optional image below, optional heatmap of `values` above, markers on top."""
    traces = []
    if image is not None:
        traces.append(image_trace(image, shape))
    if values is not None:
        traces.append(heatmap_trace(values, name=name, colorscale=colorscale, opacity=opacity, max_side=max_side,
                                    zrange=zrange))
    traces.append(markers_trace(list(pixels)))
    fig = go.Figure(traces, layout=dict(template=LIGHT))
    _map_layout(fig, shape, title, height)
    return fig


def curves_figure(timesteps: np.ndarray, curves: list[tuple[str, np.ndarray]], *, t_now: float | None = None,
                  t_b: float | None = None, title: str = "Generation curves", height: int = 430,
                  yaxis_title: str = "generation rate") -> go.Figure:
    """Curves (label, values (N,)) over ascending timesteps; a line at `t_now`, the cut-off t <= t_b shaded."""
    ts = np.asarray(timesteps)
    fig = go.Figure(layout=dict(template=LIGHT))
    for i, (label, vals) in enumerate(curves):
        fig.add_trace(go.Scatter(x=ts, y=np.asarray(vals, dtype=np.float64), mode="lines+markers", name=label,
                                 line=dict(color=COLOURS[i % len(COLOURS)], width=2), marker=dict(size=4)))
    shapes, notes = [], []
    if t_b is not None and len(ts) and curves and t_b > ts.min():
        shapes.append(dict(type="rect", xref="x", yref="paper", x0=float(ts.min()), x1=float(t_b), y0=0, y1=1,
                           fillcolor="#999", opacity=0.15, line_width=0, layer="below"))
        notes.append(dict(text="t ≤ t_b (not in F)", x=float(ts.min()), y=1, xref="x", yref="paper",
                          xanchor="left", yanchor="top", showarrow=False, font=dict(size=10, color="#555")))
    if t_now is not None and curves:
        shapes.append(dict(type="line", xref="x", yref="paper", x0=float(t_now), x1=float(t_now), y0=0, y1=1,
                           line=dict(color="#d62728", dash="dash", width=1.5)))
    fig.update_layout(shapes=shapes, annotations=notes)
    fig.update_layout(title=dict(text=title, x=0.02, y=0.98, font=dict(size=14)), height=height,
                      margin=dict(l=55, r=10, t=34, b=40), template=LIGHT, hovermode="x unified",
                      legend=dict(x=1, xanchor="right", y=1, yanchor="top", bgcolor="rgba(255,255,255,0.75)",
                                  font=dict(size=11)),
                      xaxis_title="timestep t", yaxis_title=yaxis_title, uirevision="keep")
    if not curves:
        fig.add_annotation(text="click a pixel on a map to see its curve", showarrow=False, x=0.5, y=0.5,
                           xref="paper", yref="paper", font=dict(size=14, color="#777"))
    return fig


def click_to_pixel(event: dict | None, shape: tuple[int, int]) -> tuple[int, int] | None:
    """A plotly click event -> the grid pixel (y, x) it landed on, or None (outside / no point)."""
    if not event or not event.get("points"):
        return None
    p = event["points"][0]
    try:
        x, y = float(p["x"]), float(p["y"])
    except (KeyError, TypeError, ValueError):
        return None
    H, W = shape
    yi, xi = int(np.floor(y + 0.5)), int(np.floor(x + 0.5))
    if not (0 <= yi < H and 0 <= xi < W):
        return None
    return yi, xi


def colour_lut(colorscale: str = "Viridis", n: int = 256) -> np.ndarray:
    """A plotly colour scale sampled at `n` levels -> uint8 (n, 3)."""
    from plotly.colors import sample_colorscale, unlabel_rgb

    cols = sample_colorscale(colorscale, np.linspace(0, 1, n), colortype="rgb")
    return np.array([unlabel_rgb(c) for c in cols], dtype=np.float64).round().astype(np.uint8)


def overlay_rgb(image: np.ndarray, values: np.ndarray, *, opacity: float = 0.6,
                colorscale: str = "Viridis") -> np.ndarray:
    """Blend a map (H, W) coloured with `colorscale` over an RGB image (resized to the map) -> uint8 (H, W, 3)."""
    from PIL import Image

    lo, hi = robust_range(values)
    v = np.clip((np.asarray(values, dtype=np.float64) - lo) / (hi - lo), 0, 1)
    rgb = colour_lut(colorscale)[(v * 255).round().astype(np.int64)].astype(np.float64)
    H, W = v.shape
    base = np.asarray(Image.fromarray(image).resize((W, H), Image.Resampling.BILINEAR), dtype=np.float64)
    return np.clip((1 - opacity) * base + opacity * rgb, 0, 255).astype(np.uint8)
