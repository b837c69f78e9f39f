"""`workbench experiment information`: information gain over the centre bias, in bits per fixation,
of generation-curve features (per rate definition, per timestep, per feature) and of low-level image
features, on a data set's held-out images, from the cubes of a store (nothing is computed but the
features: the run is reproducible from the store).

Splits. The held-out split is the last `held_out` images by sorted file name (the shipped model never
saw them); every other image is training. Fits (the centre-bias density, every readout and map
density) see training images only; every figure is on held-out images that have the cubes needed.

Reported (results.json, report.html, PNG figures):
  centre_bias       the baseline density (its log-likelihood over uniform), 0 bits by definition
  single            each feature alone + the centre bias (a readout, `analysis.readout`)
  per_timestep      the log rate map at each timestep alone: bits vs t, per rate definition
  families          low-level features, curve features (per rate), per-timestep maps (per rate),
                    curves + low-level, all rates' curves + low-level
  key               per-image IG of (curves + low-level) minus IG of low-level alone (paired bootstrap)
  map_density       maps turned into densities (`analysis.density.MapDensity`)
  protocol          the paper's Appendix B.1 protocol (`analysis.protocol`)
"""
from __future__ import annotations

import os
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from cache.store import STORE_FILE, CubeStore
from workbench.curve_kinds import CURVE_KINDS
from workbench.errors import WorkbenchError
from workbench.progress import ProgressFn, emit
from workbench.splits import DEFAULT_HELD_OUT, split_held_out

from .datasets import dataset_images, open_dataset
from .density import GRID, fit_centre_bias, fit_map_density, fixation_counts, map_log_density, to_grid
from .features import curve_features, timestep_maps
from .infogain import log_likelihoods, paired_difference, summarise
from .lowlevel import LOWLEVEL_NAMES, lowlevel_features
from .protocol import paper_protocol
from .readout import fit_readout, readout_log_density

__all__ = ["InformationExperiment", "store_cubes", "run_information", "LOW"]

LOW = "low"


@dataclass(frozen=True)
class InformationExperiment:
    """One run (every field is recorded in results.json)."""

    store: str
    data: str
    held_out: int = DEFAULT_HELD_OUT
    rates: tuple[str, ...] = ()  # rate definitions to use; () = every definition in the store
    K: int | None = None  # only cubes with this K / steps / estimator (None: any; the largest K wins)
    steps: int | None = None
    estimator: str | None = None
    max_train: int | None = None  # at most this many training images with cubes (None: all)
    grid: tuple[int, int] = GRID
    folds: int = 3
    n_boot: int = 10000
    seed: int = 0
    protocol_windows: tuple[int, ...] = (3, 5, 8)
    protocol_t_bs: tuple[float, ...] = (0, 200, 400)
    protocol_draws: int = 100
    map_density_features: tuple[str, ...] = field(default=("fluct_L3", "log_mean"))
    split: str = "auto"  # train | crossfit | auto (crossfit when fewer than min_train training images have cubes)
    cb_train: int = 200  # the centre bias is fitted on the first N training images' fixations (0 = all)
    low_train: int = 0  # also fit the low-level readout on this many training images (no cubes needed) and score it
    #                     on every held-out image: the control at full size (0 = off)
    min_train: int = 20
    #: curve kinds whose features are read: "rate" (the per-step curve) and/or "accumulated" (its running
    #: integral, workbench.curve_kinds); the accumulated curve's features are named "<rate>+accumulated:<feature>"
    #: and get their own families ("curves[h+accumulated]", ...) beside the per-step curve's
    curves: tuple[str, ...] = ("rate",)

    def __post_init__(self):
        if self.held_out < 1:
            raise WorkbenchError(f"--held-out must be at least 1, got {self.held_out}")
        if self.split not in ("train", "crossfit", "auto"):
            raise WorkbenchError(f"--split {self.split!r}: choose train, crossfit or auto")
        if not self.curves or any(c not in CURVE_KINDS for c in self.curves):
            raise WorkbenchError(f"--curves {','.join(self.curves)}: choose {' and/or '.join(CURVE_KINDS)}")


