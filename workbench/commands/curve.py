"""`workbench curve IMAGE --pixel X,Y`: one pixel's generation curve, printed and plotted.

The curve is computed, not estimated (`workbench.curves.pixel_curves`): for the rates h, eps and
step, one JVP of a unit tangent per channel and timestep gives the pixel's Jacobian column norms
exactly (no probes), so its standard error is 0. The projected rate is exact for its rank-k
rSVD basis (fixed seed), which only approximates the k leading singular vectors; that error is
not estimated, so it has no SE. The table and --json carry the SE (`se`, `rate_se`) and say which.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..curves import pixel_curves
from ..images import read_image
from ..pipeline import prepare_image, source_to_model_pixel
from ..validate import check_fixed_point, check_steps
from .common import (model_from, add_fixed_point_arg, add_model_args, add_overwrite_arg, add_rate_args, check_against_model, device_from,
                     output_from, parse_xy, progress_bar, rate_spec_from)

#: First line of every plot `workbench curve` writes: how a rerun knows the file is its own.
PLOT_SIGNATURE = "<!-- written by genrate-workbench curve -->"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("curve", help="generation curve of one pixel of an image",
                       description="Invert IMAGE with DDIM and print the generation rate of one pixel at every timestep.")
    p.add_argument("image", help="PNG/JPEG image")
    p.add_argument("--pixel", required=True, help="X,Y in the original image's pixel coordinates")
    add_model_args(p)
    add_rate_args(p)
    p.add_argument("--plot", default=None, help="plot file (.html; default curve-<image>-x<X>-y<Y>.html)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    add_fixed_point_arg(p)
    add_overwrite_arg(p)
    p.set_defaults(func=run)


def run(args) -> int:
    x, y = parse_xy(args.pixel)
    check_steps(args.steps)
    check_fixed_point(args.fixed_point)
    device, dtype = device_from(args)
    spec = rate_spec_from(args)
    pil = read_image(args.image)
    plot = output_from(args, f"curve-{Path(args.image).stem}-x{x}-y{y}.html", dest="plot",
                       flag="--plot").file("curve", ours=_is_our_plot)
    adapter = model_from(args, device, dtype)
    check_against_model(adapter, steps=args.steps, channel=spec.channel,
                        k=spec.k if spec.definition == "projected" else None)
    my, mx = source_to_model_pixel(adapter, x, y, (pil.height, pil.width))
    prep = prepare_image(adapter, pil, steps=args.steps, progress=progress_bar(args.steps, "invert"),
                         fixed_point=args.fixed_point)
    curve = pixel_curves(adapter, prep.trajectory, [(my, mx)], spec)[0]
    ts = prep.trajectory.schedule.timesteps.tolist()
    values = curve.tolist()
    exact, note = curve_uncertainty(spec)
    se = [0.0] * len(values) if exact else None
    if args.json:
        print(json.dumps({"image": args.image, "pixel": [x, y], "model_pixel": [mx, my], "rate": spec.definition,
                          "channel": spec.channel, "timestep": ts, "curve": values, "rate_se": se,
                          "exact": exact, "se_note": note}))
    else:
        print(f"# {args.image} pixel x={x} y={y} -> model grid ({mx}, {my}); rate={spec.definition}; "
              f"channel={'mean' if spec.channel is None else spec.channel}")
        print(f"# {note}")
        print("timestep\trate\tse")
        for i, (t, r) in enumerate(zip(ts, values)):
            print(f"{t}\t{r:.6g}\t{'nan' if se is None else f'{se[i]:.6g}'}")
    kind = "exact" if exact else f"projected on a rank-{spec.k} rSVD basis, no SE"
    html = _plot_html(ts, values, f"{Path(args.image).name} pixel ({x}, {y}), rate {spec.definition} ({kind})")
    written = plot.write_bytes(html.encode("utf-8"))
    print(f"# plot: {args.plot or written.name}", flush=True)
    return 0


def curve_uncertainty(spec) -> tuple[bool, str]:
    """(exact, note) for a curve of `spec` (a workbench.rates.RateSpec) from `pixel_curves`: exact
    (SE 0) for h, eps and step; for projected, exact only for its rSVD basis (no SE)."""
    if spec.definition == "projected":
        return False, (f"projected rate: exact for its rank-{spec.k} rSVD basis (seed 0, {spec.iters} power "
                       "iterations), which approximates the k leading singular vectors; that error is not "
                       "estimated, so there is no SE (se = nan)")
    return True, ("exact: one JVP per channel and timestep (Jacobian column norms, no probes), no estimator "
                  "error: se = 0")


def _is_our_plot(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(len(PLOT_SIGNATURE)).decode("utf-8", "replace") == PLOT_SIGNATURE


def _plot_html(ts: list[int], values: list[float], title: str) -> str:
    import plotly.graph_objects as go

    fig = go.Figure(go.Scatter(x=ts, y=values, mode="lines+markers"))
    fig.update_layout(title=title, xaxis_title="timestep t", yaxis_title="generation rate", template="plotly_white")
    return PLOT_SIGNATURE + "\n" + fig.to_html(include_plotlyjs=True, full_html=True)
