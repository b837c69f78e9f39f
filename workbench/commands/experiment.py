"""`workbench experiment paired|predictor|curves|perceptual|saliency --data DIR --out DIR`: the saliency
experiments (fluctuation vs human fixations), each writing report.html + figures.json + results.json."""
from __future__ import annotations

import argparse
import sys

from ..estimators import DEFAULT_K
from .common import add_overwrite_arg, device_from

WHICH = {"paired": ("paired",), "predictor": ("predictor",), "curves": ("curves",), "perceptual": ("perceptual",),
         "saliency": ("paired", "predictor", "curves", "perceptual"), "tune": ("tune",)}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("experiment", help="saliency experiments: fluctuation map vs human fixations",
                       description="Run a saliency experiment on a data set (OSIE, MIT/CAT2000 or a folder of "
                                   "image + map pairs) and write OUT/report.html, figures.json, results.json, "
                                   "tables.md and maps.png. 'saliency' runs all four on one set of cubes.")
    p.add_argument("which", help="experiment(s), comma-separated: paired, predictor, curves, perceptual, saliency "
                                 "(= the four), tune (sweep L and t_b; use with --images dev)")
    p.add_argument("--data", required=True, help="data set folder (OSIE root, CAT2000 root, or image + map pairs)")
    p.add_argument("--out", required=True, help="output folder for the report")
    add_overwrite_arg(p)
    p.add_argument("--store", default=None, help="cube store folder (default $WORKBENCH_CACHE/cubes)")
    p.add_argument("--images", default="held-out",
                   help="held-out (last --held-out by name, default), dev (24 evenly spaced others), dev:N, all, "
                        "or N = first N held-out")
    p.add_argument("--held-out", type=int, default=50, help="size of the held-out split (default 50)")
    p.add_argument("--model", default=None, help="model folder or HF-cache repo id (default: the shipped model)")
    p.add_argument("--device", default=None, help="cpu, cuda ... (default: cuda if available)")
    p.add_argument("--dtype", default="float32", choices=("float32",), help=argparse.SUPPRESS)
    p.add_argument("--steps", type=int, default=50, help="DDIM steps (default 50)")
    p.add_argument("--rate", default="h", help="rate definition(s), comma-separated: h,eps,step,projected")
    p.add_argument("--estimator", default="hutchinson", help="estimator(s), comma-separated: hutchinson,rsvd,rsvd+hutchinson,exact")
    p.add_argument("--K", type=int, default=DEFAULT_K, help=f"Hutchinson probes or rSVD rank (default {DEFAULT_K})")
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
    p.set_defaults(func=run)


def run(args) -> int:
    from analysis.experiments import SaliencyExperiment, run_experiments
    from analysis.fluctuation import DEFAULT_NORMALISE, DEFAULT_T_B, DEFAULT_WINDOW
    from analysis.paired import PairedRule
    from analysis.report import tables_markdown

    from ..errors import WorkbenchError
    from ..rates import RATE_DEFINITIONS

    names = [w.strip() for w in args.which.split(",") if w.strip()]
    bad = [w for w in names if w not in WHICH]
    if bad or not names:
        raise WorkbenchError(f"unknown experiment {bad[0] if bad else args.which!r}: choose from {', '.join(WHICH)}")
    which = tuple(dict.fromkeys(e for w in names for e in WHICH[w]))
    rates = [r.strip() for r in args.rate.split(",") if r.strip()]
    ests = [e.strip() for e in args.estimator.split(",") if e.strip()]
    for r in rates:
        if r not in RATE_DEFINITIONS:
            raise WorkbenchError(f"--rate {r!r}: choose from {', '.join(RATE_DEFINITIONS)}")
    from ..estimators import ESTIMATORS

    for e in ests:
        if e not in ESTIMATORS:
            raise WorkbenchError(f"--estimator {e!r}: choose from {', '.join(ESTIMATORS)}")
    from ..outputs import OutputDir
    from ..validate import check_K, check_steps, check_t_b, check_window

    check_steps(args.steps)
    check_K(args.K)
    window = check_window(DEFAULT_WINDOW if args.window is None else args.window)
    t_b = check_t_b(DEFAULT_T_B if args.t_b is None else args.t_b)
    OutputDir(args.out, "experiment", overwrite=args.overwrite, legacy=lambda p: (p / "results.json").exists())
    device, _ = device_from(args)
    cfg = SaliencyExperiment(
        data=args.data, images=args.images, held_out=args.held_out, store=args.store, model=args.model,
        device=device, variants=tuple((r, e) for r in rates for e in ests), K=args.K, seed=args.seed,
        steps=args.steps, window=window, t_b=t_b, sigma=args.sigma,
        normalise=DEFAULT_NORMALISE if args.normalise is None else args.normalise, map_blur=args.map_blur,
        paired=PairedRule(frac=args.frac, draws=args.draws, seed=args.seed), perceptual_images=args.perceptual_images,
        features=args.features)
    bars = {}

    def progress(stage: str, done: int, total: int) -> None:
        from tqdm import tqdm

        bar = bars.get(stage)
        if bar is None:
            bar = bars[stage] = tqdm(total=total, desc=stage, file=sys.stderr, leave=False, dynamic_ncols=True)
        bar.n = done
        bar.refresh()
        if done >= total:
            bar.close()

    results = run_experiments(cfg, which, out=args.out, progress=progress)
    print(tables_markdown(results))
    print(f"# report: {args.out}/report.html (figures.json, results.json, tables.md, maps.png)", flush=True)
    return 0
