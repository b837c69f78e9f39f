"""`workbench edit TASK IMAGE --mask MASK [--ref X,Y]`: curve-matching edits (the paper's Algorithm 1).

Writes, into --out: edited.png (at the source image's resolution; a local edit keeps the source
outside its feathered mask), edited_model.png (at the model's image size), original.png, mask_model.png (the mask on the model grid),
region_model.png (the optimised region: the band for blending), curves.html and curves.png (the
region's curve before/after, the reference, the baselines'), comparison.png (original | ours |
baselines), baselines/<name>.png, and metrics.json (written last: its presence marks a complete
result). Ctrl-C stops the optimisation and keeps the best result so far; a second Ctrl-C aborts.
"""
from __future__ import annotations

import argparse
import json
import math
import signal
import sys
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from .. import editing
from ..editing.config import EditConfig
from ..editing.masks import read_mask
from ..editing.report import curves_png, image_grid, mask_overlay
from ..errors import WorkbenchError
from ..images import read_image
from .common import (model_from, add_model_args, add_overwrite_arg, check_against_model, device_from, output_from,
                     parse_xy)

TASK_HELP = {
    "transfer": "semantic transfer: the region takes the look of the --ref pixel",
    "removal": "object removal: the masked object takes the background's curve (--ref X,Y, or the pseudo-curve)",
    "saliency": "saliency decrease (default) or --increase of the masked region",
    "blending": "blend a composite's pasted foreground (mask = foreground) into its background",
}


def register(sub: argparse._SubParsersAction) -> None:
    d = EditConfig()
    p = sub.add_parser("edit", help="curve-matching edits: transfer, removal, saliency, blending",
                       description="Edit IMAGE inside MASK by matching generation curves (Algorithm 1 of "
                                   "arXiv:2406.18588). " + "; ".join(f"{k}: {v}" for k, v in TASK_HELP.items()))
    p.add_argument("task", choices=tuple(TASK_HELP), help="which edit")
    p.add_argument("image", help="PNG/JPEG image")
    p.add_argument("--mask", required=True, help="mask image of the same size as IMAGE, white = region")
    p.add_argument("--ref", default=None, help="reference pixel X,Y in IMAGE's pixels (transfer: required; "
                                               "removal: a background pixel, else the pseudo-curve)")
    p.add_argument("--out", default=None, help="output folder (default edit-<image>-<task>)")
    add_model_args(p)
    p.set_defaults(steps=d.steps)
    g = p.add_argument_group("optimisation (defaults measured, see the README)")
    g.add_argument("--iters", type=int, default=d.n_iter, help=f"Adam iterations (default {d.n_iter})")
    g.add_argument("--lr", type=float, default=d.lr, help=f"Adam learning rate on x_T (default {d.lr})")
    g.add_argument("--refresh-every", type=int, default=d.refresh_every,
                   help=f"k: refresh curves and blend x_T every k iterations (default {d.refresh_every})")
    g.add_argument("--blend-t", type=int, default=d.blend_t,
                   help=f"blend with the original outside the mask at t >= this (default {d.blend_t})")
    g.add_argument("--no-blend", action="store_true", help="no blending: a global edit")
    g.add_argument("--t-b", type=int, default=d.t_b, help=f"use timesteps t > t_b only (default {d.t_b})")
    g.add_argument("--increase", action="store_true", help="saliency: increase instead of decrease")
    g.add_argument("--rate-weight", type=float, default=d.rate_weight, help=f"lambda (default {d.rate_weight})")
    g.add_argument("--feature-weight", type=float, default=d.feature_weight,
                   help=f"feature alignment weight, saliency/blending (default {d.feature_weight})")
    g.add_argument("--erosion", type=int, default=d.erosion,
                   help=f"blending band: mask minus its erosion by this many model pixels (default {d.erosion})")
    g.add_argument("--pixels-per-iter", type=int, default=d.pixels_per_iter,
                   help=f"(pixel, channel) samples per iteration (default {d.pixels_per_iter})")
    g.add_argument("--curve-pixels", type=int, default=d.curve_pixels,
                   help=f"region pixels whose curves are reported (default {d.curve_pixels})")
    g.add_argument("--seed", type=int, default=d.seed, help=f"seed (default {d.seed})")
    g.add_argument("--checkpoint", choices=("auto", "on", "off"), default="auto",
                   help="gradient checkpointing of the chain (auto: on for CUDA)")
    p.add_argument("--no-baselines", action="store_true", help="skip the classical baselines")
    add_overwrite_arg(p)
    p.set_defaults(func=run)


