"""Edit: select a region, click a reference pixel, pick a task, launch a curve-matching edit.

The edit (`workbench.editing.run_edit`) runs on a worker thread (`dashboards.jobs.Job`)
with a live progress bar and loss plot; Cancel asks it to stop (it returns its best result
so far). The result appears beside the original with the region's mean curve before and
after (and the reference's curve) and the edit's metrics; it can be downloaded or saved
into `<store>/edits/`. Methods mirror what a person does (`select_box`, `select_lasso`,
`set_reference`, `launch`, `cancel`, `poll`), so tests drive the view without a browser.
"""
from __future__ import annotations

import io
import time
from pathlib import Path

import numpy as np
import panel as pn
import param

from workbench.editing import TASKS, EditConfig
from workbench.errors import WorkbenchError

from . import figures, selection
from .context import AppContext
from .jobs import Job, Poller

__all__ = ["EditView", "REFERENCE_TASKS", "sample_images"]

_DEFAULT = EditConfig()
#: tasks that take a reference pixel (the others refuse one)
REFERENCE_TASKS = ("transfer", "removal")
_DISPLAY_MAX = 512


def sample_images() -> list[Path]:
    """The sample images shipped with the package."""
    import workbench

    folder = Path(workbench.__file__).resolve().parent / "samples"
    return sorted(p for p in folder.glob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))