def store_cubes(store: str | Path, *, rates=(), K: int | None = None, steps: int | None = None,
                estimator: str | None = None) -> dict[str, dict[str, str]]:
    """rate definition -> {image stem -> cube key} for the complete cubes of a store that match. Per
    definition, one parameter set (estimator, K, steps, seed, channel) is used: the one with the most
    images (ties: the largest K, then steps), so that every image's features share their timesteps."""
    path = Path(store)
    if not (path / STORE_FILE).exists():
        raise WorkbenchError(f"{path} is not a cube store: compute cubes first (workbench cubes DIR --store {path})")
    rows = [r for r in CubeStore(path, create=False).index()
            if not ((rates and r.get("rate_definition") not in rates) or (K is not None and r.get("K") != K) or
                    (steps is not None and r.get("steps") != steps) or
                    (estimator is not None and r.get("estimator") != estimator))]
    if not rows:
        raise WorkbenchError(f"{path} holds no complete cubes matching rate={list(rates) or 'any'}, K={K}, "
                             f"steps={steps}, estimator={estimator}")

    def params(r):
        return (r.get("estimator"), int(r.get("K") or 0), int(r.get("steps") or 0), r.get("seed"),
                r.get("channel_rule"), r.get("model_fingerprint"))

    out = {}
    for d in sorted({r["rate_definition"] for r in rows}):
        mine = [r for r in rows if r["rate_definition"] == d]
        count = Counter(params(r) for r in mine)
        best = max(count, key=lambda p: (count[p], p[1], p[2]))
        out[d] = {}
        for r in mine:
            if params(r) == best:
                out[d][r["name"]] = r["key"]
                src = Path(str(r.get("source_image") or ""))
                if str(src) and src.is_file():
                    out[d][str(src.resolve())] = r["key"]
    return out


def _match(cubes: dict[str, str], paths: list[Path]) -> dict[Path, str]:
    """Data-set image -> cube key: by the cube's source file (resolved), else by file stem where the stem
    is unique in the data set (CAT2000 repeats file names across categories)."""
    stems = {}
    for p in paths:
        stems[p.stem] = stems.get(p.stem, 0) + 1
    out = {}
    for p in paths:
        key = cubes.get(str(p.resolve())) or (cubes.get(p.stem) if stems[p.stem] == 1 else None)
        if key:
            out[p] = key
    return out


def _stream(rate: str, curve: str) -> str:
    """The feature-name prefix of a rate definition's curve kind: 'h' (per-step), 'h+accumulated'."""
    return rate if curve == "rate" else f"{rate}+{curve}"


def _image_features(store, keys: dict[str, str], item, grid, curves=("rate",)) -> dict[str, np.ndarray]:
    """Every feature of one image on the grid: '<rate>:<curve feature>', '<rate>+accumulated:<curve
    feature>' (curves), '<rate>:t=<t>', 'low:<name>'."""
    feats = {}
    for d, key in keys.items():
        ds = store.open(key)
        rate, ts = ds["rate"].values, ds["timestep"].values
        for kind in curves:
            for n, m in curve_features(rate, ts, curve=kind).items():
                feats[f"{_stream(d, kind)}:{n}"] = to_grid(m, grid).astype(np.float32)
        maps, ts = timestep_maps(rate, ts)
        for t, m in zip(ts, maps):
            feats[f"{d}:t={int(t)}"] = to_grid(m, grid).astype(np.float32)
    for n, m in lowlevel_features(item.image_path).items():
        feats[f"{LOW}:{n}"] = to_grid(m, grid).astype(np.float32)
    return feats


def _evaluate(readout, feats, counts, log_cbs) -> np.ndarray:
    """Per-image IG (bits/fixation) of a fitted readout over the centre bias."""
    lp = [readout_log_density(readout, f, q) for f, q in zip(feats, log_cbs)]
    return log_likelihoods(lp, counts) - log_likelihoods(log_cbs, counts)


