"""Explore: one cube's image, fluctuation map, rate map at a timestep and clicked pixels' curves.

Everything a person does is a parameter or a method, so tests drive the view without a
browser: set `cube`, `window`, `t_b`, `t_index`, `opacity`; call `click(y, x)` (what a
click on any map does) or `upload(bytes, name)` then `poll()` until the cube is computed.
"""
from __future__ import annotations

import numpy as np
import panel as pn
import param

from analysis.fluctuation import DEFAULT_NORMALISE, DEFAULT_T_B, DEFAULT_WINDOW, fluctuation_map
from workbench.errors import WorkbenchError
from workbench.estimators import DEFAULT_K

from . import figures
from .catalog import cube_label
from .context import AppContext
from .widgets import checkbox
from .jobs import Cancelled, Job, Poller, format_seconds, on_session_end

__all__ = ["ExploreView", "MAX_PIXELS"]

#: at most this many curves are compared on one plot (the oldest is dropped)
MAX_PIXELS = 8

_META = (("model_name", "model"), ("rate_definition", "rate definition"), ("estimator", "estimator"),
         ("K", "K (probes / rank)"), ("channel_rule", "channel rule"), ("steps", "DDIM steps"),
         ("seed", "probe seed"), ("source_image", "source image"), ("source_size", "source size (H, W)"),
         ("model_fingerprint", "model fingerprint"), ("key", "cube key"), ("prompt", "prompt"),
         ("negative_prompt", "negative prompt"), ("guidance_scale", "guidance scale"),
         ("prompt_fingerprint", "prompt fingerprint"))
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
    normalise = param.Boolean(default=DEFAULT_NORMALISE,
                              doc="divide each curve by its sum over t > t_b (shape only), for F and the plot")
    max_side = param.Integer(default=256, bounds=(16, 2048), doc="display resolution cap of the maps")
    new_steps = param.Integer(default=50, bounds=(2, 1000), doc="DDIM steps of a new image's cube")
    new_K = param.Integer(default=DEFAULT_K, bounds=(1, 512), doc="Hutchinson probes of a new image's cube")
    fixed_range = param.Boolean(default=False, doc="one colour range for the rate map at every timestep "
                                                   "(robust range of the whole cube) instead of per timestep")

    def __init__(self, context: AppContext, **params):
        params.setdefault("max_side", context.max_side)
        super().__init__(**params)
        self.context = context
        self._ds = None
        self._fluct: np.ndarray | None = None
        self._fluct_error: str | None = None
        self.job: Job | None = None
        self._poller = Poller(self.poll, 250, on_gone=self.dispose)
        on_session_end(self.dispose)
        cfg = {"displaylogo": False, "scrollZoom": False, "modeBarButtonsToRemove": ["select2d", "lasso2d"]}
        def blank():  # no axes without data
            return figures.empty_figure("no cube to show yet")
        self.image_pane = pn.pane.Plotly(blank(), link_figure=False, config=cfg, sizing_mode="stretch_width")
        self.fluct_pane = pn.pane.Plotly(blank(), link_figure=False, config=cfg, sizing_mode="stretch_width")
        self.rate_pane = pn.pane.Plotly(blank(), link_figure=False, config=cfg, sizing_mode="stretch_width")
        self.curve_pane = pn.pane.Plotly(blank(), link_figure=False, config={"displaylogo": False},
                                         sizing_mode="stretch_width")
        for pane in (self.image_pane, self.fluct_pane, self.rate_pane):
            pane.param.watch(self._on_click_event, "click_data")
        self.message = pn.pane.Alert("", alert_type="danger", visible=False, sizing_mode="stretch_width")
        self.meta = pn.pane.Markdown("", sizing_mode="stretch_width", styles={"font-size": "12px"})
        self.t_label = pn.pane.Markdown("", margin=(0, 10))
        self.upload_widget = pn.widgets.FileInput(accept=".png,.jpg,.jpeg,.webp,.bmp", name="Drop an image",
                                                  sizing_mode="stretch_width")
        self.upload_widget.param.watch(self._on_upload, "value")
        self.progress = pn.indicators.Progress(value=0, max=100, visible=False, sizing_mode="stretch_width",
                                               bar_color="primary")
        self.job_status = pn.pane.Markdown("", visible=False, margin=(0, 10))
        self.clear_button = pn.widgets.Button(label="Clear curves", button_type="default")
        self.clear_button.on_click(lambda _e: self.clear())
        self.empty = pn.pane.Markdown("The store holds no cubes yet: drop an image on the left (or compute some "
                                      "with `workbench cubes`).", visible=False)
        self.refresh_cubes()
        self.empty.visible = self._ds is None

    # -- catalogue ---------------------------------------------------------------------------
    def refresh_cubes(self, select: str | None = None) -> None:
        """Re-read the store's cube list (after a new cube) and select `select` (or keep the current one)."""
        entries = self.context.catalog.entries()
        self._labels = {cube_label(e): e["key"] for e in entries}
        keys = list(self._labels.values())
        self.param.cube.objects = self._labels
        target = select or (self.cube if self.cube in keys else (keys[0] if keys else None))
        if target != self.cube:
            self.cube = target
        elif target is not None and self._ds is None:
            self._load()

    @param.depends("cube", watch=True)
    def _load(self) -> None:
        if self.cube is None:
            return
        ds = self.context.catalog.open(self.cube)
        n = ds.sizes["t"]
        self._ds = None  # the watchers below see no cube until it is set up
        self.param.t_index.bounds = (0, n - 1)
        if self.t_index > n - 1:
            self.t_index = n - 1
        self.pixels = []
        self._ds = ds
        self.empty.visible = False
        self._image = self._photo()
        self._cube_range = None
        self._recompute_fluct()
        self.meta.object = self._meta_markdown()
        self._build_figures()

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
        from pathlib import Path

        from PIL import Image

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
        """The generation curve (N,) of grid pixel (y, x), optionally normalised."""
        c = np.asarray(self._ds["rate"].values[:, y, x], dtype=np.float64)
        if self.normalise:
            keep = self.timesteps > self.t_b
            s = c[keep].sum()
            c = c / s if s > 0 else c
        return c

    def _recompute_fluct(self) -> None:
        try:
            self._fluct = np.asarray(fluctuation_map(self._ds["rate"], window=self.window, t_b=self.t_b,
                                                         normalise=self.normalise).values)
            self._fluct_error = None
        except WorkbenchError as exc:
            self._fluct, self._fluct_error = None, str(exc)
        self._show_message(self._fluct_error)

    def _show_message(self, text: str | None, kind: str = "danger") -> None:
        self.message.object = text or ""
        self.message.alert_type = kind
        self.message.visible = bool(text)

    def _meta_markdown(self) -> str:
        a = self._ds.attrs
        rows = [f"- **{label}**: `{a[k]}`" for k, label in _META if k in a and a[k] not in ("", None)]
        (H, W), (H0, W0) = self.shape, self.extent
        rows.append(f"- **cube**: {self._ds.sizes['t']} timesteps × {H} × {W} model cells")
        rows.append(f"- **one model cell**: {W0 / W:.3g} × {H0 / H:.3g} image px (width × height; the whole image "
                    f"was resized to the model's {W}×{H}); axes are in image px")
        return "\n".join(rows)

    # -- figures -----------------------------------------------------------------------------
    def _build_figures(self) -> None:
        shape, extent = self.shape, self.extent
        name = str(self._ds.attrs.get("source_image", "")).rsplit("/", 1)[-1] or self.cube[:10]
        self.image_pane.object = figures.map_figure(shape, image=self._image, title=f"Image: {name}",
                                                    pixels=self.pixels, extent=extent, pickable=True,
                                                    max_side=self.max_side)
        self.fluct_pane.object = figures.map_figure(shape, image=self._image, values=self._fluct_values(),
                                                    name="F", title=self._fluct_title(), opacity=self.opacity,
                                                    colorscale="Inferno", pixels=self.pixels,
                                                    max_side=self.max_side, extent=extent,
                                                    colorbar_title=self._fluct_unit())
        self.rate_pane.object = figures.map_figure(shape, values=self.rate_map(), name="rate",
                                                   title=self._rate_title(), pixels=self.pixels,
                                                   max_side=self.max_side, extent=extent, zrange=self.rate_range(),
                                                   colorbar_title="rate r_t")
        self._update_curves()

    def _fluct_unit(self) -> str:
        return "F (variance of the normalised curve)" if self.normalise else "F (variance of the rate, rate²)"

    def _fluct_values(self) -> np.ndarray:
        return self._fluct if self._fluct is not None else np.zeros(self.shape, np.float32)

    def _fluct_title(self) -> str:
        norm = ", normalised" if self.normalise else ""
        return f"Fluctuation F (L={self.window}, t_b={self.t_b:g}{norm})" + ("" if self._fluct is not None else " — invalid")

    def _rate_title(self) -> str:
        return f"Rate map at t={self.timestep} (step {self.t_index + 1}/{len(self.timesteps)})"

    def _heatmap_index(self, fig) -> int:
        return next(i for i, tr in enumerate(fig.data) if tr.type == "heatmap")

    @staticmethod
    def _replace(pane: pn.pane.Plotly, change) -> None:
        """Show a changed copy of the pane's figure (Panel diffs it against what the browser has and sends
        only what changed: a mutated figure would share nested dicts with the last sent state)."""
        import plotly.graph_objects as go

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
            if colorbar_title is not None:
                hm.colorbar.title.text = colorbar_title
            fig.layout.title.text = title

        self._replace(pane, change)

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

    @param.depends("window", "t_b", "normalise", watch=True)
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
        curves = []
        for (y, x) in self.pixels:
            sx, sy = self.source_xy(y, x)
            label = f"x={sx}, y={sy}"
            if self._fluct is not None:
                label += f" (F={self._fluct[y, x]:.2e})"
            curves.append((label, self.curve(y, x)))
        ytitle = "rate / sum over t > t_b" if self.normalise else "generation rate"
        self.curve_pane.object = figures.curves_figure(self.timesteps, curves, t_now=self.timestep, t_b=self.t_b,
                                                       yaxis_title=ytitle)

    def _update_markers(self) -> None:
        new = figures.markers_trace(self.pixels, shape=self.shape, extent=self.extent)
        # only the fluctuation map carries the markers: every marked map is redrawn in full on a click
        for pane in (self.fluct_pane,):
            self._replace(pane, lambda fig: fig.data[-1].update(x=new.x, y=new.y, text=new.text, marker=new.marker))

    # -- interactions ------------------------------------------------------------------------
    def click(self, y: int, x: int) -> None:
        """Add grid pixel (y, x) to the compared curves (or replace them when `compare` is off)."""
        H, W = self.shape
        if not (0 <= y < H and 0 <= x < W):
            raise WorkbenchError(f"pixel (x={x}, y={y}) is outside the {W}x{H} grid")
        pix = [p for p in self.pixels if p != (y, x)] if self.compare else []
        pix.append((int(y), int(x)))
        self.pixels = pix[-MAX_PIXELS:]
        self._update_markers()
        self._update_curves()

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
        """Save a dropped image into the store and compute its cube off the UI thread."""
        if self.job is not None and not self.job.done:
            self._show_message("a cube is being computed already: wait for it to finish", "warning")
            return None
        try:
            path = self.context.catalog.save_upload(data, filename)
        except WorkbenchError as exc:
            self._show_message(str(exc))
            return None
        from cache.params import CubeParams

        ctx, params = self.context, CubeParams(steps=self.new_steps, K=self.new_K)

        def compute(report, _should_stop):
            report(done=0, total=1, status="loading the model")
            adapter = ctx.adapter()
            report(status="inverting and estimating rates")
            def progress(d, t):
                if _should_stop():  # the tab closed: stop between timesteps
                    raise Cancelled()
                report(done=d, total=t)

            return ctx.catalog.add_image(adapter, path, params, progress=progress)

        self.job = Job(compute, name="cube", queue=ctx.queue).start()
        self.progress.value, self.progress.visible = 0, True
        self.job_status.object, self.job_status.visible = f"computing the cube of **{filename}** ...", True
        self._poller.start()
        return self.job

    def poll(self) -> None:
        """Copy the job's progress into the widgets; when it is done, show the new cube."""
        job = self.job
        if job is None:
            return
        info = job.snapshot()
        if info.get("total"):
            self.progress.value = int(100 * info.get("done", 0) / max(1, info["total"]))
        if not job.done:
            queued = job.queue_text()
            self.job_status.object = queued or f"{info.get('status', 'running')} ... {format_seconds(job.elapsed)}"
            return
        self._poller.stop()
        self.progress.visible = False
        waited = f" (after {format_seconds(job.waited)} in the queue)" if job.waited >= 1 else ""
        if job.cancelled and job.result is None and not job.error:
            self.job_status.object = "cancelled."
        elif job.error:
            self.job_status.visible = False
            self._show_message(f"could not compute the cube: {job.error}")
        else:
            self.job_status.object = (f"cube computed in {format_seconds(job.elapsed)}{waited} and cached in the "
                                      "store")
            self.refresh_cubes(select=job.result)
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
        return pn.Column(
            cube, self.upload_widget,
            pn.Row(w.IntInput.from_param(self.param.new_steps, name="steps", width=90),
                   w.IntInput.from_param(self.param.new_K, name="K", width=90)),
            self.progress, self.job_status,
            pn.pane.Markdown("### Fluctuation", margin=(0, 10)),
            w.IntSlider.from_param(self.param.window, name="Window L", end=20, sizing_mode="stretch_width"),
            w.FloatSlider.from_param(self.param.t_b, name="t_b", end=900, sizing_mode="stretch_width"),
            checkbox(self.param.normalise, "Normalise curves (shape only)"),
            w.FloatSlider.from_param(self.param.opacity, name="Map opacity", sizing_mode="stretch_width"),
            pn.pane.Markdown("### Rate map", margin=(0, 10)), slider, self.t_label,
            checkbox(self.param.fixed_range, "Same colour range at every timestep"),
            pn.pane.Markdown("### Curves", margin=(0, 10)),
            checkbox(self.param.compare, "Compare clicked pixels"),
            self.clear_button,
            pn.pane.Markdown("### Cube metadata", margin=(0, 10)), self.meta,
            width=320, css_classes=["explore-controls"])

    def __panel__(self):
        if self._ds is not None:
            self.t_label.object = f"**t = {self.timestep}**"
        grid = pn.GridBox(self.image_pane, self.fluct_pane, self.rate_pane, self.curve_pane, ncols=2,
                          sizing_mode="stretch_width")
        return pn.Row(self.controls(), pn.Column(self.message, self.empty, grid, sizing_mode="stretch_width"),
                      sizing_mode="stretch_width")
