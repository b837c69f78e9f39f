"""`workbench export STORE --out DIR`: fluctuation (and rate-at-t) maps as 8-bit PNG and float .npy at
each image's original resolution, named like the input image."""
from __future__ import annotations

import argparse
import sys

from tqdm import tqdm

from .common import add_overwrite_arg, output_from


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export fluctuation / rate-at-t maps of a cube store as PNG + .npy",
                       description="Write OUT/<kind>/<image stem>.png (8-bit, min-max scaled) and .npy (float32) at "
                                   "the image's original resolution for every cube of STORE, plus OUT/manifest.json.")
    p.add_argument("store", help="cube store folder, a folder of .zarr cubes, or one .zarr cube")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--what", default="fluctuation",
                   help="comma-separated: fluctuation (of the per-step curve), fluctuation-accumulated (of the accumulated "
                        "curve), rate@T, accumulated@T (the accumulated curve's map at T) (default fluctuation)")
    p.add_argument("--window", type=int, default=None, help="fluctuation window L (default: analysis default)")
    p.add_argument("--t-b", type=float, default=None, help="fluctuation cut t_b (default: analysis default)")
    p.add_argument("--normalise", action=argparse.BooleanOptionalAction, default=None,
                   help="normalise each curve to sum 1 before the fluctuation (default: analysis default)")
    p.add_argument("--format", default="png,npy",
                   help="comma-separated: png, npy, pysaliency (OUT/pysaliency/<kind>/ maps and <kind>_log_density/ "
                        "densities that pysaliency loads as models; docs/saliency.md) (default png,npy)")
    add_overwrite_arg(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from analysis.export import export_maps
    from analysis.fluctuation import DEFAULT_NORMALISE, DEFAULT_T_B, DEFAULT_WINDOW
    from cache.params import FluctuationParams

    bars = []

    def progress(_p) -> None:  # the bar appears with the first exported cube
        if not bars:
            bars.append(tqdm(desc="export", unit="cube", file=sys.stderr, leave=False, dynamic_ncols=True))
        bars[0].update(1)

    try:
        fluct = FluctuationParams(window=DEFAULT_WINDOW if args.window is None else args.window,
                                  t_b=DEFAULT_T_B if args.t_b is None else args.t_b,
                                  normalise=DEFAULT_NORMALISE if args.normalise is None else args.normalise)
        manifest = export_maps(args.store, output_from(args), what=args.what, fluct=fluct,
                               formats=[f.strip() for f in args.format.split(",") if f.strip()], progress=progress)
    finally:  # an error message then starts on a line of its own
        for b in bars:
            b.close()
    print(f"exported {len(manifest['maps'])} images ({manifest['what']}, L={manifest['window']}, "
          f"t_b={manifest['t_b']:g}) to {args.out}", flush=True)
    return 0