class EditView(pn.viewable.Viewer):
    """Region selection, reference pixel, task and knobs, launch/cancel, before/after comparison."""

    image_path = param.Selector(default=None, objects=[], doc="the image to edit")
    task = param.Selector(default="transfer", objects=list(TASKS), doc="the editing task")
    n_iter = param.Integer(default=_DEFAULT.n_iter, bounds=(1, 2000), doc="optimisation iterations")
    lr = param.Number(default=_DEFAULT.lr, bounds=(1e-4, 10.0), doc="Adam learning rate on x_T")
    direction = param.Selector(default=1, objects={"decrease saliency": 1, "increase saliency": -1},
                               doc="saliency task: +1 makes the region less salient, -1 more")
    steps = param.Integer(default=_DEFAULT.steps, bounds=(2, 200), doc="DDIM steps of the edit")
    blend = param.Boolean(default=_DEFAULT.blend, doc="keep the image outside the region (local edit)")
    reference = param.Tuple(default=None, length=2, allow_None=True, doc="reference pixel (x, y), source pixels")

    def __init__(self, context: AppContext, **params):
        super().__init__(**params)
        self.context = context
        self.mask: np.ndarray | None = None
        self.job: Job | None = None
        self.result = None
        self._poller = Poller(self.poll, 300)
        self._losses: list[float] = []
        cfg = {"displaylogo": False, "modeBarButtonsToAdd": ["select2d", "lasso2d"]}
        self.image_pane = pn.pane.Plotly(None, link_figure=False, config=cfg, sizing_mode="stretch_width",
                                         css_classes=["edit-image"])
        self.image_pane.param.watch(self._on_select, "selected_data")
        self.image_pane.param.watch(self._on_click, "click_data")
        self.result_pane = pn.pane.Plotly(None, link_figure=False, config={"displaylogo": False},
                                          sizing_mode="stretch_width", css_classes=["edit-result"])
        self.curve_pane = pn.pane.Plotly(None, link_figure=False, config={"displaylogo": False},
                                         sizing_mode="stretch_width")
        self.loss_pane = pn.pane.Plotly(None, link_figure=False, config={"displaylogo": False, "staticPlot": True},
                                        sizing_mode="stretch_width", visible=False)
        self.metrics = pn.pane.Markdown("", sizing_mode="stretch_width")
        self.status = pn.pane.Markdown("Draw a box or lasso on the image (toolbar), click a reference pixel, "
                                       "pick a task, then **Launch**.", sizing_mode="stretch_width",
                                     css_classes=["edit-status"])
        self.message = pn.pane.Alert("", alert_type="danger", visible=False, sizing_mode="stretch_width",
                                     css_classes=["edit-message"])
        self.progress = pn.indicators.Progress(value=0, max=100, visible=False, sizing_mode="stretch_width")
        self.launch_button = pn.widgets.Button(label="Launch", button_type="primary", sizing_mode="stretch_width",
                                               css_classes=["edit-launch"])
        self.launch_button.on_click(lambda _e: self.launch())
        self.cancel_button = pn.widgets.Button(label="Cancel", button_type="warning", disabled=True,
                                               sizing_mode="stretch_width")
        self.cancel_button.on_click(lambda _e: self.cancel())
        self.clear_button = pn.widgets.Button(label="Clear selection", sizing_mode="stretch_width")
        self.clear_button.on_click(lambda _e: self.clear_selection())
        self.upload_widget = pn.widgets.FileInput(accept=".png,.jpg,.jpeg,.webp,.bmp", sizing_mode="stretch_width")
        self.upload_widget.param.watch(self._on_upload, "value")
        self.download = pn.widgets.FileDownload(callback=self.result_png, filename="edited.png",
                                                label="Download the edited image", disabled=True,
                                                sizing_mode="stretch_width")
        self.save_button = pn.widgets.Button(label="Save into the store folder", disabled=True,
                                             sizing_mode="stretch_width")
        self.save_button.on_click(lambda _e: self.save())
        self._refresh_images()

    # -- images ------------------------------------------------------------------------------
    def _refresh_images(self, select: Path | None = None) -> None:
        paths = list(sample_images())
        for e in self.context.catalog.entries():
            p = Path(str(e.get("source_image") or ""))
            if p.suffix and p.is_file() and p not in paths:
                paths.append(p)
        if select is not None and select not in paths:
            paths.append(select)
        self.param.image_path.objects = {p.name: p for p in paths}
        target = select or (self.image_path if self.image_path in paths else (paths[0] if paths else None))
        if target != self.image_path:
            self.image_path = target
        elif target is not None:
            self._load_image()

    def _on_upload(self, event) -> None:
        if not event.new:
            return
        try:
            path = self.context.catalog.save_upload(event.new, self.upload_widget.filename or "image.png")
        except WorkbenchError as exc:
            self._say(str(exc))
            return
        self._refresh_images(select=path)

    @param.depends("image_path", watch=True)
    def _load_image(self) -> None:
        from workbench.images import read_image

        if self.image_path is None:
            return
        pil = read_image(self.image_path)
        self.size = (pil.height, pil.width)
        scale = min(1.0, _DISPLAY_MAX / max(self.size))
        self._display = np.asarray(pil.resize((max(1, round(pil.width * scale)), max(1, round(pil.height * scale)))))
        self.mask, self.reference, self.result = None, None, None
        self._draw_source()
        self.result_pane.object = None
        self.curve_pane.object = None
        self.result_pane.visible = self.curve_pane.visible = self.loss_pane.visible = False
        self.metrics.object = ""
        self.download.disabled = self.save_button.disabled = True

    def _draw_source(self) -> None:
        fig = figures.map_figure(self.size, image=self._display, title=f"{Path(self.image_path).name}: select a "
                                 "region, click a reference", height=460)
        fig.data = fig.data[:-1]  # no pixel markers here
        if self.mask is not None:
            z, xs, ys = figures.downsample(self.mask.astype(np.float32), 160)
            fig.add_heatmap(z=z, x=xs, y=ys, zmin=0, zmax=1, opacity=0.35, showscale=False, hoverinfo="skip",
                            colorscale=[[0, "rgba(0,0,0,0)"], [0.5, "rgba(0,0,0,0)"], [1, "#00e5ff"]])
        fig.add_trace(selection.pixel_grid_trace(self.size))
        if self.reference is not None:
            fig.add_scatter(x=[self.reference[0]], y=[self.reference[1]], mode="markers", hoverinfo="skip",
                            marker=dict(symbol="x", size=14, color="#ff1744", line=dict(width=2, color="white")))
        fig.update_layout(dragmode="select", clickmode="event", selectdirection="any")  # a click must not replace the selection
        self.image_pane.object = fig

    # -- selection and reference ---------------------------------------------------------------
    def select_box(self, x0: float, y0: float, x1: float, y1: float) -> None:
        """Select the pixels of a box (source-image pixel coordinates)."""
        self._set_mask(selection.box_mask(self.size, x0, y0, x1, y1))

    def select_lasso(self, xs, ys) -> None:
        """Select the pixels inside a polygon (source-image pixel coordinates)."""
        self._set_mask(selection.polygon_mask(self.size, xs, ys))

    def clear_selection(self) -> None:
        """Forget the region and the reference."""
        self.mask, self.reference = None, None
        self._draw_source()
        self._status_ready()

    def set_reference(self, x: int, y: int) -> None:
        """Set the reference pixel (x, y) in source-image pixels."""
        H, W = self.size
        if not (0 <= x < W and 0 <= y < H):
            raise WorkbenchError(f"reference (x={x}, y={y}) is outside the {W}x{H} image")
        self.reference = (int(x), int(y))
        self._draw_source()
        self._status_ready()

    def _set_mask(self, mask: np.ndarray | None) -> None:
        if mask is None or not mask.any():
            return
        self.mask = mask
        self._draw_source()
        self._status_ready()

    def _on_select(self, event) -> None:
        if self.image_path is not None and event.new:
            self._set_mask(selection.mask_from_selection(event.new, self.size))

    def _on_click(self, event) -> None:
        if self.image_path is None:
            return
        xy = selection.click_xy(event.new, self.size)
        if xy is not None:
            self.set_reference(*xy)

    def _status_ready(self) -> None:
        region = f"region: {int(self.mask.sum())} px" if self.mask is not None else "no region yet"
        ref = f"reference: x={self.reference[0]}, y={self.reference[1]}" if self.reference else "no reference yet"
        self.status.object = f"{region}; {ref}."

    def _say(self, text: str, kind: str = "danger") -> None:
        self.message.object, self.message.alert_type, self.message.visible = text, kind, bool(text)

    # -- running -------------------------------------------------------------------------------
    def config(self):
        """The EditConfig of the current task and knobs (fields the library does not have are left out)."""
        return _DEFAULT.with_(task=self.task, n_iter=self.n_iter, lr=float(self.lr), steps=self.steps,
                              direction=int(self.direction), blend=bool(self.blend))

    def launch(self) -> Job | None:
        """Start the edit off the UI thread (one at a time per session)."""
        if self.job is not None and not self.job.done:
            self._say("an edit is running: cancel it or wait", "warning")
            return None
        if self.mask is None:
            self._say("select a region first (box or lasso tool on the image)")
            return None
        if self.task == "transfer" and self.reference is None:
            self._say("semantic transfer needs a reference pixel: click a pixel with the wanted look")
            return None
        try:
            cfg = self.config()
        except WorkbenchError as exc:
            self._say(str(exc))
            return None
        self._say("")
        ctx, image, mask = self.context, self.image_path, self.mask.copy()
        ref = self.reference if self.task in REFERENCE_TASKS else None

        def work(report, should_stop):
            from workbench.editing import run_edit

            report(status="loading the model")
            adapter = ctx.adapter()
            report(status="inverting the image")
            return run_edit(adapter, image, mask, cfg, ref_xy=ref, callback=lambda info: report(**info),
                            should_stop=should_stop, baselines=False)  # the classical baselines: `workbench edit`

        self._losses = []
        self.result = None
        self.job = Job(work, name="edit").start()
        self.progress.value, self.progress.visible = 0, True
        self.loss_pane.visible = False
        self.launch_button.disabled, self.cancel_button.disabled = True, False
        self.status.object = f"running **{cfg.task}** ..."
        self._poller.start()
        return self.job

    def cancel(self) -> None:
        """Ask the running edit to stop; it returns its best result so far."""
        if self.job is not None and not self.job.done:
            self.job.cancel()
            self.status.object = "cancelling (the best result so far is kept) ..."

    def poll(self) -> None:
        """Copy progress into the widgets; when the edit is done, show its result."""
        job = self.job
        if job is None:
            return
        info = job.snapshot()
        if "iteration" in info and info.get("n_iter"):
            done, n = int(info["iteration"]), int(info["n_iter"])  # iterations done so far
            self.progress.value = int(100 * min(done, n) / n)
            loss = float(info.get("loss", float("nan")))
            if np.isfinite(loss) and info.get("stage") == "optimise" and len(self._losses) < done:
                self._losses.extend([loss] * (done - len(self._losses)))
            best = float(info.get("best_loss", loss))
            stage = {"invert": "inverting the image", "curves": "computing the curves", "optimise": "optimising",
                     "evaluate": "evaluating the result"}.get(info.get("stage"), "running")
            self.status.object = (f"{stage}: iteration {min(done, n)}/{n}, loss {loss:.4g} (best {best:.4g}), "
                                  f"{job.elapsed:.0f} s")
            self._show_losses()
        elif not job.done:
            self.status.object = f"{info.get('status', 'running')} ... {job.elapsed:.0f} s"
        if not job.done:
            return
        self._poller.stop()
        self.progress.visible = False
        self.launch_button.disabled, self.cancel_button.disabled = False, True
        self.job = None
        if job.error:
            self._say(f"the edit failed: {job.error}")
            self.status.object = "failed."
            return
        self.result = job.result
        self._losses = [float(v) for v in getattr(self.result, "losses", self._losses)]
        self._show_losses()
        self._show_result(job.elapsed)

    def _show_losses(self) -> None:
        if len(self._losses) < 2:
            return
        fig = figures.curves_figure(np.arange(1, len(self._losses) + 1), [("loss", np.asarray(self._losses))],
                                    title="Loss", height=220, yaxis_title="loss")
        fig.update_xaxes(title="iteration")
        self.loss_pane.object, self.loss_pane.visible = fig, True

    def _show_result(self, elapsed: float) -> None:
        r = self.result
        orig, edited = np.asarray(r.original.convert("RGB")), np.asarray(r.edited.convert("RGB"))
        h, w = orig.shape[:2]
        gap = np.full((h, max(2, w // 32), 3), 255, np.uint8)
        both = np.concatenate([orig, gap, edited], 1)
        fig = figures.map_figure(both.shape[:2], image=both, title="Original | edited (model resolution)", height=300)
        fig.data = fig.data[:-1]
        self.result_pane.object = fig
        self.result_pane.visible = self.curve_pane.visible = True
        curves = [("region before", np.asarray(r.curve_before)), ("region after", np.asarray(r.curve_after))]
        if getattr(r, "reference_curve", None) is not None:
            curves.append(("reference", np.asarray(r.reference_curve)))
        self.curve_pane.object = figures.curves_figure(np.asarray(r.timesteps), curves, title="Region's mean curve",
                                                       height=320)
        rows = "\n".join(f"| {k} | {v:.4g} |" if isinstance(v, (int, float)) else f"| {k} | {v} |"
                         for k, v in (r.metrics or {}).items())
        state = "cancelled: best result so far" if r.cancelled else "done"
        self.metrics.object = (f"**{state}** after {r.iterations_done} iterations in {elapsed:.0f} s\n\n"
                               f"| metric | value |\n|---|---|\n{rows}")
        self.status.object = f"{state}."
        self.download.filename = f"{Path(self.image_path).stem}-{self.task}.png"
        self.download.disabled = self.save_button.disabled = False

    # -- saving --------------------------------------------------------------------------------
    def result_png(self) -> io.BytesIO:
        """The edited image as PNG bytes (model resolution)."""
        if self.result is None:
            raise WorkbenchError("no edit result yet: launch an edit first")
        buf = io.BytesIO()
        self.result.edited.save(buf, format="PNG")
        buf.seek(0)
        return buf

    def save(self) -> Path:
        """Write the edited image (and the mask) to `<store>/edits/` and return the image's path."""
        from PIL import Image

        folder = self.context.catalog.path / "edits"
        folder.mkdir(parents=True, exist_ok=True)
        stem = f"{Path(self.image_path).stem}-{self.task}-{time.strftime('%Y%m%d-%H%M%S')}"
        path = folder / f"{stem}.png"
        path.write_bytes(self.result_png().getvalue())
        Image.fromarray((self.mask * 255).astype(np.uint8)).save(folder / f"{stem}-mask.png")
        self.status.object = f"saved `{path}`"
        return path

    # -- layout --------------------------------------------------------------------------------
    def __panel__(self):
        w = pn.widgets
        side = pn.Column(
            w.Select.from_param(self.param.image_path, name="Image", sizing_mode="stretch_width",
                                css_classes=["edit-image-select"]),
            pn.pane.Markdown("or drop an image:", margin=(0, 10)), self.upload_widget,
            w.RadioButtonGroup.from_param(self.param.task, name="Task", sizing_mode="stretch_width"),
            w.IntInput.from_param(self.param.n_iter, name="Iterations", css_classes=["edit-n_iter"]),
            w.FloatInput.from_param(self.param.lr, name="Learning rate", step=0.01),
            w.Select.from_param(self.param.direction, name="Saliency direction"),
            w.IntInput.from_param(self.param.steps, name="DDIM steps", css_classes=["edit-steps"]),
            w.Checkbox.from_param(self.param.blend, name="Blend outside the region"),
            self.clear_button, pn.Row(self.launch_button, self.cancel_button, sizing_mode="stretch_width"),
            self.progress, self.download, self.save_button, width=320)
        left = pn.Column(self.message, self.status, self.image_pane, sizing_mode="stretch_width")
        right = pn.Column(self.result_pane, self.metrics, self.curve_pane, self.loss_pane,
                          sizing_mode="stretch_width")
        return pn.Row(side, pn.Row(left, right, sizing_mode="stretch_width"), sizing_mode="stretch_width")