def _readout_entry(names, tr, te, ctx, *, lams=None, sigmas=None) -> dict:
    """Fit a readout of `names` and score it on the held-out indices `te` (per-image IG summary).

    split "train": fitted on the training indices `tr` only. split "crossfit": the held-out images are
    cut into `folds` folds; each fold is scored by a readout fitted on `tr` plus the other folds, so
    that no image is ever scored by a readout that saw it."""
    cfg = ctx["cfg"]
    kw = {"folds": cfg.folds, "seed": cfg.seed}
    if lams is not None:
        kw["lams"] = lams
    if sigmas is not None:
        kw["sigmas"] = sigmas
    F, N, Q = ctx["feats"], ctx["counts"], ctx["log_cb"]

    def fit(idx):
        return fit_readout([F[i] for i in idx], [N[i] for i in idx], [Q[i] for i in idx], names, **kw)

    if ctx["split"] == "train":
        fits = [(fit(tr), list(te))]
    else:
        k = min(cfg.folds, len(te))
        parts = [list(te[f::k]) for f in range(k)]
        fits = [(fit(list(tr) + [i for g, q in enumerate(parts) if g != f for i in q]), parts[f]) for f in range(k)]
    ig = np.empty(len(te))
    pos = {i: j for j, i in enumerate(te)}
    for ro, idx in fits:
        ig[[pos[i] for i in idx]] = _evaluate(ro, [F[i] for i in idx], [N[i] for i in idx], [Q[i] for i in idx])
    ro = fits[0][0]
    out = summarise(ig, n_boot=cfg.n_boot, seed=cfg.seed)
    out.update(n_train=len(tr), n_test=len(te), split=ctx["split"], features=list(names), sigma=ro.sigma,
               lam=ro.lam, beta=ro.beta, theta=ro.theta.round(5).tolist(), cv_train_ll=ro.cv_ll)
    return out


