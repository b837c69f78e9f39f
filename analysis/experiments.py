"""The saliency experiments (fluctuation maps against human fixations), as one library call per
experiment over shared inputs.

`SaliencyExperiment` (a frozen dataclass) describes a run: the data set and image selection, the cube
parameters (one or more rate definition x estimator variants), the fluctuation window L and cut t_b,
the fixation blur, and the paired test's rule. `prepare(config)` loads the images' ground truth,
obtains every cube (computed once, reused from the store) and builds the maps, all at the image's own
resolution; `run_paired`, `run_predictor`, `run_curves` and `run_perceptual` each return a JSON-ready
dict; `run_experiments` runs the chosen ones and writes the report (`analysis.report`).
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter

from cache.params import CubeParams
from workbench.adapters import load_model
from workbench.errors import WorkbenchError
from workbench.pipeline import prepare_image
from workbench.progress import ProgressFn, by_phase, emit, relabel

from .baselines import baseline_maps
from .cubes import cubes_for
from .curvefig import density_on_grid, row_through_peak, salient_mean_curves
from .datasets import SaliencyItem, dataset_images, open_dataset, resize_map, select_images
from .fluctuation import DEFAULT_NORMALISE, DEFAULT_T_B, DEFAULT_WINDOW, fluctuation
from .paired import PairedRule, _sign, paired_test, wilson_interval
from .perceptual import curve_agreement, dino_features, perceptual_states, state_derivative
from .predictor import score_maps, summarise_scores
from .protocol import paper_protocol
from .report import write_report
from .tuning import best, sweep

__all__ = ["SaliencyExperiment", "Prepared", "EXPERIMENTS", "default_store", "prepare", "run_paired",
           "run_predictor", "run_curves", "run_perceptual", "run_tune", "run_protocol", "run_experiments",
           "variant_name"]

EXPERIMENTS = ("paired", "predictor", "curves", "perceptual", "tune", "protocol")


def default_store() -> Path:
    """Where cubes are cached when no store is given: $WORKBENCH_CACHE/cubes (~/.cache/genrate-workbench)."""
    return Path(os.environ.get("WORKBENCH_CACHE", Path.home() / ".cache" / "genrate-workbench")) / "cubes"


@dataclass(frozen=True)
class SaliencyExperiment:
    """One run of the saliency experiments (every field is recorded in the report)."""

    data: str
    images: str = "held-out"  # held-out | dev | dev:N | all | N (first N held-out)
    held_out: int = 50
    store: str | None = None
    model: str | None = None
    device: str = "cpu"
    variants: tuple[tuple[str, str], ...] = (("h", "hutchinson"),)  # (rate definition, estimator)
    K: int = 32
    seed: int = 0
    steps: int = 50
    window: int = DEFAULT_WINDOW
    t_b: float = DEFAULT_T_B
    normalise: bool = DEFAULT_NORMALISE
    sigma: float = 24.0
    map_blur: float = 24.0  # also score the fluctuation map blurred by this sigma (image px); 0 = off
    paired: PairedRule = field(default_factory=PairedRule)
    n_other: int = 10
    curve_images: int = 3
    region_frac: float = 0.1
    perceptual_images: int | None = None
    features: str = "unet"  # unet | pixels | a local DINO folder

    def __post_init__(self):
        if not self.variants:
            raise WorkbenchError("no cube variants: give at least one --rate and --estimator")
        if int(self.window) < 2:
            raise WorkbenchError(f"--window {self.window}: a variance needs L >= 2")


def variant_name(definition: str, estimator: str) -> str:
    return f"fluctuation[{definition},{estimator}]"


@dataclass
class Prepared:
    """Inputs shared by the experiments: items, cubes per variant, maps per name (image resolution)."""

    config: SaliencyExperiment
    items: list[SaliencyItem]
    cubes: dict[str, list]  # variant name -> list of xr.Dataset (one per item)
    maps: dict[str, list[np.ndarray]]  # map name -> one (H0, W0) float32 per item
    grid_maps: dict[str, list[np.ndarray]]  # variant name -> fluctuation on the model grid
    adapter: object = None


def prepare(config: SaliencyExperiment, *, progress: ProgressFn | None = None, adapter=None) -> Prepared:
    """Load the selected images' ground truth, get every cube, build every map."""
    paths = select_images(dataset_images(config.data), config.images, held_out=config.held_out)
    items = open_dataset(config.data, names=[p.name for p in paths], sigma=config.sigma)
    if len(items) != len(paths):
        got = {it.image_path.name for it in items}
        raise WorkbenchError(f"no ground truth for {', '.join(p.name for p in paths if p.name not in got)[:200]}")
    adapter = adapter or load_model(config.model, device=config.device)
    store = Path(config.store) if config.store else default_store()
    cubes, maps, grid = {}, {}, {}
    for definition, estimator in config.variants:
        name = variant_name(definition, estimator)
        params = CubeParams(definition=definition, estimator=estimator, K=config.K, seed=config.seed,
                            steps=config.steps)
        cubes[name] = cubes_for([it.image_path for it in items], adapter, store=store, params=params,
                                progress=by_phase(images=relabel(progress, f"cubes {name}")))
        grid[name] = [fluctuation(ds["rate"].values, ds["timestep"].values, window=config.window, t_b=config.t_b,
                                  axis=0, normalise=config.normalise).astype(np.float32) for ds in cubes[name]]
        maps[name] = [resize_map(g, it.size) for g, it in zip(grid[name], items)]
        if config.map_blur > 0:
            # the map blurred after the fluctuation (as saliency maps usually are) ...
            maps[f"{name}+blur"] = [gaussian_filter(m, config.map_blur, mode="nearest") for m in maps[name]]
            # ... and the fluctuation of curves averaged over a neighbourhood first (the same sigma, in model
            # pixels): per-pixel estimator noise no longer dominates the windowed variance
            smooth = []
            for ds, it in zip(cubes[name], items):
                rate = ds["rate"].values
                sg = config.map_blur * rate.shape[-1] / it.size[1]
                rs = gaussian_filter(rate.astype(np.float64), (0, sg, sg), mode="nearest")
                smooth.append(resize_map(fluctuation(rs, ds["timestep"].values, window=config.window, t_b=config.t_b,
                                                     axis=0, normalise=config.normalise).astype(np.float32), it.size))
            maps[f"{name}/smoothed-curves"] = smooth
        ts = cubes[name][0]["timestep"].values
        maps[f"mean_rate[{definition},{estimator}]"] = [
            resize_map(ds["rate"].values[ts > config.t_b].mean(0), it.size) for ds, it in zip(cubes[name], items)]
    for i, it in enumerate(items):
        for b, m in baseline_maps(it.image_path, it.size, seed=config.seed + i).items():
            maps.setdefault(b, []).append(m)
        emit(progress, "baselines", i + 1, len(items))
    return Prepared(config, items, cubes, maps, grid, adapter)


