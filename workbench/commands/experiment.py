"""`workbench experiment paired|predictor|curves|perceptual|saliency --data DIR --out DIR`: the saliency
experiments (fluctuation vs human fixations), each writing report.html + figures.json + results.json."""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from ..errors import WorkbenchError
from ..estimators import DEFAULT_K, ESTIMATORS
from ..rates import RATE_DEFINITIONS
from ..validate import check_K, check_steps, check_t_b, check_window
from .common import add_held_out_arg, add_overwrite_arg, device_from, output_from, stage_bars

WHICH = {"paired": ("paired",), "predictor": ("predictor",), "curves": ("curves",), "perceptual": ("perceptual",),
         "saliency": ("paired", "predictor", "curves", "perceptual"), "tune": ("tune",),
         "information": ("information",), "protocol": ("protocol",)}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("experiment", help="saliency experiments: fluctuation map vs human fixations",
                       description="Run a saliency experiment on a data set (OSIE, MIT/CAT2000 or a folder of "
                                   "image + map pairs) and write OUT/report.html, figures.json, results.json, "
                                   "tables.md and maps.png. 'saliency' runs all four on one set of cubes.")
    p.add_argument("which", help="experiment(s), comma-separated: paired, predictor, curves, perceptual, saliency "
                                 "(= the four), tune (sweep L and t_b; use with --images dev), protocol (the "
                                 "paper's Appendix B.1: a maximal vs a minimal ground-truth pixel), information "
                                 "(information gain over the centre bias of curve features, per timestep and "
                                 "rate definition, vs low-level features, + the paper's protocol; reads the cubes "
                                 "of --store, computes none)")
    p.add_argument("--data", required=True, help="data set folder (OSIE root, CAT2000 root, or image + map pairs)")
    p.add_argument("--out", required=True, help="output folder for the report")
    add_overwrite_arg(p)
    p.add_argument("--store", default=None, help="cube store folder (default $WORKBENCH_CACHE/cubes)")
    p.add_argument("--images", default="held-out",
                   help="held-out (last --held-out by name, default), dev (24 evenly spaced others), dev:N, all, "
                        "or N = first N held-out")
    add_held_out_arg(p)
    p.add_argument("--model", default=None, help="model folder or HF-cache repo id (default: the shipped model)")
    p.add_argument("--device", default=None, help="cpu, cuda ... (default: cuda if available)")
    p.add_argument("--dtype", default="float32", choices=("float32",), help=argparse.SUPPRESS)
    p.add_argument("--steps", type=int, default=None, help="DDIM steps (default 50; information: any)")
    p.add_argument("--rate", default=None, help="rate definition(s), comma-separated: h,eps,step,projected "
                                                "(default h; information: every definition in the store)")
    p.add_argument("--estimator", default="hutchinson", help="estimator(s), comma-separated: hutchinson,rsvd,rsvd+hutchinson,exact")
    p.add_argument("--K", type=int, default=None, help=f"Hutchinson probes or rSVD rank (default {DEFAULT_K}; "
                                                        "information: any, the largest per image)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--window", type=int, default=None, help="fluctuation window L (default: analysis default)")
    p.add_argument("--t-b", type=float, default=None, help="fluctuation cut t_b (default: analysis default)")
    p.add_argument("--normalise", action=argparse.BooleanOptionalAction, default=None,
                   help="normalise each curve to sum 1 before the fluctuation (default: analysis default)")
    p.add_argument("--sigma", type=float, default=24.0, help="fixation blur in image pixels (default 24)")
    p.add_argument("--map-blur", type=float, default=24.0,
                   help="also score the fluctuation map blurred by this sigma in image px, and the fluctuation of "
                        "curves smoothed by it (default 24; 0 = off)")
    p.add_argument("--frac", type=float, default=0.05, help="paired test: top/bottom density fraction (0.05)")
    p.add_argument("--draws", type=int, default=100, help="paired test: draws per image (default 100)")
    p.add_argument("--perceptual-images", type=int, default=None, help="limit the perceptual experiment to N images")
    p.add_argument("--features", default="unet", help="perceptual features: unet, pixels, or a local DINO folder")
    p.add_argument("--max-train", type=int, default=None,
                   help="information: use at most N training images with cubes (default all)")
    p.add_argument("--boot", type=int, default=10000, help="information: bootstrap resamples over images (10000)")
    p.add_argument("--readout-split", default="auto", choices=("auto", "train", "crossfit"),
                   help="information: fit readouts on the training split (train), or score each fold of the "
                        "held-out images with readouts fitted on the training split + the other folds (crossfit); "
                        "auto = train when >= --min-train training images have cubes (default auto)")
    p.add_argument("--min-train", type=int, default=20, help="information: see --readout-split (default 20)")
    p.add_argument("--low-train", type=int, default=0,
                   help="information: also fit the low-level control on the first N training images (no cubes needed) "
                        "and score it on every held-out image (default 0 = off)")
    p.add_argument("--grid", default="48x64", help="information: analysis grid ROWSxCOLS of equal-area cells over "
                                                   "each image (default 48x64)")
    p.add_argument("--curves", default="rate",
                   help="information: curve kinds whose features are read, comma-separated: rate (the per-step curve), "
                        "accumulated (its running integral over the generation; features '<rate>+accumulated:...'); "
                        "default rate")
    p.set_defaults(func=run)


