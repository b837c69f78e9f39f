"""Saliency: a data set's images, their human fixation maps and fluctuation maps, with metrics.

The images shown are those of the data set (`--dataset`) that have a cube in the store
(matched by file stem). For every such image the fluctuation map (window L, t_b), resized
to the image with `analysis.datasets.resize_map`, is scored against the fixations with
`analysis.metrics.score_all`, beside the baselines of `analysis.baselines`. Scoring runs
off the UI thread once per (L, t_b) and is shared by all sessions; `score()` runs it
synchronously (tests). `export_zip()` returns the shown maps and metrics as a ZIP.
"""
from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import panel as pn
import param
from PIL import Image

from analysis.baselines import baseline_maps
from analysis.datasets import dataset_images, open_dataset, resize_map
from analysis.fluctuation import DEFAULT_NORMALISE, DEFAULT_T_B, DEFAULT_WINDOW, fluctuation_map
from analysis.metrics import METRICS, score_all
from analysis.pixelcurves import fluctuation_name
from analysis.predictor import other_fixations
from workbench.errors import WorkbenchError
from workbench.images import read_image
from workbench.progress import ProgressFn, emit

from . import figures
from .catalog import cube_variant
from .context import AppContext
from .widgets import checkbox
from .jobs import Job, Poller, on_session_end

__all__ = ["SaliencyView", "score_dataset", "LOWER_IS_BETTER", "MAP_NAMES", "METRIC_LABELS", "MAP_LABELS",
           "match_cubes"]

#: the height of each map (px): with the maps two to a row they get at least half the page's width
_MAP_HEIGHT = 470
#: metrics where a smaller value is better
LOWER_IS_BETTER = ("KLD",)
#: the maps compared, fluctuation first
MAP_NAMES = ("fluctuation", "centre_bias", "spectral_residual", "chance")
#: metric names as the saliency field writes them
METRIC_LABELS = {"AUC_Judd": "AUC-Judd", "AUC_Borji": "AUC-Borji", "sAUC": "sAUC", "NSS": "NSS", "CC": "CC",
                 "SIM": "SIM", "KLD": "KLD"}
MAP_LABELS = {"fluctuation": "fluctuation", "centre_bias": "centre bias", "spectral_residual": "spectral residual",
              "chance": "chance"}
_TOOLTIPS = {"AUC-Judd": "AUC-Judd: ROC area, fixated pixels vs all pixels (higher is better)",
             "AUC-Borji": "AUC-Borji: ROC area, fixated pixels vs uniform random pixels (higher is better)",
             "sAUC": "shuffled AUC: negatives are other images' fixations (discounts centre bias)",
             "NSS": "normalised scanpath saliency: mean z-scored map value at fixations",
             "CC": "Pearson correlation with the fixation density", "SIM": "histogram intersection with the density",
             "KLD": "KL divergence of the density from the map (lower is better)", "image": "image name",
             "map": "saliency map", "images": "number of images"}
#: table headers wrap instead of being cut ("AU...")
_TABLE_CSS = (".tabulator .tabulator-col .tabulator-col-title { white-space: normal !important; "
              "overflow-wrap: anywhere; text-overflow: clip !important; } "
              ".tabulator .tabulator-cell { white-space: normal !important; overflow-wrap: anywhere; "
              "text-overflow: clip !important; }")
#: data-set prefixes of sample copies (the shipped `osie-1654.jpg` is OSIE's `1654.jpg`, downscaled)
_PREFIXES = ("osie", "cat2000", "mit1003", "mit300", "mit", "salicon", "figrim")