def _config(args):
    return EditConfig(task=args.task, n_iter=args.iters, lr=args.lr, refresh_every=args.refresh_every,
                      blend=not args.no_blend, blend_t=args.blend_t, t_b=args.t_b,
                      direction=-1 if args.increase else 1, rate_weight=args.rate_weight,
                      feature_weight=args.feature_weight, erosion=args.erosion, steps=args.steps, seed=args.seed,
                      pixels_per_iter=args.pixels_per_iter, curve_pixels=args.curve_pixels,
                      checkpoint={"auto": None, "on": True, "off": False}[args.checkpoint])


#: What every edit writes whatever its options (checked before computing).
FIXED_OUTPUTS = ("original.png", "edited.png", "mask_model.png", "region_model.png", "curves.png", "curves.html",
                 "comparison.png", "metrics.json")


def _out_dir(args):
    """The output folder, checked before any compute (workbench.outputs: new, empty, an earlier edit, or
    --overwrite; a user's files are never replaced or deleted)."""
    out = output_from(args, f"edit-{Path(args.image).stem}-{args.task}").folder("edit")
    out.check_names(FIXED_OUTPUTS)
    return out


def run(args) -> int:
    if args.increase and args.task != "saliency":
        raise WorkbenchError("--increase only applies to the saliency task")
    cfg = _config(args)
    pil = read_image(args.image)
    mask = read_mask(args.mask, (pil.height, pil.width))
    ref = parse_xy(args.ref, "--ref") if args.ref else None
    out = _out_dir(args)
    device, dtype = device_from(args)
    adapter = model_from(args, device, dtype)
    check_against_model(adapter, steps=cfg.steps, min_steps=2)

    stop = {"flag": False}

    def on_sigint(signum, frame):
        if stop["flag"]:
            raise KeyboardInterrupt
        stop["flag"] = True
        print("\nworkbench edit: stopping after this iteration, keeping the best result so far "
              "(Ctrl-C again to abort)", file=sys.stderr)

    bar = _bar(cfg.n_iter)
    old = signal.signal(signal.SIGINT, on_sigint)
    try:
        result = editing.run_edit(adapter, pil, mask, cfg, ref_xy=ref, callback=bar, should_stop=lambda: stop["flag"],
                          baselines=not args.no_baselines)
    finally:
        signal.signal(signal.SIGINT, old)
        bar.close()
    _write(out, args, result)
    m = result.metrics
    state = "cancelled" if result.cancelled else "done"
    print(f"# {state}: {result.iterations_done}/{cfg.n_iter} iterations in {result.seconds:.0f} s; "
          f"PSNR outside {m['psnr_outside']:.2f} dB (reconstruction alone {m['psnr_outside_reconstruction']:.2f}), "
          f"change inside {m['change_inside']:.3f}, mean rate t>t_b {m['mean_rate_before']:.4g} -> "
          f"{m['mean_rate_after']:.4g}" + (f", TV to reference {m['tv_before']:.3f} -> {m['tv_after']:.3f}"
                                            if "tv_after" in m else ""))
    print(f"# wrote {out.path}/ (edited.png, curves.html, curves.png, comparison.png, metrics.json)", flush=True)
    return 0