def run_paired(prep: Prepared) -> dict:
    """The paper's paired test for every map (fluctuation variants, mean rate, baselines)."""
    return paired_test(prep.maps, [it.density for it in prep.items], prep.config.paired,
                       names=[it.name for it in prep.items])


def run_predictor(prep: Prepared, *, progress: ProgressFn | None = None) -> dict:
    """All saliency metrics per image and averaged, for every map."""
    scores = score_maps(prep.maps, prep.items, n_other=prep.config.n_other, seed=prep.config.seed,
                        progress=progress)
    return {"summary": summarise_scores(scores), "per_image": scores, "images": [it.name for it in prep.items],
            "protocol": {"resize": "maps resized to the image's resolution (bilinear, antialiased)",
                         "sAUC_negatives": f"fixations of {prep.config.n_other} other images of the set",
                         "KLD": "saliency shifted to min 0", "AUC_Judd_jitter": "1e-7 uniform, seeded"}}


def run_curves(prep: Prepared) -> dict:
    """Row curves through the density peak for the first `curve_images` images, and every image's mean
    normalised curve of salient vs non-salient model pixels (first variant)."""
    name = next(iter(prep.cubes))
    cubes = prep.cubes[name]
    ts = cubes[0]["timestep"].values
    examples, sal, non = [], [], []
    for i, (ds, it) in enumerate(zip(cubes, prep.items)):
        rate = ds["rate"].values
        dg = density_on_grid(it.density, rate.shape[1:])
        m = salient_mean_curves(rate, dg, frac=prep.config.region_frac)
        sal.append(m["salient"])
        non.append(m["non_salient"])
        if i < prep.config.curve_images:
            r = row_through_peak(rate, dg)
            examples.append({"image": it.name, "axis": r["axis"], "index": r["index"],
                             "curves": r["curves"].round(6).tolist(), "density": r["density"].round(4).tolist()})
    sal, non = np.array(sal), np.array(non)
    return {"variant": name, "timesteps": ts.tolist(), "examples": examples, "frac": prep.config.region_frac,
            "salient_mean": sal.mean(0).tolist(), "salient_sd": sal.std(0).tolist(),
            "non_salient_mean": non.mean(0).tolist(), "non_salient_sd": non.std(0).tolist(), "n": len(sal)}