def run(args) -> int:
    from analysis.experiments import SaliencyExperiment, run_experiments
    from analysis.fluctuation import DEFAULT_NORMALISE, DEFAULT_T_B, DEFAULT_WINDOW
    from analysis.paired import PairedRule
    from analysis.report import tables_markdown

    names = [w.strip() for w in args.which.split(",") if w.strip()]
    bad = [w for w in names if w not in WHICH]
    if bad or not names:
        raise WorkbenchError(f"unknown experiment {bad[0] if bad else args.which!r}: choose from {', '.join(WHICH)}")
    if "information" in names:
        if len(names) > 1:
            raise WorkbenchError("run 'information' on its own: it reads a store and computes no cubes")
        return _run_information(args)
    args.rate = args.rate or "h"
    args.K = DEFAULT_K if args.K is None else args.K
    args.steps = 50 if args.steps is None else args.steps
    which = tuple(dict.fromkeys(e for w in names for e in WHICH[w]))
    rates = [r.strip() for r in args.rate.split(",") if r.strip()]
    ests = [e.strip() for e in args.estimator.split(",") if e.strip()]
    for r in rates:
        if r not in RATE_DEFINITIONS:
            raise WorkbenchError(f"--rate {r!r}: choose from {', '.join(RATE_DEFINITIONS)}")

    for e in ests:
        if e not in ESTIMATORS:
            raise WorkbenchError(f"--estimator {e!r}: choose from {', '.join(ESTIMATORS)}")

    check_steps(args.steps)
    check_K(args.K)
    window = check_window(DEFAULT_WINDOW if args.window is None else args.window)
    t_b = check_t_b(DEFAULT_T_B if args.t_b is None else args.t_b)
    out_dir = output_from(args).folder("experiment")
    device, _ = device_from(args)
    cfg = SaliencyExperiment(
        data=args.data, images=args.images, held_out=args.held_out, store=args.store, model=args.model,
        device=device, variants=tuple((r, e) for r in rates for e in ests), K=args.K, seed=args.seed,
        steps=args.steps, window=window, t_b=t_b, sigma=args.sigma,
        normalise=DEFAULT_NORMALISE if args.normalise is None else args.normalise, map_blur=args.map_blur,
        paired=PairedRule(frac=args.frac, draws=args.draws, seed=args.seed), perceptual_images=args.perceptual_images,
        features=args.features)
    progress = stage_bars()

    results = _staged(out_dir, lambda tmp: run_experiments(cfg, which, out=tmp, progress=progress))
    print(tables_markdown(results))
    print(f"# report: {args.out}/report.html (figures.json, results.json, tables.md, maps.png)", flush=True)
    return 0


def _run_information(args) -> int:
    from analysis.information import InformationExperiment, run_information
    from analysis.inforeport import information_markdown, write_information_report

    if not args.store:
        raise WorkbenchError("information reads cubes from a store: pass --store PATH (computed with workbench cubes)")
    rates = tuple(r.strip() for r in (args.rate or "").split(",") if r.strip())
    for r in rates:
        if r not in RATE_DEFINITIONS:
            raise WorkbenchError(f"--rate {r!r}: choose from {', '.join(RATE_DEFINITIONS)}")
    if args.max_train is not None and args.max_train < 2:
        raise WorkbenchError(f"--max-train {args.max_train}: the readouts need at least 2 training images")
    if args.low_train < 0:
        raise WorkbenchError(f"--low-train {args.low_train}: give a number of training images (0 = off)")
    if args.boot < 100:
        raise WorkbenchError(f"--boot {args.boot}: use at least 100 bootstrap resamples")
    try:
        grid = tuple(int(v) for v in args.grid.lower().split("x"))
        assert len(grid) == 2 and min(grid) >= 2
    except (ValueError, AssertionError):
        raise WorkbenchError(f"--grid {args.grid!r}: write ROWSxCOLS, e.g. 48x64 (each at least 2)") from None
    est = args.estimator if args.estimator and "," not in args.estimator else None
    cfg = InformationExperiment(store=args.store, data=args.data, held_out=args.held_out, rates=rates, K=args.K,
                                steps=args.steps, estimator=est, max_train=args.max_train, n_boot=args.boot,
                                seed=args.seed, split=args.readout_split, min_train=args.min_train, grid=grid,
                                low_train=args.low_train,
                                curves=tuple(c.strip() for c in args.curves.split(",") if c.strip()))
    progress = stage_bars()

    out_dir = output_from(args).folder("experiment")
    res = run_information(cfg, progress=progress)
    _staged(out_dir, lambda tmp: write_information_report(res, tmp))
    report = Path(args.out) / "report.html"
    print(information_markdown(res))
    print(f"# report: {report} (results.json, tables.md, bits_vs_t.png, feature_ranking.png, per_image_scatter.png)",
          flush=True)
    return 0


def _staged(out_dir, produce):
    """Run `produce(folder)` on a fresh temporary folder of ours, then stage every file it wrote into
    `out_dir` and rename them all into place at once (a failure leaves the output folder as it was)."""
    with tempfile.TemporaryDirectory(prefix="workbench-experiment-") as tmp:
        result = produce(Path(tmp))
        with out_dir.staging() as st:
            for f in sorted(Path(tmp).rglob("*")):
                if f.is_file():
                    st.write_bytes(f.relative_to(tmp).as_posix(), f.read_bytes())
    return result
