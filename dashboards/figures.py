"""Plotly figures of the dashboards, as pure functions of arrays (no Panel, no state).

Coordinates: every map is drawn over the original image's extent (H0, W0) with axes in the
original image's pixels (pixel i spans [i - 0.5, i + 0.5]), at its true aspect. A map on a
coarser grid (H, W) (the model's cells: the whole image was resized to the model's size) is
stretched over the same extent: cell j covers source pixels [j W0 / W, (j + 1) W0 / W).
`grid_to_source` and `source_to_grid` convert; `click_to_pixel` turns a click into a cell.
Large maps are block-averaged for display (`downsample`) so a slider step sends at most
`max_side`^2 values; the full-resolution values stay on the server.
"""
from __future__ import annotations

import base64
import io
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
from PIL import Image
from plotly.colors import sample_colorscale, unlabel_rgb
from plotly.subplots import make_subplots

__all__ = ["COLOURS", "LIGHT", "Layer", "Frame", "title_margin", "TICKFORMAT", "PLAIN_TICKFORMAT", "tickformat",
           "band_alpha", "png_data_uri", "image_trace", "downsample", "robust_range", "heatmap_trace",
           "markers_trace", "map_figure", "band_trace", "curves_figure", "click_to_pixel", "colour_lut",
           "overlay_rgb", "grid_to_source", "source_to_grid", "empty_figure", "finite_or_none", "pick_trace",
           "before_after_figure"]

#: curve / marker colours (colour-blind-safe Okabe-Ito, then Tableau)
COLOURS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9", "#F0E442", "#000000",
           "#8c564b", "#7f7f7f")


#: the number formats of colour bars: one per bar, never mixed within it (plotly's default mixes "0.5e-5",
#: "8e-4" and "0.0008"): plain numbers for ranges within [0.01, 10^4), else scientific ("8e-4", "1.5e-3")
TICKFORMAT = ".2~e"
PLAIN_TICKFORMAT = ".3~r"