def run_perceptual(prep: Prepared, *, progress: ProgressFn | None = None) -> dict:
    """The perceptual state s(t) in the salient and non-salient regions, its |ds/dt| as an alternative
    curve, agreement with the rate curve of the same region, and the paired comparison of the two
    curves' fluctuations (salient region vs non-salient region)."""
    cfg = prep.config
    name = next(iter(prep.cubes))
    feats = cfg.features if cfg.features in ("unet", "pixels") else dino_features(cfg.features)
    n = len(prep.items) if cfg.perceptual_images is None else min(cfg.perceptual_images, len(prep.items))
    rows, example = [], None
    for i in range(n):
        it, ds = prep.items[i], prep.cubes[name][i]
        rate = ds["rate"].values
        ts = ds["timestep"].values
        dg = density_on_grid(it.density, rate.shape[1:])
        top = (dg >= np.quantile(dg, 1 - cfg.region_frac)).astype(np.float32)
        bottom = (dg <= np.quantile(dg, cfg.region_frac)).astype(np.float32)
        masks = np.stack([top, bottom])
        traj = prepare_image(prep.adapter, it.image_path, steps=cfg.steps).trajectory
        s = perceptual_states(prep.adapter, traj, masks, features=feats)  # (2, N)
        ds_dt = state_derivative(s, ts)
        ours = np.einsum("nhw,rhw->rn", rate, masks) / masks.reshape(2, -1).sum(1)[:, None]
        keep = ts > cfg.t_b
        agree = [curve_agreement(ds_dt[r, keep], ours[r, keep]) for r in range(2)]
        fl_ours = fluctuation(ours, ts, window=cfg.window, t_b=cfg.t_b, axis=-1, normalise=True)
        fl_perc = fluctuation(ds_dt, ts, window=cfg.window, t_b=cfg.t_b, axis=-1, normalise=True)
        rows.append({"image": it.name, "agreement_salient": agree[0], "agreement_non_salient": agree[1],
                     "fluct_rate": fl_ours.tolist(), "fluct_perceptual": fl_perc.tolist()})
        if example is None:
            example = {"image": it.name, "timesteps": ts.tolist(), "state": s.tolist(), "derivative": ds_dt.tolist(),
                       "rate": ours.tolist()}
        emit(progress, "perceptual", i + 1, n)
    def frac(key):
        w = sum(r[key][0] > r[key][1] for r in rows)
        l = sum(r[key][0] < r[key][1] for r in rows)
        return {"wins": int(w), "n": len(rows), "fraction": w / len(rows), "wilson_95": list(wilson_interval(w, len(rows))),
                "sign_p": _sign(w, l)}

    def mean_of(region, k):
        return float(np.mean([r[f"agreement_{region}"][k] for r in rows]))

    return {"variant": name, "features": cfg.features if cfg.features in ("unet", "pixels") else "dino",
            "region_frac": cfg.region_frac, "per_image": rows, "example": example,
            "salient_region_fluctuates_more": {"rate_curve": frac("fluct_rate"),
                                               "perceptual_curve": frac("fluct_perceptual")},
            "agreement_mean": {reg: {k: mean_of(reg, k) for k in ("pearson", "spearman", "tv")}
                               for reg in ("salient", "non_salient")},
            "note": "curves normalised to sum 1 over t > t_b before the fluctuation; agreement on t > t_b"}