def match_cubes(stems, cube_names, dataset_name: str = "") -> dict[str, str]:
    """Data-set image stem -> the cube name that stands for it: the same stem, else the stem with a
    data-set prefix (`osie-1654` for OSIE's `1654`; prefixes: the data set's folder name and the known
    data sets'), separated by '-' or '_'. An exact name wins over a prefixed one."""
    names = set(cube_names)
    prefixes = {p for p in (*_PREFIXES, dataset_name.lower()) if p}
    by_stem: dict[str, str] = {}
    for n in sorted(names):
        low = n.lower()
        for pre in prefixes:
            for sep in ("-", "_"):
                if low.startswith(pre + sep) and len(n) > len(pre) + 1:
                    by_stem.setdefault(n[len(pre) + 1:], n)
    out = {}
    for s in stems:
        if s in names:
            out[s] = s
        elif s in by_stem:
            out[s] = by_stem[s]
    return out


def _load_items(context: AppContext, variant: str | None = None) -> tuple[list, dict[str, str], dict[str, int], str]:
    """The data set's items that have a cube of `variant` (`cube_variant`: rate, estimator, K, steps; None:
    the variant most images have) in the store: (items, name -> cube key, variant -> images, the variant)."""
    if context.dataset is None:
        return [], {}, {}, ""
    entries = context.catalog.entries()
    stems = {p.stem for p in dataset_images(context.dataset)}
    matched_all = match_cubes(stems, {str(e["name"]) for e in entries}, Path(context.dataset).name)
    wanted = set(matched_all.values())
    counts = Counter()
    for v, name in {(cube_variant(e), str(e["name"])) for e in entries if str(e["name"]) in wanted}:
        counts[v] += 1
    if not counts:
        return [], {}, {}, ""
    chosen = variant if variant in counts else sorted(counts, key=lambda v: (-counts[v], v))[0]
    by_name: dict[str, str] = {}
    for e in entries:
        if cube_variant(e) == chosen:
            by_name.setdefault(str(e["name"]), e["key"])
    matched = {s: n for s, n in matched_all.items() if n in by_name}
    names = sorted(matched)
    try:
        items = open_dataset(context.dataset, names=names)
    except TypeError:  # a loader without a names filter
        items = open_dataset(context.dataset)
    items = [it for it in items if it.name in matched]
    return items, {it.name: by_name[matched[it.name]] for it in items}, dict(counts), chosen


def _store_stamp(context: AppContext) -> str:
    """A short digest of the store's complete cubes: memoised items and scores follow the store."""
    return hashlib.sha1("\n".join(sorted(context.catalog.keys())).encode()).hexdigest()[:12]


def fluct_at_image(context: AppContext, key: str, size: tuple[int, int], window: int, t_b: float,
                   normalise: bool = DEFAULT_NORMALISE) -> np.ndarray:
    """The cube's fluctuation map resized to the image's own size (H0, W0), float32."""
    ds = context.catalog.open(key)
    f = fluctuation_map(ds["rate"], window=window, t_b=t_b, normalise=normalise)
    return resize_map(np.asarray(f.values, dtype=np.float32), size)


def score_dataset(context: AppContext, window: int, t_b: float, normalise: bool = DEFAULT_NORMALISE, *,
                  variant: str | None = None, progress: ProgressFn | None = None, should_stop=None) -> dict:
    """Metrics of the fluctuation map and the baselines on every image with a cube of `variant`
    (`cube_variant`; None: the variant most images have). `progress`: a `Progress` of phase "metrics"
    (images scored of all) after each image.

    Returns {"rows": [{"name", "key", "map", metric: value, ...}], "metrics": [...], "variant": ...}: one
    row per (image, map). sAUC is the reports' (`analysis.predictor.other_fixations`): negatives are the
    fixations of up to 10 other images, their positions scaled to this image's size, so images of
    different sizes are scored too; a data set of one image has no sAUC (the tables say so).
    """
    items, keys, _counts, chosen = _load_items(context, variant)
    if not items:
        return {"rows": [], "metrics": list(METRICS), "variant": chosen}
    rows = []
    for i, it in enumerate(items):
        if should_stop is not None and should_stop():
            break
        other = other_fixations(items, i) if len(items) > 1 else None
        maps = {"fluctuation": fluct_at_image(context, keys[it.name], it.size, window, t_b, normalise)}
        maps.update(baseline_maps(it.image_path, it.size, names=MAP_NAMES[1:]))
        for mname, m in maps.items():
            try:
                scores = score_all(m, fixations=it.fixations, density=it.density,
                                   other_fixations=other if other is not None and other.any() else None)
            except WorkbenchError as exc:  # e.g. a constant map: shown, not fatal
                scores = {"error": str(exc)}
            rows.append({"name": it.name, "key": keys[it.name], "map": mname, **scores})
        emit(progress, "metrics", i + 1, len(items))
    return {"rows": rows, "metrics": [m for m in METRICS if any(m in r for r in rows)], "variant": chosen}


