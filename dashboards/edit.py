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
from PIL import Image

import workbench
from workbench.editing import TASKS, EditConfig, run_edit
from workbench.editing.loop import EditCancelled
from workbench.editing.metrics import psnr_outside
from workbench.errors import WorkbenchError
from workbench.images import read_image
from workbench.validate import check_int, check_real

from . import figures, selection
from .context import AppContext
from .widgets import checkbox, number_box
from .jobs import Cancelled, Eta, Job, Poller, format_seconds, on_session_end

__all__ = ["EditView", "REFERENCE_TASKS", "sample_images", "check_knobs", "METRIC_LABELS", "MIN_EDIT_STEPS",
           "format_metric", "ema"]

_DEFAULT = EditConfig()
_NEED_REGION = "select a region first (box or lasso tool on the image)"
_NEED_REFERENCE = "semantic transfer needs a reference pixel: click a pixel with the wanted look"
#: tasks that take a reference pixel (the others refuse one)
REFERENCE_TASKS = ("transfer", "removal")
_DISPLAY_MAX = 512
#: the fewest DDIM steps an edit takes: fewer invert the image too coarsely (2 steps gave pure noise)
MIN_EDIT_STEPS = 5
#: metric names as the field writes them, with units (keys of workbench.editing's metric dict)
METRIC_LABELS = {
    "psnr_outside_source": "PSNR outside, source resolution (dB)",
    "psnr_outside": "PSNR outside, model resolution (dB)",
    "psnr_outside_reconstruction": "PSNR outside of the plain reconstruction (dB)",
    "ssim_outside": "SSIM outside",
    "change_inside": "mean absolute change inside (0-1)",
    "mean_rate_before": "mean rate, t > t_b, before",
    "mean_rate_after": "mean rate, t > t_b, after",
    "fluctuation_before": "fluctuation F before",
    "fluctuation_after": "fluctuation F after",
    "tv_before": "TV distance to the reference, before",
    "tv_after": "TV distance to the reference, after",
}
#: shown elsewhere (the headline), not as metrics
_NOT_METRICS = ("seconds", "iterations")
_PHASES = {"invert": "inverting", "curves": "computing the curves", "optimise": "optimising",
           "evaluate": "evaluating the result"}


def format_metric(value) -> str:
    """A metric value for the table: 4 significant digits, 'inf' / 'n/a' for the non-finite."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        return str(value)
    v = float(value)
    if np.isnan(v):
        return "n/a"
    if np.isinf(v):
        return "inf (identical)" if v > 0 else "-inf"
    return f"{v:.3e}" if v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e5) else f"{v:.4g}"


def ema(values, weight: float = 0.9) -> np.ndarray:
    """The loss's moving average as the editing loop keeps it (ema = 0.9 ema + 0.1 loss)."""
    out, m = [], None
    for v in values:
        m = float(v) if m is None else weight * m + (1 - weight) * float(v)
        out.append(m)
    return np.asarray(out, dtype=np.float64)


def check_knobs(n_iter, steps) -> None:
    """Iterations 1..2000 and DDIM steps MIN_EDIT_STEPS..200 (the shared validation, one-line WorkbenchError)."""
    check_int("iterations", n_iter, minimum=1, maximum=2000)
    check_int("DDIM steps", steps, minimum=MIN_EDIT_STEPS, maximum=200,
              why="fewer steps invert the image too coarsely: the result is noise")


def sample_images() -> list[Path]:
    """The sample images shipped with the package."""
    folder = Path(workbench.__file__).resolve().parent / "samples"
    return sorted(p for p in folder.glob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))


