"""Explore: one cube's image, fluctuation map, rate map at a timestep and clicked pixels' curves.

Everything a person does is a parameter or a method, so tests drive the view without a
browser: set `cube`, `window`, `t_b`, `t_index`, `opacity`, `significant_only`; call
`click(y, x)` (what a click on any map does) or `upload(bytes, name)` then `poll()` until the
cube is computed.

Uncertainty: a cube with standard errors (schema >= 3, `rate_se`) draws every clicked curve with
a +-2 SE band, and `significant_only` masks the fluctuation map to the pixels whose F is
significantly higher (or, with `significance_side="lower"`, lower) than the image's median F, one-sided
z > 2 (`analysis.fluctuation.significance_arrays`, `analysis.pixelcurves`). The curves, their
bands and the mask come from `analysis.pixelcurves`, so a notebook computes what the view shows.
A dropped image's cube is shown after its first probe batch and refined live (`cache.anytime.cube_batches`): each poll shows the latest batch's
cube, keeping the clicked pixels; only the final cube goes into the store.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import panel as pn
import param
import plotly.graph_objects as go
from PIL import Image

from analysis.fluctuation import (DEFAULT_NORMALISE, DEFAULT_T_B, DEFAULT_WINDOW, fluctuation_map,
                                  significance_arrays)
from analysis.pixelcurves import SIDES, Z_SIGNIFICANT, fluctuation_name, pixel_curve, significance_text, significant
from cache.params import CubeParams
from workbench.curve_kinds import CURVE_KINDS, accumulated, accumulated_se
from workbench.cancel import checked_calls
from workbench.errors import WorkbenchError
from workbench.estimators import DEFAULT_K
from workbench.progress import Progress
from workbench.validate import MAX_K, check_K, check_real, check_steps

from . import figures
from .catalog import cube_labels
from .context import AppContext
from .widgets import checkbox, number_box
from .jobs import Cancelled, Eta, Job, Poller, format_seconds, on_session_end

__all__ = ["ExploreView", "MAX_PIXELS", "BAND_SE", "Z_SIGNIFICANT", "NO_SE_TEXT", "UNKNOWN_SE_TEXT"]

#: the Cube box's value while a dropped image's cube is computed and its batches are shown
LIVE = "live:computing"
#: at most this many curves are compared on one plot (the oldest is dropped)
MAX_PIXELS = 8
#: the curves' bands are +- this many standard errors
BAND_SE = 2.0
#: what the curve plot and the mask say for a cube without standard errors (schema < 3) ...
NO_SE_TEXT = "no standard errors in this cube (written before schema 3)"
#: ... and for one whose standard errors are unknown (stored as NaN: an estimator without them)
UNKNOWN_SE_TEXT = "no standard errors in this cube (unknown for its estimator)"

_META = (("model_name", "model"), ("rate_definition", "rate definition"), ("estimator", "estimator"),
         ("K", "K (probes / rank)"), ("channel_rule", "channel rule"), ("steps", "DDIM steps"),
         ("seed", "probe seed"), ("source_image", "source image"), ("source_size", "source size (H, W)"),
         ("model_fingerprint", "model fingerprint"), ("key", "cube key"), ("prompt", "prompt"),
         ("negative_prompt", "negative prompt"), ("guidance_scale", "guidance scale"),
         ("prompt_fingerprint", "prompt fingerprint"), ("until_stable", "stop at stability"),
         ("stability", "split-half stability"))
#: longest side of the photo drawn under the maps (display only)
_PHOTO_MAX = 640


class ExploreView(pn.viewable.Viewer):
    """Pick a cube, see its fluctuation map over the image, click pixels for their curves."""

    cube = param.Selector(default=None, objects=[], doc="key of the shown cube")
    window = param.Integer(default=DEFAULT_WINDOW, bounds=(2, 50), doc="fluctuation window L (samples)")
    t_b = param.Number(default=DEFAULT_T_B, bounds=(0, 1000), step=10, doc="only t > t_b enters the fluctuation")
    t_index = param.Integer(default=0, bounds=(0, 0), doc="index of the timestep of the rate map")
    opacity = param.Number(default=0.6, bounds=(0.0, 1.0), step=0.05, doc="opacity of the map over the image")
    pixels = param.List(default=[], doc="clicked grid pixels (y, x), oldest first")
    compare = param.Boolean(default=True, doc="keep earlier pixels (compare curves) instead of replacing")
    curve_kind = param.Selector(default="rate", objects=list(CURVE_KINDS),
                                doc="curve plot: the per-step rate, or the accumulated curve (its running integral over "
                                    "the generation with the DDIM step widths, workbench.curve_kinds)")
    normalise = param.Boolean(default=DEFAULT_NORMALISE,
                              doc="divide each curve by its sum over t > t_b (shape only), for F and the plot")
    max_side = param.Integer(default=256, bounds=(16, 2048), doc="display resolution cap of the maps")
    new_steps = param.Integer(default=50, bounds=(2, 1000), doc="DDIM steps of a new image's cube")
    new_K = param.Integer(default=DEFAULT_K, bounds=(1, MAX_K), doc="Hutchinson probes of a new image's cube")
    new_until_stable = param.Number(default=0.0, bounds=(0.0, 0.999), step=0.01,
                                    doc="stop adding probes to a new image's cube once the split-half stability "
                                        "of its fluctuation map reaches this (0: all K probes; K is the cap)")
    fixed_range = param.Boolean(default=False, doc="one colour range for the rate map at every timestep "
                                                   "(robust range of the whole cube) instead of per timestep")
    significant_only = param.Boolean(default=False, doc="mask the fluctuation map to the pixels whose F is "
                                                        "significantly higher / lower than the image median "
                                                        "(`significance_side`; needs the cube's rate_se)")
    significance_side = param.Selector(default="higher", objects={v: k for k, v in SIDES.items()},
                                       doc="which one-sided test the mask applies: 'higher' (z > 2) or 'lower' "
                                           "(z < -2) than the image's median F")

    def __init__(self, context: AppContext, **params):
        params.setdefault("max_side", context.max_side)
        super().__init__(**params)
        self.context = context
        self._ds = None
        self._fluct: np.ndarray | None = None
        self._fluct_error: str | None = None
        self._z: np.ndarray | None = None  # significance z of the fluctuation (when masking)
        self._live = False  # showing the in-memory batches of a dropped image's cube
        self._live_K: int | None = None  # probes of the batch shown last
        self._live_name, self._live_label = "", ""
        self._se_reason: str | None = NO_SE_TEXT  # why the shown cube has no usable rate_se (None: it has)
        self.job: Job | None = None
        self._eta = Eta()
        self._poller = Poller(self.poll, 250, on_gone=self.dispose)
        on_session_end(self.dispose)
        self._grid: pn.GridBox | None = None
        self._geometry = None  # (shape, extent) the map panes were made for
        self._new_map_panes()
        self.curve_pane = pn.pane.Plotly(figures.empty_figure("no cube to show yet"), link_figure=False,
                                         config={"displaylogo": False}, sizing_mode="stretch_width")
        self.message = pn.pane.Alert("", alert_type="danger", visible=False, sizing_mode="stretch_width")
        self.meta = pn.pane.Markdown("", sizing_mode="stretch_width", styles={"font-size": "12px"})
        # the shown cube's full name, wrapped (a long name is cut in the closed Cube box)
        self.shown = pn.pane.Markdown("", sizing_mode="stretch_width", margin=(0, 10),
                                      styles={"font-size": "12px"}, css_classes=["explore-shown"])
        self.t_label = pn.pane.Markdown("", margin=(0, 10))
        self.upload_widget = pn.widgets.FileInput(accept=".png,.jpg,.jpeg,.webp,.bmp", name="Drop an image",
                                                  sizing_mode="stretch_width")
        self.upload_widget.param.watch(self._on_upload, "value")
        self.progress = pn.indicators.Progress(value=0, max=100, visible=False, sizing_mode="stretch_width",
                                               bar_color="primary")
        self.job_status = pn.pane.Markdown("", visible=False, margin=(0, 10), css_classes=["explore-job-status"])
        self.clear_button = pn.widgets.Button(label="Clear curves", button_type="default")
        self.clear_button.on_click(lambda _e: self.clear())
        self.refresh_button = pn.widgets.Button(label="Re-read the store", sizing_mode="stretch_width",
                                                css_classes=["explore-refresh"])
        #: what "Re-read the store" runs: this view's `refresh_cubes`; the app makes it refresh every view
        self.refresh_all = self.refresh_cubes
        self.refresh_button.on_click(lambda _e: self.refresh_all())
        self.sig_box = checkbox(self.param.significant_only, "Only pixels with significant F:")
        self.sig_side = pn.widgets.RadioBoxGroup.from_param(self.param.significance_side, name="", inline=False,
                                                            margin=(0, 10, 0, 30))
        self.sig_note = pn.pane.Markdown("", visible=False, margin=(0, 10), styles={"font-size": "12px"})
        self.empty = pn.pane.Markdown("The store holds no cubes yet: drop an image on the left (or compute some "
                                      "with `workbench cubes`).", visible=False)
        self.refresh_cubes()
        self.empty.visible = self._ds is None

    # -- catalogue ---------------------------------------------------------------------------
    def refresh_cubes(self, select: str | None = None) -> None:
        """Re-read the store's cube list (after a new cube) and select `select` (or keep the current one;
        a cube being computed and shown live stays shown)."""
        self._labels = cube_labels(self.context.catalog.entries())
        keys = list(self._labels.values())
        if self.cube == LIVE and self._live and select is None:
            self.param.cube.objects = {**self._labels, self._live_label: LIVE}
            return
        self.param.cube.objects = self._labels
        target = select or (self.cube if self.cube in keys else (keys[0] if keys else None))
        if target != self.cube:
            self.cube = target
        elif target is not None and self._ds is None:
            self._load()

    @param.depends("cube", watch=True)
    def _load(self) -> None:
        if self.cube is None or self.cube == LIVE:  # LIVE: the batches of a computation, shown by poll
            return
        keep = self._live and self._live_K is not None  # the final cube of the batches shown live
        self._live = False  # picking another cube stops following a computation's batches
        self._show(self.context.catalog.open(self.cube), keep_pixels=keep)

    def _show(self, ds, *, keep_pixels: bool = False) -> None:
        """Show cube `ds` (stored or an in-memory batch); keep the clicked pixels when asked and they fit."""
        n = ds.sizes["t"]
        pixels = list(self.pixels)
        self._ds = None  # the watchers below see no cube until it is set up
        self.param.t_index.bounds = (0, n - 1)
        if self.t_index > n - 1:
            self.t_index = n - 1
        H, W = int(ds.sizes["y"]), int(ds.sizes["x"])
        self.pixels = [p for p in pixels if p[0] < H and p[1] < W] if keep_pixels else []
        self._ds = ds
        self._se_reason = self._no_se_reason()
        self.empty.visible = False
        self._image = self._photo()
        self._cube_range = None
        self._update_sig_controls()
        self._recompute_fluct()
        self.meta.object = self._meta_markdown()
        self.shown.object = self.shown_label()
        self._build_figures()

    def shown_label(self) -> str:
        """'Shown: <the Cube box's label of the shown cube>' (wraps under the box)."""
        label = next((k for k, v in (self.param.cube.names or {}).items() if v == self.cube), None)
        return f"Shown: {label}" if label else ""

    @property
    def cube_keys(self) -> list[str]:
        """Keys of the cubes one can pick (store order by image name)."""
        return list(self._labels.values())

    # -- derived arrays ----------------------------------------------------------------------
    @property
    def dataset(self):
        """The shown cube (xarray.Dataset) or None."""
        return self._ds

    @property
    def shape(self) -> tuple[int, int]:
        """The cube's grid (H, W) (model cells)."""
        return int(self._ds.sizes["y"]), int(self._ds.sizes["x"])

    @property
    def extent(self) -> tuple[int, int]:
        """The original image's size (H0, W0) in pixels: the maps are drawn over it (the grid if unknown)."""
        size = self._ds.attrs.get("source_size")
        if size is None or len(np.atleast_1d(size)) < 2:
            return self.shape
        return int(np.atleast_1d(size)[0]), int(np.atleast_1d(size)[1])

    def _photo(self) -> np.ndarray:
        """The original image for display (at most _PHOTO_MAX per side), else the cube's own (model-size) image."""
        src = Path(str(self._ds.attrs.get("source_image", "")))
        try:
            if src.suffix and src.is_file():
                with Image.open(src) as im:
                    im = im.convert("RGB")
                    if (im.height, im.width) == self.extent:
                        im.thumbnail((_PHOTO_MAX, _PHOTO_MAX))
                        return np.asarray(im)
        except OSError:
            pass
        return np.asarray(self._ds["image"].values)

    def source_xy(self, y: int, x: int) -> tuple[int, int]:
        """The centre of grid cell (y, x) in the original image's pixels, as (x, y) rounded."""
        ys, xs = figures.grid_to_source(self.shape, self.extent, y, x)
        return int(np.floor(float(xs) + 0.5)), int(np.floor(float(ys) + 0.5))

    def rate_range(self) -> tuple[float, float] | None:
        """The colour range of the rate map: the whole cube's robust range when `fixed_range`, else None."""
        if not self.fixed_range:
            return None
        if self._cube_range is None:
            r = np.asarray(self._ds["rate"].values)
            step = max(1, r.size // 2_000_000)  # a strided sample bounds the percentile's cost
            self._cube_range = figures.robust_range(r.reshape(-1)[::step])
        return self._cube_range

    @property
    def timesteps(self) -> np.ndarray:
        return np.asarray(self._ds["timestep"].values)

    @property
    def timestep(self) -> int:
        """The timestep of the rate map."""
        return int(self.timesteps[self.t_index])

    def fluctuation(self) -> np.ndarray | None:
        """The fluctuation map (H, W) for the current window and t_b (None when they are invalid)."""
        return self._fluct

    def rate_map(self) -> np.ndarray:
        """The rate map (H, W) at the selected timestep."""
        return np.asarray(self._ds["rate"].values[self.t_index])

    def curve(self, y: int, x: int) -> np.ndarray:
        """The generation curve (N,) of grid pixel (y, x) of `curve_kind`, optionally normalised
        (`analysis.pixelcurves`; the accumulated curve of the normalised rate)."""
        c = pixel_curve(self._ds, y, x, t_b=self.t_b, normalise=self.normalise, with_se=False)[0]
        return c if self.curve_kind == "rate" else accumulated(c, self.timesteps)

    @property
    def has_se(self) -> bool:
        """True when the shown cube has standard errors (`rate_se`, cube schema >= 3, not all unknown)."""
        return self._se_reason is None

    def _no_se_reason(self) -> str | None:
        """Why the shown cube has no usable standard errors (NO_SE_TEXT / UNKNOWN_SE_TEXT), None when it has."""
        if self._ds is None or "rate_se" not in self._ds:
            return NO_SE_TEXT
        if not np.isfinite(np.asarray(self._ds["rate_se"].values)).any():
            a = self._ds.attrs  # Hutchinson with K >= 2 always has SEs: all NaN is an older cube stored again
            hutchinson = a.get("estimator") == "hutchinson" and int(a.get("K", 0)) >= 2
            return NO_SE_TEXT if hutchinson else UNKNOWN_SE_TEXT
        return None

    def curve_se(self, y: int, x: int) -> np.ndarray | None:
        """The standard error (N,) of `curve(y, x)` (divided by the same sum when normalised; the sum's
        own error is ignored), or None when the cube has no rate_se."""
        if not self.has_se:
            return None
        se = pixel_curve(self._ds, y, x, t_b=self.t_b, normalise=self.normalise)[1]
        return se if self.curve_kind == "rate" else accumulated_se(se, self.timesteps)

    def significance(self) -> np.ndarray | None:
        """The z map (H, W) of the fluctuation against the image's median F while `significant_only` is on,
        else None."""
        return self._z

    def significant_mask(self) -> np.ndarray | None:
        """bool (H, W): the pixels the mask keeps (one-sided test `significance_side`), None when not masking."""
        return None if self._z is None else significant(self._z, self.significance_side)

    def significant_fraction(self) -> float | None:
        """The fraction of pixels the mask keeps (None when not masking)."""
        keep = self.significant_mask()
        return None if keep is None else float(np.mean(keep))

    def _recompute_fluct(self) -> None:
        self._z = None
        try:
            kw = dict(window=self.window, t_b=self.t_b, normalise=self.normalise)
            if self.significant_only and self.has_se:
                sig = significance_arrays(np.asarray(self._ds["rate"].values), np.asarray(self._ds["rate_se"].values),
                                          self.timesteps, axis=0, **kw)
                self._fluct, self._z = np.asarray(sig["fluctuation"]), np.asarray(sig["z"])
            else:
                self._fluct = np.asarray(fluctuation_map(self._ds["rate"], **kw).values)
            self._fluct_error = None
        except WorkbenchError as exc:
            self._fluct, self._fluct_error = None, str(exc)
        self._show_message(self._fluct_error)

    def _update_sig_controls(self) -> None:
        """Enable the significance mask only for cubes with standard errors; say why it is off otherwise."""
        self.sig_box.disabled = self.sig_side.disabled = not self.has_se
        self.sig_note.object = f"*{self._se_reason}: the mask needs them*" if not self.has_se else ""
        self.sig_note.visible = not self.has_se

    def _show_message(self, text: str | None, kind: str = "danger") -> None:
        self.message.object = text or ""
        self.message.alert_type = kind
        self.message.visible = bool(text)

    def _meta_markdown(self) -> str:
        a = self._ds.attrs
        def show(v):  # floats (stability, guidance) to 4 significant digits
            return f"{v:.4g}" if isinstance(v, (float, np.floating)) else v

        rows = [f"- **{label}**: `{show(a[k])}`" for k, label in _META if k in a and a[k] not in ("", None)]
        (H, W), (H0, W0) = self.shape, self.extent
        if int(a.get("complete", 1)) == 0:
            rows.append(f"- **not stored yet**: a preview of the first {a.get('K')} probes, refined live; the store "
                        "gets the final cube")
        rows.append(f"- **cube**: {self._ds.sizes['t']} timesteps × {H} × {W} model cells")
        rows.append(f"- **one model cell**: {W0 / W:.3g} × {H0 / H:.3g} image px (width × height; the whole image "
                    f"was resized to the model's {W}×{H}); axes are in image px")
        return "\n".join(rows)

    # -- figures -----------------------------------------------------------------------------
    def _new_map_panes(self) -> None:
        """Fresh map panes (image, F, rate), swapped into the grid when it exists. Plotly keeps the domain it
        shrank an axis to (true aspect) across updates of one plot and then pads the next cube's range
        instead, so a cube of another size or shape gets new plots, drawn from scratch."""
        cfg = {"displaylogo": False, "scrollZoom": False, "modeBarButtonsToRemove": ["select2d", "lasso2d"]}
        blank = figures.empty_figure("no cube to show yet")
        # linked: a click moves the markers with Plotly.restyle of that one trace (the maps are not redrawn)
        self.image_pane, self.fluct_pane, self.rate_pane = (
            pn.pane.Plotly(blank, link_figure=True, config=cfg, sizing_mode="stretch_width") for _ in range(3))
        for pane in (self.image_pane, self.fluct_pane, self.rate_pane):
            pane.param.watch(self._on_click_event, "click_data")
        if self._grid is not None:
            self._grid.objects = [self.image_pane, self.fluct_pane, self.rate_pane, self.curve_pane]

    def _build_figures(self) -> None:
        shape, extent = self.shape, self.extent
        if self._geometry is not None and self._geometry != (shape, extent):
            self._new_map_panes()
        self._geometry = (shape, extent)
        name = str(self._ds.attrs.get("source_image", "")).rsplit("/", 1)[-1] or str(self.cube)[:10]
        # a new uirevision per cube: plotly then resets zoom and axes to the new cube's extent
        rev = str(self._ds.attrs.get("key") or self.cube)

        def frame(title):
            return figures.Frame(title=title, max_side=self.max_side, uirevision=rev)

        self.image_pane.object = figures.map_figure(shape, image=self._image, pixels=self.pixels, extent=extent,
                                                    frame=frame(f"Image: {name} ({extent[1]}×{extent[0]} px)"),
                                                    pickable=True)
        layer = figures.Layer(self._fluct_values(), name="F", colorscale="Inferno", opacity=self.opacity,
                              colorbar_title=self._fluct_unit())
        self.fluct_pane.object = figures.map_figure(shape, image=self._image, layer=layer, pixels=self.pixels,
                                                    extent=extent, frame=frame(self._fluct_title()))
        rate = figures.Layer(self.rate_map(), name="rate", zrange=self.rate_range(), colorbar_title="rate r_t")
        self.rate_pane.object = figures.map_figure(shape, layer=rate, pixels=self.pixels, extent=extent,
                                                   frame=frame(self._rate_title()))
        self._update_curves()

    def _fluct_unit(self) -> str:
        return fluctuation_name(self.normalise)

    def _fluct_values(self) -> np.ndarray:
        """The map drawn: F, NaN (transparent: the image shows) where the mask hides a pixel."""
        if self._fluct is None:
            return np.zeros(self.shape, np.float32)
        if self._z is None:
            return self._fluct
        return np.where(self.significant_mask(), self._fluct, np.nan)

    def _fluct_title(self) -> str:
        norm = ", normalised" if self.normalise else ""
        title = f"Fluctuation F (L={self.window}, t_b={self.t_b:g}{norm})"
        if self._fluct is None:
            return title + " — invalid"
        frac = self.significant_fraction()
        if frac is not None:
            # two short lines: plotly does not wrap a title, and a 1200 px window leaves ~60 characters
            words = significance_text(self.significance_side).split(" than ")
            title += f"<br>shown: {100 * frac:.0f}% of pixels, {words[0]}<br>than {words[1]}"
        elif self.significant_only:
            title += " — no SEs: not masked"
        return title

    def _rate_title(self) -> str:
        return f"Rate map at t={self.timestep} (step {self.t_index + 1}/{len(self.timesteps)})"

    def _heatmap_index(self, fig) -> int:
        return next(i for i, tr in enumerate(fig.data) if tr.type == "heatmap")

    @staticmethod
    def _replace(pane: pn.pane.Plotly, change) -> None:
        """Show a changed copy of the pane's figure (Panel diffs it against what the browser has and sends
        only what changed: a mutated figure would share nested dicts with the last sent state)."""
        fig = go.Figure(pane.object)
        change(fig)
        pane.object = fig

    def _set_heatmap(self, pane: pn.pane.Plotly, values: np.ndarray, title: str,
                     zrange: tuple[float, float] | None = None, colorbar_title: str | None = None) -> None:
        z, _xs, _ys = figures.downsample(values, self.max_side)
        zmin, zmax = zrange or figures.robust_range(z)

        def change(fig):
            hm = fig.data[self._heatmap_index(fig)]
            hm.update(z=z, zmin=zmin, zmax=zmax)
            hm.colorbar.tickformat = figures.tickformat(zmin, zmax)
            if colorbar_title is not None:
                hm.colorbar.title.text = colorbar_title
            fig.layout.title.text = title
            fig.layout.margin.t = figures.title_margin(title)

        self._replace(pane, change)

    @param.depends("curve_kind", watch=True)
    def _on_curve_kind(self) -> None:
        if self._ds is not None:
            self._update_curves()

    @param.depends("t_index", watch=True)
    def _on_t(self) -> None:
        if self._ds is None:
            return
        self.t_label.object = f"**t = {self.timestep}**"
        self._set_heatmap(self.rate_pane, self.rate_map(), self._rate_title(), self.rate_range())
        self._update_curves()

    @param.depends("fixed_range", watch=True)
    def _on_fixed_range(self) -> None:
        if self._ds is not None:
            self._set_heatmap(self.rate_pane, self.rate_map(), self._rate_title(), self.rate_range())

    @param.depends("window", "t_b", "normalise", "significant_only", "significance_side", watch=True)
    def _on_fluct_params(self) -> None:
        if self._ds is None:
            return
        self._recompute_fluct()
        self._set_heatmap(self.fluct_pane, self._fluct_values(), self._fluct_title(),
                          colorbar_title=self._fluct_unit())
        self._update_curves()

    @param.depends("opacity", watch=True)
    def _on_opacity(self) -> None:
        if self._ds is None:
            return
        self._replace(self.fluct_pane, lambda fig: fig.data[self._heatmap_index(fig)].update(opacity=self.opacity))

    def _update_curves(self) -> None:
        curves, bands = [], []
        for (y, x) in self.pixels:
            sx, sy = self.source_xy(y, x)
            label = f"x={sx}, y={sy}"
            if self._fluct is not None:
                label += f" (F={self._fluct[y, x]:.2e})"
            curves.append((label, self.curve(y, x)))
            se = self.curve_se(y, x)
            bands.append(None if se is None else BAND_SE * se)
        ytitle = "rate / sum over t > t_b" if self.normalise else "generation rate"
        if self.curve_kind == "accumulated":
            ytitle = "accumulated " + ytitle + " x timesteps"
        note = (f"band: ±{BAND_SE:g} SE of the estimate (K = {self._ds.attrs.get('K', '?')})" if self.has_se
                else self._se_reason)
        self.curve_pane.object = figures.curves_figure(self.timesteps, curves, t_now=self.timestep, t_b=self.t_b,
                                                       yaxis_title=ytitle, bands=bands, note=note)

    def _update_markers(self) -> None:
        """Move every map's markers (its last trace) to `pixels`: one Plotly.restyle of that trace per map
        in the browser, so a click does not redraw the maps under them."""
        new = figures.markers_trace(self.pixels, shape=self.shape, extent=self.extent)
        for pane in (self.image_pane, self.fluct_pane, self.rate_pane):
            fig = pane.object
            fig.plotly_restyle({"x": [list(new.x)], "y": [list(new.y)], "text": [list(new.text)],
                                "marker.color": [list(new.marker.color)]}, trace_indexes=[len(fig.data) - 1])

    # -- interactions ------------------------------------------------------------------------
    def click(self, y: int, x: int) -> None:
        """Add grid pixel (y, x) to the compared curves (or replace them when `compare` is off)."""
        H, W = self.shape
        if not (0 <= y < H and 0 <= x < W):
            raise WorkbenchError(f"pixel (x={x}, y={y}) is outside the {W}x{H} grid")
        pix = [p for p in self.pixels if p != (y, x)] if self.compare else []
        pix.append((int(y), int(x)))
        self.pixels = pix[-MAX_PIXELS:]
        self._update_curves()  # what the click asks for first; the markers follow
        self._update_markers()

    def clear(self) -> None:
        """Forget the clicked pixels."""
        self.pixels = []
        if self._ds is not None:
            self._update_markers()
            self._update_curves()

    def _on_click_event(self, event) -> None:
        if self._ds is None:
            return
        pix = figures.click_to_pixel(event.new, self.shape, self.extent)
        if pix is not None:
            self.click(*pix)

    # -- a new image -------------------------------------------------------------------------
    def _on_upload(self, event) -> None:
        if event.new:
            self.upload(event.new, self.upload_widget.filename or "image.png")

    def upload(self, data: bytes, filename: str) -> Job | None:
        """Save a dropped image into the store and compute its cube off the UI thread, in probe batches:
        `poll` shows each batch's cube as it lands (the first after a few probes); the final one is stored."""
        if self.job is not None and not self.job.done:
            self._show_message(f"{filename} was not taken: a cube is being computed already; drop it again when "
                               "that one is done", "warning")
            self._clear_upload()  # the refused file must not stay named in the box
            return None
        try:
            path = self.context.catalog.save_upload(data, filename)
        except WorkbenchError as exc:
            self._show_message(str(exc))
            self._clear_upload()
            return None
        self._show_message(None)  # an earlier error (a refused file) no longer applies
        ctx, params = self.context, CubeParams(steps=self.new_steps, K=self.new_K)
        options = dict(until_stable=self.new_until_stable or None, window=self.window, t_b=self.t_b)

        def compute(report, _should_stop):
            report(progress=Progress("cube", 0, 1), status="loading the model")
            adapter = ctx.adapter()
            report(status="inverting and estimating rates")

            def progress(p: Progress) -> None:
                if _should_stop():  # the tab closed: stop between timesteps
                    raise Cancelled()
                if p.phase == "cube":
                    report(progress=p)
                elif p.phase == "batch":  # the worker only hands the in-memory cube over; poll shows it
                    step = p.result
                    report(batch=step, status=f"showing {self._batch_text(step)}; "
                                              + ("storing" if step.final else "adding probes"))

            def between_calls():  # within one network evaluation, however long one timestep takes
                if _should_stop():
                    raise Cancelled()

            with checked_calls(adapter, between_calls):
                return ctx.catalog.add_image(adapter, path, params, progress=progress, live=True, **options)

        self._live, self._live_K, self._live_name = True, None, filename
        self._eta = Eta()
        self.job = Job(compute, name="cube", queue=ctx.queue).start()
        self.progress.value, self.progress.visible = 0, True
        self.job_status.object, self.job_status.visible = f"computing the cube of **{filename}** ...", True
        self._poller.start()
        return self.job

    def _clear_upload(self) -> None:
        """Empty the file box: in the browser (its native file name) and on the server."""
        self.upload_widget.clear()
        with param.discard_events(self.upload_widget):
            self.upload_widget.param.update(value=None, filename=None)

    @staticmethod
    def _batch_text(step) -> str:
        """'K = 8 / 32, split-half stability 0.93' for a `cache.anytime.CubeBatch`."""
        stab = "" if not np.isfinite(step.stability) else f", split-half stability {step.stability:.2f}"
        early = "; stable: no more probes needed" if step.final and step.K < step.K_final else ""
        return f"K = {step.K} / {step.K_final}{stab}{early}"

    def _show_batch(self, step) -> None:
        """Show a batch's in-memory cube (the clicked pixels stay once the image's first batch is shown); the
        Cube box names it (`LIVE` entry) while it is refined."""
        first = self._live_K is None
        self._live_K = step.K
        self._live_label = f"{self._live_name} — computing: K = {step.K} / {step.K_final} (not stored yet)"
        self.param.cube.objects = {**self._labels, self._live_label: LIVE}
        self.cube = LIVE
        self._show(step.ds, keep_pixels=not first)

    def poll(self) -> None:
        """Copy the job's progress into the widgets; show each new probe batch's cube; when it is done,
        show the stored cube."""
        job = self.job
        if job is None:
            return
        info = job.snapshot()
        now = info.get("progress")
        if now is not None and now.total:
            self.progress.value = int(100 * now.done / max(1, now.total))
            self._eta.update(now.done, now.total)
        step = info.get("batch")
        if step is not None and self._live and step.K != self._live_K:
            self._show_batch(step)
        if not job.done:
            queued = job.queue_text()
            self.job_status.object = queued or f"{info.get('status', 'running')} ... {self._eta.text(job.elapsed)}"
            return
        self._poller.stop()
        self.progress.visible = False
        waited = f" (after {format_seconds(job.waited)} in the queue)" if job.waited >= 1 else ""
        if job.cancelled and job.result is None and not job.error:
            self._live = False
            self.job_status.object = "cancelled."
            self.refresh_cubes()  # the Cube box no longer offers the unfinished cube
        elif job.error:
            self._live = False
            self.job_status.visible = False
            self._show_message(f"could not compute the cube: {job.error}")
            self.refresh_cubes()
        else:
            last = f" ({self._batch_text(step)})" if step is not None else ""
            self.job_status.object = (f"cube computed in {format_seconds(job.elapsed)}{waited}{last} and cached "
                                      "in the store")
            if self._live:
                self.refresh_cubes(select=job.result)
                if self._live and self.cube == job.result:
                    self._load()  # the key was selected already (no change to watch): show the stored cube
            else:  # another cube was picked meanwhile: list the new one, keep showing the picked one
                self.refresh_cubes()
        self.job = None

    def dispose(self) -> None:
        """The session ended (its tab closed): abort its computation and stop polling."""
        if self.job is not None:
            self.job.abort()
        self._poller.stop()

    # -- layout ------------------------------------------------------------------------------
    def controls(self) -> pn.Column:
        """The sidebar widgets."""
        w = pn.widgets
        cube = w.Select.from_param(self.param.cube, name="Cube", sizing_mode="stretch_width")
        slider = w.IntSlider.from_param(self.param.t_index, name="Timestep index (rate map)",
                                        sizing_mode="stretch_width", css_classes=["explore-t-slider"])
        boxes = self.number_boxes()
        return pn.Column(
            cube, self.shown, self.refresh_button, self.upload_widget,
            pn.Row(*(b.box for b in boxes)), *(b.note for b in boxes),
            self.progress, self.job_status,
            pn.pane.Markdown("### Fluctuation", margin=(0, 10)),
            w.IntSlider.from_param(self.param.window, name="Window L", end=20, sizing_mode="stretch_width"),
            w.FloatSlider.from_param(self.param.t_b, name="t_b", end=900, sizing_mode="stretch_width"),
            checkbox(self.param.normalise, "Normalise curves (shape only)"),
            self.sig_box, self.sig_side, self.sig_note,
            w.FloatSlider.from_param(self.param.opacity, name="Map opacity", sizing_mode="stretch_width"),
            pn.pane.Markdown("### Rate map", margin=(0, 10)), slider, self.t_label,
            checkbox(self.param.fixed_range, "Same colour range at every timestep"),
            pn.pane.Markdown("### Curves", margin=(0, 10)),
            checkbox(self.param.compare, "Compare clicked pixels"),
            w.RadioButtonGroup.from_param(self.param.curve_kind, name="Curve"),
            self.clear_button,
            pn.pane.Markdown("### Cube metadata", margin=(0, 10)), self.meta,
            width=320, css_classes=["explore-controls"])

    def number_boxes(self) -> list:
        """The new cube's validated number boxes (steps, K, stop at stability), made once."""
        if not hasattr(self, "_boxes"):
            self._boxes = [
                number_box(self.param.new_steps, "steps", lambda v: check_steps(v, num_train_timesteps=1000, minimum=2),
                           width=70),
                number_box(self.param.new_K, "K", check_K, width=70),
                number_box(self.param.new_until_stable, "stop at stability",
                           lambda v: check_real("stop at stability", v, minimum=0.0, maximum=0.999), integer=False,
                           width=110)]
        return self._boxes

    def __panel__(self):
        if self._ds is not None:
            self.t_label.object = f"**t = {self.timestep}**"
        grid = self._grid = pn.GridBox(self.image_pane, self.fluct_pane, self.rate_pane, self.curve_pane, ncols=2,
                          sizing_mode="stretch_width")
        return pn.Row(self.controls(), pn.Column(self.message, self.empty, grid, sizing_mode="stretch_width"),
                      sizing_mode="stretch_width")