def run_tune(prep: Prepared, *, progress: ProgressFn | None = None) -> dict:
    """Sweep the fluctuation's (L, t_b, normalise) on these images (first variant); best by mean AUC-Judd."""
    name = next(iter(prep.cubes))
    rows = sweep(prep.cubes[name], prep.items, frac=prep.config.paired.frac,
                 progress=progress)
    return {"variant": name, "rows": rows, "best": best(rows), "criterion": "mean AUC_Judd",
            "images": [it.name for it in prep.items]}


def run_protocol(prep: Prepared) -> dict:
    """The paper's Appendix B.1 protocol (`analysis.protocol`: maximal vs minimal ground-truth pixel,
    raw windowed variance) for every cube variant, at the configured L and t_b and a small grid."""
    cfg = prep.config
    windows = tuple(dict.fromkeys((int(cfg.window), 3, 5, 8)))
    t_bs = tuple(dict.fromkeys((float(cfg.t_b), 0.0, 200.0, 400.0)))
    return {name: paper_protocol([(ds["rate"].values, ds["timestep"].values) for ds in cubes],
                                 [it.density for it in prep.items], windows=windows, t_bs=t_bs,
                                 draws=cfg.paired.draws, seed=cfg.paired.seed)
            for name, cubes in prep.cubes.items()}


def run_experiments(config: SaliencyExperiment, which=EXPERIMENTS, *, out: str | Path,
                    progress: ProgressFn | None = None) -> dict:
    """Prepare once, run the chosen experiments, write report.html, figures.json, results.json and PNGs."""
    bad = [w for w in which if w not in EXPERIMENTS]
    if bad:
        raise WorkbenchError(f"unknown experiment {bad[0]!r}: choose from {', '.join(EXPERIMENTS)}")
    prep = prepare(config, progress=progress)
    results = {"config": _config_dict(config), "images": [it.name for it in prep.items],
               "cube_attrs": {k: _attrs(v[0]) for k, v in prep.cubes.items()}}
    if "paired" in which:
        results["paired"] = run_paired(prep)
    if "predictor" in which:
        results["predictor"] = run_predictor(prep, progress=progress)
    if "curves" in which:
        results["curves"] = run_curves(prep)
    if "perceptual" in which:
        results["perceptual"] = run_perceptual(prep, progress=progress)
    if "tune" in which:
        results["tune"] = run_tune(prep, progress=progress)
    if "protocol" in which:
        results["protocol"] = run_protocol(prep)
    write_report(results, prep, out)
    return results


def _attrs(ds) -> dict:
    return {k: (v.tolist() if hasattr(v, "tolist") else v) for k, v in ds.attrs.items()
            if k in ("model_fingerprint", "model_name", "rate_definition", "estimator", "K", "seed", "steps",
                     "channel_rule", "package_version", "schema_version")}


def _config_dict(config: SaliencyExperiment) -> dict:
    d = asdict(config)
    d["variants"] = [list(v) for v in config.variants]
    return d