def run_information(cfg: InformationExperiment, *, progress: ProgressFn | None = None) -> dict:
    """Run the whole analysis; returns the JSON-ready results (see the module docstring)."""
    t0 = time.perf_counter()
    load0 = os.getloadavg()
    cubes = store_cubes(cfg.store, rates=cfg.rates, K=cfg.K, steps=cfg.steps, estimator=cfg.estimator)
    rates = [r for r in (cfg.rates or sorted(cubes, key=lambda d: (d != "h", d))) if r in cubes]
    if not rates:
        raise WorkbenchError(f"the store has no cubes of rate {', '.join(cfg.rates)}: compute them first")
    train_paths, test_paths = split_held_out(dataset_images(cfg.data), cfg.held_out, need_train=True)
    cubes = {r: _match(cubes[r], train_paths + test_paths) for r in rates}
    rates = [r for r in rates if cubes[r]]
    if not rates:
        raise WorkbenchError(f"no cube of {cfg.store} belongs to an image of {cfg.data}: compute them "
                             f"(workbench cubes {cfg.data} --store {cfg.store})")
    primary = rates[0]
    have = lambda p, rs: all(p in cubes[r] for r in rs)  # noqa: E731
    train_c = [p for p in train_paths if have(p, [primary])]
    if cfg.max_train is not None:
        train_c = train_c[:cfg.max_train]
    test_c = [p for p in test_paths if have(p, [primary])]
    split = cfg.split if cfg.split != "auto" else ("train" if len(train_c) >= cfg.min_train else "crossfit")
    if (split == "train" and len(train_c) < 2) or not test_c or (split == "crossfit" and len(train_c) + len(test_c) < 4):
        raise WorkbenchError(f"rate {primary}: {len(train_c)} training and {len(test_c)} held-out images have cubes "
                             f"in the store; readouts fitted on the training split need >= 2 training and >= 1 "
                             f"held-out image with cubes, cross-fitted ones >= 4 images in all ({split} asked; "
                             "compute more: workbench cubes DIR --split train|held-out)")
    emit(progress, "ground truth", 0, 1)
    cb_paths = train_paths[:cfg.cb_train] if cfg.cb_train > 0 else train_paths
    wanted = {p.name for p in cb_paths + train_c + test_paths + train_paths[:cfg.low_train]}
    items = {it.image_path.resolve(): it for it in open_dataset(cfg.data, names=sorted(wanted))}
    emit(progress, "ground truth", 1, 1)
    grid = tuple(cfg.grid)
    cb_train = [items[p.resolve()] for p in cb_paths if p.resolve() in items]
    centre = fit_centre_bias([fixation_counts(it.fixations, grid) for it in cb_train])
    log_q = centre.log_density(grid)
    store = CubeStore(cfg.store, create=False)
    used = train_c + test_c
    feats, counts = [], []
    for k, p in enumerate(used):
        it = items.get(p.resolve())
        if it is None:
            raise WorkbenchError(f"no ground truth for {p.name} in {cfg.data}")
        feats.append(_image_features(store, {r: cubes[r][p] for r in rates if p in cubes[r]}, it, grid, cfg.curves))
        counts.append(fixation_counts(it.fixations, grid))
        emit(progress, "features", k + 1, len(used))
    ctx = {"cfg": cfg, "feats": feats, "counts": counts, "log_cb": [log_q] * len(used), "split": split}
    idx_tr_all, idx_te_all = list(range(len(train_c))), list(range(len(train_c), len(used)))

    def split_for(names):
        ok = [i for i in range(len(used)) if all(n in feats[i] for n in names)]
        return [i for i in idx_tr_all if i in ok], [i for i in idx_te_all if i in ok]

    te_counts = [counts[i] for i in idx_te_all]
    allkeys = list(dict.fromkeys(k for f in feats for k in f))
    results = {"config": _config_dict(cfg), "rates": rates, "grid": list(grid), "split": split,
               "images": {"train": [_label(p, cfg.data) for p in train_c],
                          "held_out": [_label(p, cfg.data) for p in test_c]},
               "cube_params": {r: _cube_params(store, next(iter(cubes[r].values()))) for r in rates},
               "centre_bias": {"bandwidth": centre.bandwidth, "eps": centre.eps, "n_train_images": len(cb_train),
                               "ll_over_uniform": summarise(log_likelihoods([log_q] * len(te_counts), te_counts),
                                                            n_boot=cfg.n_boot, seed=cfg.seed)}}
    streams = [_stream(r, c) for r in rates for c in cfg.curves]  # one family of curve features per rate and kind
    # single features
    singles = [f"{LOW}:{n}" for n in LOWLEVEL_NAMES]
    for r in streams:
        singles += [k for k in allkeys if k.startswith(f"{r}:") and ":t=" not in k]
    results["single"] = {}
    for j, name in enumerate(singles):
        tr, te = split_for([name])
        if _enough(tr, te, split):
            results["single"][name] = _readout_entry([name], tr, te, ctx, lams=(1e-4,))
        emit(progress, "single features", j + 1, len(singles))
    # bits vs t
    results["per_timestep"] = {}
    for r in rates:
        tnames = [k for k in allkeys if k.startswith(f"{r}:t=")]
        rows = []
        for j, name in enumerate(tnames):
            tr, te = split_for([name])
            if _enough(tr, te, split):
                e = _readout_entry([name], tr, te, ctx, lams=(1e-4,))
                rows.append({"t": int(name.split("=")[1]), "mean": e["mean"], "ci95": e["ci95"], "sigma": e["sigma"],
                             "n_train": e["n_train"], "n_test": e["n_test"]})
            emit(progress, f"bits vs t [{r}]", j + 1, len(tnames))
        results["per_timestep"][r] = rows
    # families
    fams = {"lowlevel": [f"{LOW}:{n}" for n in LOWLEVEL_NAMES]}
    for r in streams:
        curve = [k for k in allkeys if k.startswith(f"{r}:") and ":t=" not in k]
        fams[f"curves[{r}]"] = curve
        if r in rates:
            fams[f"timesteps[{r}]"] = [k for k in allkeys if k.startswith(f"{r}:t=")]
        fams[f"curves[{r}]+lowlevel"] = curve + fams["lowlevel"]
    if len(rates) > 1:
        fams["curves[" + ",".join(rates) + "]+lowlevel"] = [k for r in rates for k in fams[f"curves[{r}]"]] + \
            fams["lowlevel"]
    results["families"] = {}
    for j, (fam, names) in enumerate(fams.items()):
        tr, te = split_for(names)
        if _enough(tr, te, split):
            results["families"][fam] = _readout_entry(names, tr, te, ctx)
        emit(progress, "feature families", j + 1, len(fams))
    if cfg.low_train > 0:  # the control without the cube restriction: all held-out images
        lo_paths = [p for p in train_paths[:cfg.low_train] + test_paths if p.resolve() in items]
        lf, lc = [], []
        for k, p in enumerate(lo_paths):
            it = items[p.resolve()]
            lf.append({f"{LOW}:{n}": to_grid(m, grid) for n, m in lowlevel_features(it.image_path).items()})
            lc.append(fixation_counts(it.fixations, grid))
            emit(progress, "low-level features (all images)", k + 1, len(lo_paths))
        n_tr = sum(1 for p in lo_paths if p in train_paths)
        ctx_low = {"cfg": cfg, "feats": lf, "counts": lc, "log_cb": [log_q] * len(lf), "split": "train"}
        if n_tr >= 2 and len(lo_paths) > n_tr:
            results["families"]["lowlevel (all held-out images)"] = _readout_entry(
                fams["lowlevel"], list(range(n_tr)), list(range(n_tr, len(lo_paths))), ctx_low)
            all_te = lc[n_tr:]
            results["centre_bias"]["ll_over_uniform_all_held_out"] = summarise(
                log_likelihoods([log_q] * len(all_te), all_te), n_boot=cfg.n_boot, seed=cfg.seed)
    # the key number: curves + low-level over low-level alone, on the same held-out images
    results["key"] = {}
    for r in streams:
        a, b = results["families"].get(f"curves[{r}]+lowlevel"), results["families"].get("lowlevel")
        if a and b:
            tr, te = split_for(fams[f"curves[{r}]+lowlevel"])
            low = _readout_entry(fams["lowlevel"], tr, te, ctx)
            results["key"][r] = {"n_train": len(tr), "n_test": len(te),
                                 "ig_curves_plus_lowlevel": a["mean"], "ig_lowlevel": low["mean"],
                                 "difference": paired_difference(a["per_image"], low["per_image"], n_boot=cfg.n_boot,
                                                                 seed=cfg.seed)}
    # maps as densities (item 1)
    results["map_density"] = {}
    mnames = [f"{r}:{f}" for r in streams for f in cfg.map_density_features] + [f"{LOW}:spectral_residual"]
    for name in mnames:
        tr, te = split_for([name])
        if not _enough(tr, te, split):
            continue
        k = 1 if split == "train" else min(cfg.folds, len(te))
        parts = [te[f::k] for f in range(k)]
        ig = np.empty(len(te))
        pos = {i: j for j, i in enumerate(te)}
        mds = []
        for f in range(k):
            fit_idx = tr if split == "train" else tr + [i for g, q in enumerate(parts) if g != f for i in q]
            md = fit_map_density([feats[i][name] for i in fit_idx], [counts[i] for i in fit_idx],
                                 [log_q] * len(fit_idx))
            mds.append(md)
            lp = [map_log_density(feats[i][name], md, log_q) for i in parts[f]]
            tc = [counts[i] for i in parts[f]]
            ig[[pos[i] for i in parts[f]]] = log_likelihoods(lp, tc) - log_likelihoods([log_q] * len(tc), tc)
        results["map_density"][name] = summarise(ig, n_boot=cfg.n_boot, seed=cfg.seed) | asdict(mds[0]) | {
            "n_train": len(tr), "n_test": len(te), "split": split}
    # the paper's protocol, on the held-out images
    results["protocol"] = {}
    for r in rates:
        ims = [p for p in test_paths if p in cubes[r]]
        if not ims:
            continue
        cs = []
        for p in ims:
            ds = store.open(cubes[r][p])
            cs.append((ds["rate"].values, ds["timestep"].values))
        results["protocol"][r] = paper_protocol(cs, [items[p.resolve()].density for p in ims], windows=cfg.protocol_windows,
                                                t_bs=cfg.protocol_t_bs, draws=cfg.protocol_draws, seed=cfg.seed)
        results["protocol"][r]["images"] = [_label(p, cfg.data) for p in ims]
    results["run"] = {"seconds": time.perf_counter() - t0, "load_average_start": list(load0),
                      "load_average_end": list(os.getloadavg())}
    return results


def _label(p: Path, root) -> str:
    """An image's name in the results: its path under Stimuli/ (CAT2000: category/stem), else its stem."""
    parts = p.parts
    if "Stimuli" in parts:
        return Path(*parts[parts.index("Stimuli") + 1:]).with_suffix("").as_posix()
    return p.stem


def _enough(tr, te, split: str) -> bool:
    return bool(te) and (len(tr) >= 2 if split == "train" else len(tr) + len(te) >= 4)


def _cube_params(store, key: str) -> dict:
    a = store.open(key).attrs
    return {k: (a[k].tolist() if hasattr(a[k], "tolist") else a[k]) for k in
            ("model_name", "model_fingerprint", "rate_definition", "estimator", "K", "seed", "steps", "channel_rule")
            if k in a}


def _config_dict(cfg: InformationExperiment) -> dict:
    d = asdict(cfg)
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}