def tickformat(zmin: float, zmax: float) -> str:
    """The colour bar's one number format for values in [zmin, zmax]."""
    big = max(abs(float(zmin)), abs(float(zmax)))
    return PLAIN_TICKFORMAT if 1e-2 <= big < 1e4 else TICKFORMAT

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
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb)).save(buf, format="PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def image_trace(rgb: np.ndarray, extent: tuple[int, int] | None = None, *, name: str = "image") -> go.Image:
    """An image trace (uint8 (h, w, 3)) stretched over the grid extent (H, W) (default its own size)."""
    h, w = rgb.shape[:2]
    H, W = extent or (h, w)
    dx, dy = W / w, H / h
    # not hoverable: plotly reports a clicked image trace's pixel colour as a Uint8ClampedArray, which
    # Panel cannot serialise (the click is lost with console errors); clicks land on a heatmap above it
    return go.Image(source=png_data_uri(rgb), x0=-0.5 + dx / 2, y0=-0.5 + dy / 2, dx=dx, dy=dy, name=name,
                    hoverinfo="skip")


def grid_to_source(shape: tuple[int, int], extent: tuple[int, int], y, x) -> tuple[np.ndarray, np.ndarray]:
    """Centres of grid cells (y, x) of an (H, W) grid stretched over an (H0, W0) image, in source pixels.

    Accepts scalars or arrays (fractional cell indices too); returns (ys, xs) as float arrays."""
    (H, W), (H0, W0) = shape, extent
    return ((np.asarray(y, dtype=np.float64) + 0.5) * H0 / H - 0.5,
            (np.asarray(x, dtype=np.float64) + 0.5) * W0 / W - 0.5)


def source_to_grid(shape: tuple[int, int], extent: tuple[int, int], ys: float, xs: float) -> tuple[int, int] | None:
    """The (y, x) cell of an (H, W) grid under source-image point (xs, ys) (pixel-centred coordinates
    of an (H0, W0) image), or None outside the image."""
    (H, W), (H0, W0) = shape, extent
    fy, fx = (float(ys) + 0.5) / H0, (float(xs) + 0.5) / W0
    if not (0 <= fy < 1 and 0 <= fx < 1):
        return None
    return min(H - 1, int(np.floor(fy * H))), min(W - 1, int(np.floor(fx * W)))


def finite_or_none(v) -> float | None:
    """float(v) when it is a finite number, else None (nan/inf are not shown as numbers)."""
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if np.isfinite(f) else None


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


@dataclass(frozen=True)
class Layer:
    """A coloured map over the image: `values` (H, W) on the grid and how they are drawn."""

    values: np.ndarray
    name: str = "value"
    colorscale: str = "Viridis"
    opacity: float = 1.0
    zrange: tuple[float, float] | None = None
    colorbar_title: str | None = None


@dataclass(frozen=True)
class Frame:
    """A map figure's frame: title, height (px), display resolution cap, and `uirevision` (a new value,
    e.g. another cube's key, resets zoom and axes; the same value keeps what the user zoomed to)."""

    title: str = ""
    height: int = 430
    max_side: int = 256
    uirevision: str = "keep"


def heatmap_trace(layer: Layer, *, extent: tuple[int, int] | None = None, max_side: int = 256,
                  showscale: bool = True) -> go.Heatmap:
    """A heatmap of `layer.values` (H, W) stretched over an (H0, W0) image (`extent`, default (H, W)), in
    source pixels, block-averaged to `max_side` for display; a titled colour bar in `TICKFORMAT`."""
    v = np.asarray(layer.values)
    z, xs, ys = downsample(v, max_side)
    ys, xs = grid_to_source(v.shape, extent or v.shape, ys, xs)
    zmin, zmax = layer.zrange or robust_range(z)
    title = layer.colorbar_title if layer.colorbar_title is not None else layer.name
    bar = dict(title=dict(text=title, side="right"), thickness=12, len=0.9, tickformat=tickformat(zmin, zmax))
    return go.Heatmap(z=z, x=xs.astype(np.float32), y=ys.astype(np.float32), zmin=zmin, zmax=zmax,
                      colorscale=layer.colorscale, opacity=layer.opacity, name=layer.name, colorbar=bar,
                      showscale=showscale,
                      hovertemplate="x=%{x:.0f} y=%{y:.0f}<br>" + layer.name + "=%{z:.3e}<extra></extra>")


def pick_trace(shape: tuple[int, int], extent: tuple[int, int], max_side: int = 256) -> go.Heatmap:
    """An invisible heatmap over the grid cells: makes a plain image clickable (plotly reports its cell)."""
    return heatmap_trace(Layer(np.zeros(shape, np.float32), name="pick", opacity=0.0), max_side=max_side,
                         extent=extent, showscale=False).update(hovertemplate="x=%{x:.0f} y=%{y:.0f}<extra></extra>")


def markers_trace(pixels: list[tuple[int, int]], *, name: str = "pixels", shape: tuple[int, int] | None = None,
                  extent: tuple[int, int] | None = None) -> go.Scatter:
    """Clicked grid cells (y, x) as numbered markers at their centres in source pixels: filled in the curve
    colours with a white outline and a dark rim, so they stay visible on any colour map and photo."""
    ys = [float(p[0]) for p in pixels]
    xs = [float(p[1]) for p in pixels]
    if shape is not None and extent is not None and pixels:
        yy, xx = grid_to_source(shape, extent, ys, xs)
        ys, xs = [float(v) for v in yy], [float(v) for v in xx]
    cols = [COLOURS[i % len(COLOURS)] for i in range(len(pixels))]
    return go.Scatter(x=xs, y=ys, mode="markers+text", name=name, text=[str(i + 1) for i in range(len(pixels))],
                      textposition="top right",
                      textfont=dict(color="white", size=13, shadow="1px 1px 2px black, -1px -1px 2px black"),
                      marker=dict(symbol="circle", size=12, line=dict(width=2.5, color="white"), color=cols),
                      hoverinfo="skip", showlegend=False)


def title_margin(title: str) -> int:
    """The top margin (px) that holds the toolbar's strip and a title of this many lines ('<br>')."""
    return 42 + 16 * (title.count("<br>") + 1)


def _map_layout(fig: go.Figure, extent: tuple[int, int], frame: Frame) -> None:
    H0, W0 = extent
    # the title sits in the top margin under the toolbar (plotly draws the modebar in the figure's top
    # 25 px): a long title or a narrow plot (1200 px windows) would otherwise run under it
    fig.update_layout(title=dict(text=frame.title, x=0.01, xanchor="left", y=1, yanchor="top", yref="container",
                                 pad=dict(t=30), font=dict(size=13)),
                      height=frame.height, margin=dict(l=45, r=10, t=title_margin(frame.title), b=30), template=LIGHT,
                      hovermode="closest",
                      clickmode="event", uirevision=frame.uirevision, dragmode="zoom", showlegend=False)
    # axes in the original image's pixels, one unit the same length on both (the image's true shape)
    # an explicit full domain: plotly writes the domain it shrinks to into the layout it keeps, and an
    # update (another cube) would otherwise start from that stale domain and pad the range instead
    fig.update_xaxes(range=[-0.5, W0 - 0.5], constrain="domain", domain=[0, 1], showgrid=False, zeroline=False)
    fig.update_yaxes(range=[H0 - 0.5, -0.5], scaleanchor="x", scaleratio=1, constrain="domain", domain=[0, 1],
                     showgrid=False, zeroline=False)


def map_figure(shape: tuple[int, int], *, image: np.ndarray | None = None, layer: Layer | None = None,
               pixels: list[tuple[int, int]] = (), extent: tuple[int, int] | None = None, frame: Frame = Frame(),
               pickable: bool = False) -> go.Figure:
    """A map of grid `shape` (H, W) drawn over the original image's `extent` (H0, W0, default `shape`) in
    source pixels: optional image below, optional heatmap `layer` (values (H, W)) above (or, with
    `pickable`, an invisible one that makes clicks report a cell), markers of grid cells `pixels` on top."""
    extent = tuple(extent or shape)
    traces = []
    if image is not None:
        traces.append(image_trace(image, extent))
    if layer is not None:
        traces.append(heatmap_trace(layer, extent=extent, max_side=frame.max_side))
    elif pickable:
        traces.append(pick_trace(shape, extent, frame.max_side))
    traces.append(markers_trace(list(pixels), shape=shape, extent=extent))
    fig = go.Figure(traces, layout=dict(template=LIGHT))
    _map_layout(fig, extent, frame)
    return fig


def empty_figure(text: str, *, title: str = "", height: int = 430) -> go.Figure:
    """A placeholder plot: a message and no axes (an empty plot's axes would mean nothing)."""
    fig = go.Figure(layout=dict(template=LIGHT))
    fig.update_layout(title=dict(text=title, x=0.02, y=0.98, font=dict(size=14)), height=height,
                      margin=dict(l=10, r=10, t=34, b=10), xaxis=dict(visible=False), yaxis=dict(visible=False))
    fig.add_annotation(text=text, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper",
                       font=dict(size=14, color="#777"))
    return fig


def band_alpha(n_curves: int) -> float:
    """The fill opacity of each curve's band: 0.2 up to 3 curves, then fading as 0.6 / n, so that many
    overlapping bands do not merge into one opaque mass."""
    return 0.2 if n_curves <= 3 else round(0.6 / n_curves, 3)


def _band_dict(timesteps: np.ndarray, values: np.ndarray, half_width: np.ndarray, colour: str, name: str,
               alpha: float = 0.2) -> dict:
    ts = np.asarray(timesteps, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    h = np.nan_to_num(np.asarray(half_width, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    r, g, b = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
    return dict(type="scatter", x=np.concatenate([ts, ts[::-1]]), y=np.concatenate([v + h, (v - h)[::-1]]),
                mode="lines", fill="toself", fillcolor=f"rgba({r},{g},{b},{alpha})", line=dict(width=0, color=colour),
                hoverinfo="skip", showlegend=False, name=name)


def band_trace(timesteps: np.ndarray, values: np.ndarray, half_width: np.ndarray, colour: str, *,
               name: str = "band") -> go.Scatter:
    """A filled translucent band values -/+ half_width (each (N,)) over `timesteps` in `colour` (a
    '#rrggbb'): the upper edge, then the lower one reversed, closed (`fill="toself"`); no hover, no
    legend entry. Non-finite half-widths are drawn as 0 (no band there)."""
    return go.Scatter(_band_dict(timesteps, values, half_width, colour, name))


def curves_figure(timesteps: np.ndarray, curves: list[tuple[str, np.ndarray]], *, t_now: float | None = None,
                  t_b: float | None = None, yaxis_title: str = "generation rate",
                  bands: list[np.ndarray | None] | None = None, note: str | None = None,
                  frame: Frame = Frame(title="Generation curves")) -> go.Figure:
    """Curves (label, values (N,)) over ascending timesteps; a line at `t_now`, the cut-off t <= t_b shaded;
    `frame` gives the title and height (px).

    bands: per curve (same order) a band half-width (N,) in the curve's units, or None (no band): each
    band is a translucent `band_trace` in its curve's colour (fading with the number of curves: `band_alpha`),
    drawn below all the curves (the curves are
    the last len(curves) traces). note: a small line at the plot's top right (e.g. what the bands are).
    Built from plain dicts without plotly's per-property validation (it cost ~30 ms per click)."""
    ts = np.asarray(timesteps)
    data = []
    for i, (label, vals) in enumerate(curves):
        half = None if bands is None or i >= len(bands) else bands[i]
        if half is not None:
            data.append(_band_dict(ts, vals, half, COLOURS[i % len(COLOURS)], f"band {label}",
                                   band_alpha(len(curves))))
    for i, (label, vals) in enumerate(curves):
        data.append(dict(type="scatter", x=ts, y=np.asarray(vals, dtype=np.float64), mode="lines+markers",
                         name=label, line=dict(color=COLOURS[i % len(COLOURS)], width=2), marker=dict(size=4)))
    shapes, notes = [], []
    if note and curves:
        notes.append(dict(text=note, x=1, y=1.0, xref="paper", yref="paper", xanchor="right", yanchor="bottom",
                          showarrow=False, font=dict(size=10, color="#555")))
    if t_b is not None and len(ts) and curves and t_b > ts.min():
        shapes.append(dict(type="rect", xref="x", yref="paper", x0=float(ts.min()), x1=float(t_b), y0=0, y1=1,
                           fillcolor="#999", opacity=0.15, line=dict(width=0), layer="below"))
        notes.append(dict(text="t ≤ t_b (not in F)", x=float(ts.min()), y=1, xref="x", yref="paper",
                          xanchor="left", yanchor="top", showarrow=False, font=dict(size=10, color="#555")))
    if t_now is not None and curves:
        shapes.append(dict(type="line", xref="x", yref="paper", x0=float(t_now), x1=float(t_now), y0=0, y1=1,
                           line=dict(color="#d62728", dash="dash", width=1.5)))
    layout = dict(template=LIGHT, shapes=shapes, annotations=notes,
                  title=dict(text=frame.title, x=0.01, xanchor="left", y=1, yanchor="top", yref="container",
                             pad=dict(t=30), font=dict(size=13)), height=frame.height,
                  margin=dict(l=55, r=10, t=58, b=40 + 22 * min(4, max(1, (len(curves) + 1) // 2))),
                  hovermode="x unified",
                  # the legend under the axis title (inside the plot it covered the curves), two entries a row
                  legend=dict(orientation="h", x=0, xanchor="left", y=0, yref="container", yanchor="bottom",
                              font=dict(size=11), entrywidth=0.5, entrywidthmode="fraction"),
                  xaxis=dict(title=dict(text="timestep t")),
                  yaxis=dict(title=dict(text=yaxis_title), exponentformat="e"), uirevision="keep")
    if not curves:  # no axes without data: a message instead
        layout.update(xaxis=dict(visible=False), yaxis=dict(visible=False), shapes=[],
                      annotations=[dict(text="click a pixel on a map to see its curve", showarrow=False, x=0.5, y=0.5,
                                        xref="paper", yref="paper", font=dict(size=14, color="#777"))])
    return go.Figure(data=data, layout=layout, _validate=False)


def click_to_pixel(event: dict | None, shape: tuple[int, int],
                   extent: tuple[int, int] | None = None) -> tuple[int, int] | None:
    """A plotly click event (x, y in source pixels of an `extent` (H0, W0) image, default the grid's
    own `shape`) -> the grid cell (y, x) it landed on, or None (outside / no point)."""
    if not event or not event.get("points"):
        return None
    p = event["points"][0]
    try:
        x, y = float(p["x"]), float(p["y"])
    except (KeyError, TypeError, ValueError):
        return None
    return source_to_grid(shape, tuple(extent or shape), y, x)


def colour_lut(colorscale: str = "Viridis", n: int = 256) -> np.ndarray:
    """A plotly colour scale sampled at `n` levels -> uint8 (n, 3)."""
    cols = sample_colorscale(colorscale, np.linspace(0, 1, n), colortype="rgb")
    return np.array([unlabel_rgb(c) for c in cols], dtype=np.float64).round().astype(np.uint8)


def overlay_rgb(image: np.ndarray, values: np.ndarray, *, opacity: float = 0.6,
                colorscale: str = "Viridis") -> np.ndarray:
    """Blend a map (H, W) coloured with `colorscale` over an RGB image (resized to the map) -> uint8 (H, W, 3)."""
    lo, hi = robust_range(values)
    v = np.clip((np.asarray(values, dtype=np.float64) - lo) / (hi - lo), 0, 1)
    rgb = colour_lut(colorscale)[(v * 255).round().astype(np.int64)].astype(np.float64)
    H, W = v.shape
    base = np.asarray(Image.fromarray(image).resize((W, H), Image.Resampling.BILINEAR), dtype=np.float64)
    return np.clip((1 - opacity) * base + opacity * rgb, 0, 255).astype(np.uint8)


def _thumb(rgb: np.ndarray, max_side: int) -> np.ndarray:
    h, w = rgb.shape[:2]
    s = min(1.0, max_side / max(h, w))
    if s >= 1.0:
        return rgb
    return np.asarray(Image.fromarray(rgb).resize((max(1, round(w * s)), max(1, round(h * s))),
                                                  Image.Resampling.LANCZOS))


def before_after_figure(before: np.ndarray, after: np.ndarray, *, titles: tuple[str, str] = ("original", "edited"),
                        max_side: int = 512, height: int = 330) -> go.Figure:
    """Two images of one size (H0, W0, 3) side by side at their true shape, axes in their pixels
    (shown at most `max_side` per side: display only)."""
    H0, W0 = before.shape[:2]
    fig = make_subplots(rows=1, cols=2, subplot_titles=[f"{titles[0]} ({W0}×{H0} px)", f"{titles[1]} ({W0}×{H0} px)"],
                        horizontal_spacing=0.06)
    for col, rgb in ((1, before), (2, after)):
        fig.add_trace(image_trace(_thumb(np.asarray(rgb), max_side), (H0, W0), name=titles[col - 1]), row=1, col=col)
        ax = "x" if col == 1 else "x2"
        fig.update_xaxes(range=[-0.5, W0 - 0.5], constrain="domain", showgrid=False, zeroline=False, row=1, col=col)
        fig.update_yaxes(range=[H0 - 0.5, -0.5], scaleanchor=ax, scaleratio=1, constrain="domain", showgrid=False,
                         zeroline=False, row=1, col=col)
    fig.update_layout(template=LIGHT, height=height, margin=dict(l=40, r=10, t=40, b=30), showlegend=False)
    return fig