class EditView(pn.viewable.Viewer):
    """Region selection, reference pixel, task and knobs, launch/cancel, before/after comparison."""

    image_path = param.Selector(default=None, objects=[], doc="the image to edit")
    task = param.Selector(default="transfer", objects=list(TASKS), doc="the editing task")
    n_iter = param.Integer(default=_DEFAULT.n_iter, bounds=(1, 2000), doc="optimisation iterations (>= 1)")
    lr = param.Number(default=_DEFAULT.lr, bounds=(1e-4, 10.0), doc="Adam learning rate on x_T")
    direction = param.Selector(default=1, objects={"decrease saliency": 1, "increase saliency": -1},
                               doc="saliency task: +1 makes the region less salient, -1 more")
    steps = param.Integer(default=_DEFAULT.steps, bounds=(MIN_EDIT_STEPS, 200), doc="DDIM steps of the edit")
    blend = param.Boolean(default=_DEFAULT.blend, doc="keep the image outside the region (local edit)")
    reference = param.Tuple(default=None, length=2, allow_None=True, doc="reference pixel (x, y), source pixels")

    def __init__(self, context: AppContext, **params):
        super().__init__(**params)
        self.context = context
        self.mask: np.ndarray | None = None
        self.job: Job | None = None
        self.result = None
        self.composited: np.ndarray | None = None
        self.blend_used = bool(self.blend)
        self._poller = Poller(self.poll, 300, on_gone=self.dispose)
        on_session_end(self.dispose)
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
        self.estimate = pn.pane.Markdown("", sizing_mode="stretch_width", styles={"font-size": "12px"},
                                         css_classes=["edit-estimate"])
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
        self._eta, self._eta_steps = Eta(), 1
        self._refresh_images()
        self._status_ready_estimate()

    # -- images ------------------------------------------------------------------------------
    def refresh_images(self, select: Path | None = None) -> None:
        """Re-read the images one can edit (the samples and the store's cubes' images); select `select`."""
        self._refresh_images(select)

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
        H0, W0 = self.size
        title = f"{Path(self.image_path).name} ({W0}×{H0} px): select a region, click a reference"
        fig = figures.map_figure(self.size, image=self._display,
                                 frame=figures.Frame(title=title, height=540, uirevision=str(self.image_path)))
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
        if self.mask is not None:
            self._clear_hint()

    def _set_mask(self, mask: np.ndarray | None) -> None:
        if mask is None or not mask.any():
            return
        self.mask = mask
        self._draw_source()
        self._status_ready()
        self._clear_hint()

    def _clear_hint(self) -> None:
        """A region or reference was given: the alert that asked for it no longer applies."""
        if self.message.visible and self.message.object in (_NEED_REGION, _NEED_REFERENCE):
            self._say("")

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
        self._status_ready_estimate()

    def estimate_text(self) -> str:
        """What an edit with the current knobs will take, from the iteration rate measured on this server
        (scaled by DDIM steps: an iteration runs the chain), or why there is no estimate yet."""
        rate = self.context.timings.get("edit")
        if rate is None:
            return ("No edit has been timed on this server yet: after the first iterations the progress line "
                    "says how long the rest will take.")
        its = rate * self.steps * self.n_iter
        return (f"Expected: about {format_seconds(its)} for {self.n_iter} iterations at {self.steps} DDIM steps "
                f"(measured here: {format_seconds(rate * self.steps)} per iteration), plus the evaluation.")

    @param.depends("n_iter", "steps", watch=True)
    def _status_ready_estimate(self) -> None:
        if self.job is None:
            self.estimate.object = self.estimate_text()

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
            self._say(_NEED_REGION)
            return None
        if self.task == "transfer" and self.reference is None:
            self._say(_NEED_REFERENCE)
            return None
        try:
            check_knobs(self.n_iter, self.steps)
            cfg = self.config()
        except WorkbenchError as exc:
            self._say(str(exc))
            return None
        self._say("")
        ctx, image, mask = self.context, self.image_path, self.mask.copy()
        ref = self.reference if self.task in REFERENCE_TASKS else None

        def work(report, should_stop):
            report(status="loading the model")
            adapter = ctx.adapter()
            report(status="inverting the image")
            try:
                return run_edit(adapter, image, mask, cfg, ref_xy=ref, callback=lambda p: report(progress=p),
                                should_stop=should_stop, baselines=False)  # the classical baselines: `workbench edit`
            except EditCancelled:  # stopped before the optimisation: nothing to show
                raise Cancelled() from None

        self._losses = []
        self.result = None
        self.composited = None
        self._eta, self._eta_steps = Eta(), cfg.steps
        self.job = Job(work, name="edit", queue=ctx.queue).start()
        self.progress.value, self.progress.visible = -1, True
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
        if not job.done:
            self.status.object = self.progress_text(job)
            now = job.snapshot().get("progress")
            if now is not None and now.phase == "optimise" and now.total:
                done, n = now.done, now.total
                self.progress.value = int(100 * min(done, n) / n)
                self._eta.update(done, n)
                loss = figures.finite_or_none(now.loss)
                if loss is not None and len(self._losses) < done:
                    self._losses.extend([loss] * (done - len(self._losses)))
                self._show_losses()
            else:
                self.progress.value = -1  # indeterminate: queued, inverting, computing curves, evaluating
            return
        self._poller.stop()
        self.progress.visible = False
        self.launch_button.disabled, self.cancel_button.disabled = False, True
        self.job = None
        if self._eta.seconds_per_step is not None:  # what the next launch's estimate is scaled from
            self.context.timings["edit"] = self._eta.seconds_per_step / self._eta_steps
            self._status_ready_estimate()
        if job.error:
            self._say(f"the edit failed: {job.error}")
            self.status.object = "failed."
            return
        if job.result is None:  # cancelled before it started
            self.status.object = "cancelled before it started."
            return
        self.result = job.result
        self._losses = [float(v) for v in getattr(self.result, "losses", self._losses)]
        self._show_losses()
        self._show_result(job)

    def progress_text(self, job: Job) -> str:
        """One line: the queue position, or the phase ('inverting', 'optimising 12/200', 'evaluating'),
        the loss and its best moving average when they are numbers, and the seconds spent computing."""
        queued = job.queue_text()
        if queued:
            return queued
        info = job.snapshot()
        now = info.get("progress")
        stage = None if now is None else now.phase
        text = _PHASES.get(stage, info.get("status", "starting"))
        if stage == "optimise" and now.total:
            text += f" {min(now.done, now.total)}/{now.total}"
            loss, best = figures.finite_or_none(now.loss), figures.finite_or_none(now.best_loss)
            if loss is not None:
                text += f", loss {loss:.4g}"
            if best is not None:
                text += f" (best moving average {best:.4g})"
        if job.cancelled:
            text = "cancelling (the best result so far is kept): " + text
        if stage == "optimise" and self._eta.left is not None:
            return f"{text} · {self._eta.text(job.elapsed)} for the iterations, then the evaluation"
        return f"{text} · {format_seconds(job.elapsed)} elapsed"

    def _show_losses(self) -> None:
        losses = np.asarray([v for v in self._losses], dtype=np.float64)
        if len(losses) < 2 or not np.isfinite(losses).any():
            return
        its = np.arange(1, len(losses) + 1)
        fig = figures.curves_figure(its, [("loss", losses), ("moving average (the loop keeps its best)", ema(losses))],
                                    frame=figures.Frame(title="Loss per iteration", height=240), yaxis_title="loss")
        fig.update_xaxes(title="iteration", tickformat="d", dtick=max(1, int(np.ceil(len(losses) / 8))))
        self.loss_pane.object, self.loss_pane.visible = fig, True

    def composite(self) -> np.ndarray:
        """The edit at the source image's resolution, uint8 (H0, W0, 3): the model-resolution change
        upsampled and added to the source; with `blend`, only inside the region and a feathered band
        around it (outside, the source exactly)."""
        return np.asarray(self.result.edited_source)

    def _show_result(self, job: Job) -> None:
        r = self.result
        self.blend_used = bool(getattr(r, "config", {}).get("blend", self.blend))
        self.composited = self.composite()
        source = np.asarray(read_image(self.image_path))
        self.result_pane.object = figures.before_after_figure(source, self.composited, max_side=_DISPLAY_MAX)
        self.result_pane.visible = self.curve_pane.visible = True
        curves = [("region before", np.asarray(r.curve_before)), ("region after", np.asarray(r.curve_after))]
        if getattr(r, "reference_curve", None) is not None:
            curves.append(("reference", np.asarray(r.reference_curve)))
        self.curve_pane.object = figures.curves_figure(np.asarray(r.timesteps), curves,
                                                       frame=figures.Frame(title="Region's mean curve", height=320))
        metrics = {"psnr_outside_source": psnr_outside(source, self.composited, self.mask),
                   **{k: v for k, v in (r.metrics or {}).items() if k not in _NOT_METRICS}}
        rows = "\n".join(f"| {METRIC_LABELS.get(k, k)} | {format_metric(v)} |" for k, v in metrics.items())
        state = "cancelled: best result so far" if r.cancelled else "done"
        waited = f"; waited {format_seconds(job.waited)} in the queue before" if job.waited >= 1 else ""
        H0, W0 = source.shape[:2]
        self.metrics.object = (f"**{state}**: {r.iterations_done} iterations, computed in "
                               f"{format_seconds(job.elapsed)} (model loading and evaluation included){waited}. "
                               f"Result at the source resolution, {W0}×{H0} px"
                               f"{', blended outside the region' if self.blend_used else ''}.\n\n"
                               f"| metric | value |\n|---|---|\n{rows}")
        self.status.object = f"{state}."
        self.download.filename = f"{Path(self.image_path).stem}-{self.task}.png"
        self.download.disabled = self.save_button.disabled = False

    def dispose(self) -> None:
        """The session ended (its tab closed): abort its edit (queued or running; nobody will see the
        result, so the evaluation is skipped too) and stop polling."""
        if self.job is not None:
            self.job.abort()
        self._poller.stop()

    # -- saving --------------------------------------------------------------------------------
    def result_png(self) -> io.BytesIO:
        """The edited image as PNG bytes, at the source image's resolution (`composite`)."""
        if self.result is None:
            raise WorkbenchError("no edit result yet: launch an edit first")
        if self.composited is None:
            self.composited = self.composite()
        buf = io.BytesIO()
        Image.fromarray(self.composited).save(buf, format="PNG")
        buf.seek(0)
        return buf

    def save(self) -> Path:
        """Write the edited image (and the mask) to `<store>/edits/` and return the image's path."""
        folder = self.context.catalog.path / "edits"
        folder.mkdir(parents=True, exist_ok=True)
        stem = f"{Path(self.image_path).stem}-{self.task}-{time.strftime('%Y%m%d-%H%M%S')}"
        path = folder / f"{stem}.png"
        path.write_bytes(self.result_png().getvalue())
        Image.fromarray((self.mask * 255).astype(np.uint8)).save(folder / f"{stem}-mask.png")
        self.status.object = f"saved `{path}`"
        return path

    # -- layout --------------------------------------------------------------------------------
    def number_boxes(self) -> list:
        """The validated number boxes: iterations, learning rate, DDIM steps (made once)."""
        if not hasattr(self, "_boxes"):
            self._boxes = [
                number_box(self.param.n_iter, "Iterations", lambda v: check_int("iterations", v, minimum=1,
                                                                                maximum=2000), width=150),
                number_box(self.param.lr, "Learning rate",
                           lambda v: check_real("learning rate", v, minimum=1e-4, maximum=10.0), integer=False,
                           width=150),
                number_box(self.param.steps, f"DDIM steps (>= {MIN_EDIT_STEPS})",
                           lambda v: check_int("DDIM steps", v, minimum=MIN_EDIT_STEPS, maximum=200,
                                               why="fewer steps invert the image too coarsely: the result is noise"),
                           width=150)]
        return self._boxes

    def __panel__(self):
        w = pn.widgets
        side = pn.Column(
            w.Select.from_param(self.param.image_path, name="Image", sizing_mode="stretch_width",
                                css_classes=["edit-image-select"]),
            pn.pane.Markdown("or drop an image:", margin=(0, 10)), self.upload_widget,
            w.RadioButtonGroup.from_param(self.param.task, name="Task", sizing_mode="stretch_width"),
            *(b.column() for b in self.number_boxes()[:2]),
            w.Select.from_param(self.param.direction, name="Saliency direction"),
            self.number_boxes()[2].column(),
            checkbox(self.param.blend, "Blend outside the region"),
            self.clear_button, pn.Row(self.launch_button, self.cancel_button, sizing_mode="stretch_width"),
            self.progress, self.estimate, self.download, self.save_button, width=320)
        left = pn.Column(self.message, self.status, self.image_pane, sizing_mode="stretch_width")
        right = pn.Column(self.result_pane, self.metrics, self.curve_pane, self.loss_pane,
                          sizing_mode="stretch_width")
        return pn.Row(side, pn.Row(left, right, sizing_mode="stretch_width"), sizing_mode="stretch_width")