class _bar:
    """tqdm on stderr fed by run_edit's `Progress` events: phase, iterations and the current loss."""

    def __init__(self, total: int):
        self.total, self.t = total, None

    def __call__(self, p) -> None:
        if self.t is None:  # created on the first report, so that input errors print no bar
            self.t = tqdm(total=self.total, desc="edit", file=sys.stderr, dynamic_ncols=True, leave=False)
        self.t.set_description(p.phase)
        self.t.n = p.done
        loss, best = p.loss, p.best_loss
        if loss is not None and not math.isnan(loss):
            self.t.set_postfix(loss=f"{loss:.4g}", best=f"{best:.4g}" if best is not None and math.isfinite(best) else "-")
        self.t.refresh()

    def close(self) -> None:
        if self.t is not None:
            self.t.close()


def _jsonable(v):
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    return v


def _write(out, args, result) -> None:
    """Every file of the result, staged and then renamed together (nothing appears on a failure)."""
    with out.staging() as st:
        _write_files(st, args, result)


def _save_png(st, rel: str, image) -> None:
    st.write(rel, lambda fh: image.save(fh, format="PNG"))


def _write_files(st, args, result) -> None:
    _save_png(st, "original.png", result.original)
    _save_png(st, "edited.png", (result.edited_source or result.edited))  # at the source image's resolution
    _save_png(st, "edited_model.png", result.edited)  # as the model made it, at its image size
    _save_png(st, "mask_model.png", Image.fromarray((result.mask_model * 255).round().astype(np.uint8)))
    _save_png(st, "region_model.png", Image.fromarray((result.region_model * 255).astype(np.uint8)))
    curves = {"before": result.curve_before, "after (ours)": result.curve_after}
    if result.reference_curve is not None:
        curves["reference"] = result.reference_curve
    for name, b in result.baselines.items():
        _save_png(st, f"baselines/{name}.png", b["image"])
        curves[f"after ({name})"] = b["curve_after"]
    title = f"{Path(args.image).name}: {args.task}, region curve"
    _save_png(st, "curves.png", curves_png(result.timesteps, curves, title=title, t_b=result.config["t_b"]))
    st.write_text("curves.html", _curves_html(result.timesteps, curves, title, result.losses))
    size = result.original.size
    region_img = Image.fromarray((result.region_model * 255).astype(np.uint8)).resize(size, Image.Resampling.NEAREST)
    row = [mask_overlay(result.original, np.asarray(region_img) > 127), result.original, result.edited] + \
        [b["image"] for b in result.baselines.values()]
    _save_png(st, "comparison.png", image_grid([row], ["region", "original", "ours"] + list(result.baselines)))
    doc = {"image": str(args.image), "mask": str(args.mask), "task": args.task, "ref": args.ref,
           "model": args.model or "default", "device": args.device, "config": result.config,
           "cancelled": result.cancelled, "iterations_done": result.iterations_done,
           "metrics": {k: _jsonable(v) for k, v in result.metrics.items()},
           "baselines": {n: {k: _jsonable(v) for k, v in b["metrics"].items()} for n, b in result.baselines.items()},
           "timesteps": result.timesteps.tolist(), "curve_before": result.curve_before.tolist(),
           "curve_after": result.curve_after.tolist(),
           "reference_curve": None if result.reference_curve is None else result.reference_curve.tolist(),
           "losses": result.losses}
    st.write_text("metrics.json", json.dumps(doc, indent=1))


def _curves_html(ts, curves: dict, title: str, losses: list[float]) -> str:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, subplot_titles=("region curve", "loss per iteration"))
    for name, c in curves.items():
        fig.add_trace(go.Scatter(x=list(map(int, ts)), y=list(map(float, c)), mode="lines+markers", name=name), 1, 1)
    fig.add_trace(go.Scatter(y=losses, mode="lines", name="loss"), 1, 2)
    fig.update_xaxes(title_text="timestep t", row=1, col=1)
    fig.update_yaxes(title_text="generation rate", row=1, col=1)
    fig.update_xaxes(title_text="iteration", row=1, col=2)
    fig.update_layout(title=title, template="plotly_white")
    return fig.to_html(include_plotlyjs=True, full_html=True)