class SaliencyView(pn.viewable.Viewer):
    """Ground truth beside the fluctuation map, per-image metrics, data-set averages, export."""

    image = param.Selector(default=None, objects=[], doc="name of the shown image")
    variant = param.Selector(default=None, objects=[], doc="which cubes are scored when an image has several "
                                                         "(rate, estimator, K, steps: `cube_variant`)")
    window = param.Integer(default=DEFAULT_WINDOW, bounds=(2, 20), doc="fluctuation window L")
    t_b = param.Number(default=DEFAULT_T_B, bounds=(0, 900), step=10, doc="fluctuation cut-off t_b")
    normalise = param.Boolean(default=DEFAULT_NORMALISE, doc="normalise curves before the fluctuation")
    sort_by = param.Selector(default="NSS", objects={METRIC_LABELS.get(m, m): m for m in METRICS},
                             doc="metric that orders the images")
    opacity = param.Number(default=0.7, bounds=(0, 1), step=0.05, doc="map opacity over the image")

    def __init__(self, context: AppContext, **params):
        super().__init__(**params)
        self.context = context
        self._stamp = _store_stamp(context) if context.dataset is not None else ""
        self.items, self.keys = [], {}
        self.results: dict | None = None
        self.job: Job | None = None
        self._poller = Poller(self.poll, 300, on_gone=self.dispose)
        cfg = {"displaylogo": False}
        def blank():  # no axes without data
            return figures.empty_figure("no image to show yet", height=380)
        self.image_pane = pn.pane.Plotly(blank(), link_figure=False, config=cfg, sizing_mode="stretch_width")
        self.truth_pane = pn.pane.Plotly(blank(), link_figure=False, config=cfg, sizing_mode="stretch_width")
        self.fluct_pane = pn.pane.Plotly(blank(), link_figure=False, config=cfg, sizing_mode="stretch_width")
        # the columns share the table's width and long headers wrap onto a second line, so the whole table
        # fits from 1200 px up without a sideways scroll; no header-click sorting: "Sort images by" is the order
        table_kw = dict(disabled=True, show_index=False, sizing_mode="stretch_width", layout="fit_columns",
                        sortable=False, header_tooltips=_TOOLTIPS, stylesheets=[_TABLE_CSS])
        self.table = pn.widgets.Tabulator(None, selectable=1, max_height=360, pagination=None,
                                          css_classes=["saliency-table"], **table_kw)
        self.table.on_click(self._on_row_click)
        self.averages = pn.widgets.Tabulator(None, css_classes=["saliency-averages"], **table_kw)
        self.refresh_button = pn.widgets.Button(label="Re-read the store", sizing_mode="stretch_width",
                                                css_classes=["saliency-refresh"])
        #: what "Re-read the store" runs: this view's `refresh`; the app makes it refresh every view
        self.refresh_all = self.refresh
        self.refresh_button.on_click(lambda _e: self.refresh_all())
        self.message = pn.pane.Alert("", alert_type="info", visible=False, sizing_mode="stretch_width")
        self.scored = pn.pane.Markdown("", sizing_mode="stretch_width", css_classes=["saliency-scored"])
        self.sauc_note = pn.pane.Markdown("", visible=False, sizing_mode="stretch_width", styles={"font-size": "12px"},
                                          css_classes=["saliency-sauc-note"])
        self.progress = pn.indicators.Progress(value=0, max=100, visible=False, sizing_mode="stretch_width")
        self.download = pn.widgets.FileDownload(callback=self._export_download, filename="maps.zip",
                                                label="Export maps", button_type="primary", disabled=True,
                                                sizing_mode="stretch_width", css_classes=["saliency-export"])
        on_session_end(self.dispose)
        self._load()

    # -- data --------------------------------------------------------------------------------
    def _load(self) -> None:
        if self.context.dataset is None:
            self._say("No saliency data set: start the dashboard with `--dataset DIR` (OSIE, MIT/CAT2000, or a "
                      "folder of NAME.jpg + NAME_map.png pairs) and compute the images' cubes into the store.")
            return
        ctx, items_key = self.context, self._items_key()
        if pn.state.curdoc is not None and items_key not in ctx._memo:
            # served: read the data set and score it off the UI thread, so the page is not held up
            window, t_b, norm, score_key, var = self.window, self.t_b, self.normalise, self._memo_key(), self.variant

            def work(report, stop):
                ctx.memo(items_key, lambda: _load_items(ctx, var))
                return ctx.memo(score_key, lambda: score_dataset(ctx, window, t_b, norm, variant=var,
                                                                 progress=lambda p: report(progress=p),
                                                                 should_stop=stop))

            self._start_job(work, f"reading {ctx.dataset} and scoring its images ...")
            return
        self._set_items()

    def _items_key(self):
        return ("items", str(self.context.dataset), self._stamp, self.variant)

    def refresh(self) -> None:
        """Re-read the store (cubes computed meanwhile, e.g. by `workbench cubes`) and score again."""
        self._stamp = _store_stamp(self.context)
        self._load()

    def _set_items(self) -> None:
        try:
            self.items, self.keys, counts, chosen = self.context.memo(
                self._items_key(), lambda: _load_items(self.context, self.variant))
        except WorkbenchError as exc:
            self._say(str(exc), "danger")
            return
        if not self.items:
            self.param.image.objects = []
            self.image = None
            self.download.disabled, self.download.label = True, "Export maps (no image to export)"
            self._say(f"No image of {self.context.dataset} has a cube in {self.context.catalog.path} yet. Compute "
                      f"them (`workbench cubes {self.context.dataset} --store {self.context.catalog.path}`), then "
                      "press **Re-read the store**.")
            return
        self._set_variants(counts, chosen)
        self.param.image.objects = [it.name for it in self.items]
        if self.image not in self.param.image.objects:
            self.image = self.items[0].name
        else:
            self._update_maps()
        self.download.disabled, self.download.label = False, "Export maps"
        self.score()

    def _set_variants(self, counts: dict[str, int], chosen: str) -> None:
        """Offer every variant of cube in the store (with how many images have one); say which is scored."""
        self._setting_variant = True
        try:
            self.param.variant.objects = {f"{v} ({n} image{'s' if n != 1 else ''})": v
                                          for v, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))}
            self.variant = chosen
        finally:
            self._setting_variant = False
        others = len(counts) - 1
        self.scored.object = (f"**Scored:** the cubes *{chosen}* of {counts.get(chosen, 0)} image"
                              f"{'s' if counts.get(chosen, 0) != 1 else ''}"
                              + (f"; {others} other kind{'s' if others > 1 else ''} of cube in the store (choose "
                                 "under *Cubes scored*)" if others else ""))

    @param.depends("variant", watch=True)
    def _on_variant(self) -> None:
        if getattr(self, "_setting_variant", False) or self.context.dataset is None:
            return
        self.items = []  # re-read the images that have a cube of this kind, then score them
        self._load()

    def _say(self, text: str, kind: str = "info") -> None:
        self.message.object, self.message.alert_type, self.message.visible = text, kind, bool(text)

    def item(self):
        """The SaliencyItem of the shown image (WorkbenchError when none is shown)."""
        for it in self.items:
            if it.name == self.image:
                return it
        raise WorkbenchError("no image is shown: no image of the data set has a cube in the store yet")

    def fluct_map(self) -> np.ndarray:
        """The shown image's fluctuation map at its own size (H0, W0)."""
        it = self.item()
        return fluct_at_image(self.context, self.keys[it.name], it.size, self.window, self.t_b, self.normalise)

    # -- scoring -----------------------------------------------------------------------------
    def _memo_key(self):
        return ("scores", str(self.context.dataset), self._stamp, self.variant, self.window, float(self.t_b),
                bool(self.normalise))

    def score(self, *, background: bool | None = None) -> None:
        """Score all images for the current (L, t_b): memoised; in the background when served."""
        key = self._memo_key()
        if key in self.context._memo:
            self.results = self.context._memo[key]
            self._show_tables()
            return
        ctx, window, t_b, norm, var = self.context, self.window, self.t_b, self.normalise, self.variant
        if background is None:
            background = pn.state.curdoc is not None
        if not background:
            self.results = ctx.memo(key, lambda: score_dataset(ctx, window, t_b, norm, variant=var))
            self._show_tables()
            return
        self._start_job(lambda report, stop: ctx.memo(key, lambda: score_dataset(
                            ctx, window, t_b, norm, variant=var, progress=lambda p: report(progress=p),
                            should_stop=stop)),
                        f"scoring {len(self.items)} images (L={window}, t_b={t_b:g}) ...")

    def _start_job(self, work, text: str) -> None:
        if self.job is not None and not self.job.done:
            self.job.cancel()
        self.job = Job(work, name="scores").start()
        self.progress.value, self.progress.visible = 0, True
        self._say(text)
        self._poller.start()

    def poll(self) -> None:
        """Follow the scoring job; show the tables when it is done."""
        job = self.job
        if job is None:
            return
        now = job.snapshot().get("progress")
        if now is not None and now.total:
            self.progress.value = int(100 * now.done / now.total)
        if not job.done:
            return
        self._poller.stop()
        self.progress.visible = False
        self.job = None
        if job.error:
            self._say(f"scoring failed: {job.error}", "danger")
        elif self._items_key() in self.context._memo:
            # the images and kinds of cube were (re-)read in the background (a new store stamp after *Re-read
            # the store*): take them, not only the scores, so new images and new kinds of cube show
            self._say("")
            self._set_items()
        elif self._memo_key() in self.context._memo:
            self._say("")
            self.results = self.context._memo[self._memo_key()]
            self._show_tables()

    def per_image(self):
        """DataFrame: one row per image, the fluctuation map's metrics, sorted by `sort_by` (best first)."""
        rows = [r for r in (self.results or {}).get("rows", []) if r["map"] == "fluctuation"]
        df = pd.DataFrame(rows).drop(columns=["key", "map"], errors="ignore")
        if df.empty or self.sort_by not in df:
            return df
        cb = pd.DataFrame([r for r in self.results["rows"] if r["map"] == "centre_bias"]).set_index("name")
        if self.sort_by in cb:
            label = METRIC_LABELS.get(self.sort_by, self.sort_by)
            df[f"{label} − centre bias"] = df[self.sort_by].values - cb.loc[df["name"], self.sort_by].values
        return df.sort_values(self.sort_by, ascending=self.sort_by in LOWER_IS_BETTER).reset_index(drop=True)

    def dataset_averages(self):
        """DataFrame: mean of every metric per map (fluctuation and baselines) over the images."""
        df = pd.DataFrame((self.results or {}).get("rows", []))
        if df.empty:
            return df
        metrics = [m for m in METRICS if m in df]
        out = df.groupby("map", sort=False)[metrics].mean()
        out.insert(0, "images", df.groupby("map", sort=False)["name"].nunique())
        return out.reindex([m for m in MAP_NAMES if m in out.index]).reset_index()

    @staticmethod
    def _display(df):
        """A table for people: metric names as the field writes them, map names in words, 3 decimals."""
        out = df.round(3).rename(columns={**METRIC_LABELS, "name": "image"})
        if "map" in out:
            out["map"] = [MAP_LABELS.get(m, m) for m in out["map"]]
        return out

    def _show_tables(self) -> None:
        self.table.value = self._display(self.per_image())
        self.averages.value = self._display(self.dataset_averages())
        rows = (self.results or {}).get("rows", [])
        missing = bool(rows) and not any("sAUC" in r for r in rows)
        self.sauc_note.object = ("*No sAUC: the shuffled AUC takes its negatives from other images' fixations, and "
                                 "only one image has a cube of this kind.*" if missing else "")
        self.sauc_note.visible = missing

    @param.depends("sort_by", watch=True)
    def _on_sort(self) -> None:
        if self.results is not None:
            self.table.value = self._display(self.per_image())

    @param.depends("window", "t_b", "normalise", watch=True)
    def _on_params(self) -> None:
        if not self.items:
            return
        try:
            self._update_maps()
        except WorkbenchError as exc:
            self._say(str(exc), "danger")
            return
        self.score()

    def _on_row_click(self, event) -> None:
        df = self.table.value
        if df is not None and 0 <= event.row < len(df):
            self.image = str(df.iloc[event.row]["image"])

    # -- figures -----------------------------------------------------------------------------
    @param.depends("image", "opacity", watch=True)
    def _update_maps(self) -> None:
        if self.image is None:
            return
        it = self.item()
        H0, W0 = it.size
        rgb = read_image(it.image_path)
        scale = min(1.0, 720 / max(H0, W0))
        rgb = np.asarray(rgb.resize((max(1, round(W0 * scale)), max(1, round(H0 * scale)))))
        ys, xs = np.nonzero(it.fixations)

        def frame(title):  # a new image resets zoom and axes
            return figures.Frame(title=title, height=_MAP_HEIGHT, max_side=300, uirevision=it.name)

        self.image_pane.object = figures.map_figure((H0, W0), image=rgb, frame=frame(f"{it.name} ({W0}×{H0} px)"))
        truth = figures.map_figure((H0, W0), image=rgb, frame=frame(f"Human fixations ({len(xs)})"),
                                   layer=figures.Layer(it.density, name="density", colorscale="Hot",
                                                       opacity=self.opacity, colorbar_title="fixation density"))
        truth.add_scattergl(x=xs, y=ys, mode="markers", name="fixations", hoverinfo="skip",
                            marker=dict(size=6, color="#00e5ff", line=dict(width=1, color="black")))
        self.truth_pane.object = truth
        try:
            fl = self.fluct_map()
        except WorkbenchError as exc:
            self._say(str(exc), "danger")
            return
        norm = ", normalised" if self.normalise else ""
        title = (f"Fluctuation F (L={self.window}, t_b={self.t_b:g}{norm})<br>"
                 f"<span style='font-size:11px'>cube: {self.variant or ''}, key {self.keys[it.name][:8]}</span>")
        self.fluct_pane.object = figures.map_figure(
            (H0, W0), image=rgb, frame=frame(title),
            layer=figures.Layer(fl, name="F", colorscale="Inferno", opacity=self.opacity,
                                colorbar_title=fluctuation_name(self.normalise)))
        self.download.filename = f"{it.name}-maps.zip"

    # -- export ------------------------------------------------------------------------------
    def _export_download(self) -> io.BytesIO:
        """The Export button's file: the ZIP, or (nothing shown) a note that says so, never an exception."""
        try:
            return self.export_zip()
        except WorkbenchError as exc:
            self._say(str(exc), "warning")
            self.download.filename = "nothing-to-export.txt"
            return io.BytesIO(f"{exc}\n".encode())

    def dispose(self) -> None:
        """The session ended (its tab closed): stop its scoring job and polling."""
        if self.job is not None:
            self.job.abort()
        self._poller.stop()

    def export_zip(self) -> io.BytesIO:
        """The shown image's maps: fluctuation (PNG 8-bit + .npy float32 at the image's size), the
        fixation density (PNG), the overlay (PNG) and the image's metrics (JSON). WorkbenchError when
        no image is shown (no image of the data set has a cube)."""
        if self.image is None or not self.items:
            raise WorkbenchError("nothing to export: no image of the data set has a cube in the store yet")
        it = self.item()
        fl = self.fluct_map()
        lo, hi = float(fl.min()), float(fl.max())
        grey = ((fl - lo) / (hi - lo) * 255 if hi > lo else np.zeros_like(fl)).astype(np.uint8)
        rgb = np.asarray(read_image(it.image_path))
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, arr in (("fluctuation.png", grey), ("fixation_density.png", (it.density * 255).astype(np.uint8)),
                              ("overlay.png", figures.overlay_rgb(rgb, fl, opacity=self.opacity,
                                                                  colorscale="Inferno"))):
                b = io.BytesIO()
                Image.fromarray(arr).save(b, format="PNG")
                zf.writestr(f"{it.name}/{name}", b.getvalue())
            b = io.BytesIO()
            np.save(b, fl.astype(np.float32))
            zf.writestr(f"{it.name}/fluctuation.npy", b.getvalue())
            rows = [r for r in (self.results or {}).get("rows", []) if r["name"] == it.name]
            zf.writestr(f"{it.name}/metrics.json", json.dumps({"window": self.window, "t_b": self.t_b, "normalise": self.normalise,
                                                               "cube_key": self.keys[it.name], "rows": rows},
                                                              indent=1, default=float))
        buf.seek(0)
        return buf

    # -- layout ------------------------------------------------------------------------------
    def __panel__(self):
        w = pn.widgets
        side = pn.Column(
            w.Select.from_param(self.param.image, name="Image", sizing_mode="stretch_width"),
            w.Select.from_param(self.param.variant, name="Cubes scored", sizing_mode="stretch_width",
                                css_classes=["saliency-variant"]),
            w.IntSlider.from_param(self.param.window, name="Window L", sizing_mode="stretch_width"),
            w.FloatSlider.from_param(self.param.t_b, name="t_b", sizing_mode="stretch_width"),
            checkbox(self.param.normalise, "Normalise curves (shape only)"),
            w.FloatSlider.from_param(self.param.opacity, name="Map opacity", sizing_mode="stretch_width"),
            w.Select.from_param(self.param.sort_by, name="Sort images by", sizing_mode="stretch_width"),
            self.download, self.refresh_button, self.progress, width=300)
        # the maps wrap: three across on a wide screen, two (then one) on a narrower one, each at least
        # 380 px wide, so a photo is never drawn as a thumbnail beside empty space
        for pane in (self.image_pane, self.truth_pane, self.fluct_pane):
            pane.param.update(min_width=380, max_width=760, sizing_mode="stretch_width", styles={"flex": "1 1 400px"})
        maps = pn.FlexBox(self.image_pane, self.truth_pane, self.fluct_pane, flex_wrap="wrap",
                          sizing_mode="stretch_width", styles={"gap": "4px"})
        tables = pn.Column(pn.pane.Markdown("#### Per image (fluctuation map; click a row)", margin=(0, 10)),
                           self.table, self.sauc_note,
                           pn.pane.Markdown("#### Data-set averages against the baselines", margin=(0, 10)),
                           self.averages, sizing_mode="stretch_width")
        return pn.Row(side, pn.Column(self.message, self.scored, maps, tables, sizing_mode="stretch_width"),
                      sizing_mode="stretch_width")
