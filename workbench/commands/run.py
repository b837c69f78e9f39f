"""`workbench run [IMAGES...]`: the main job. Curve cubes of images (the shipped samples by default) into
a cube store, then each image's fluctuation (saliency) map exported and shown beside the image."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from ..default_model import SAMPLES_DIR
from ..errors import WorkbenchError
from ..images import check_image_file, read_image
from ..outputs import check_writable
from .common import (model_from, add_fixed_point_arg, add_model_args, add_overwrite_arg, batch_bars, check_against_model, device_from,
                     output_from)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run", help="main job: cubes of images (default: the shipped samples) + their fluctuation maps",
        description="Compute the curve cube of every image (every pixel's generation rate at every DDIM timestep) "
                    "into a cube store, resumably and cached, then export each image's fluctuation map (PNG at the "
                    "image's resolution + float .npy) and an overview figure (image | overlay | map).")
    p.add_argument("images", nargs="*", help="images or folders (default: the sample images shipped with the package)")
    p.add_argument("--store", default="workbench-store", help="cube store folder (default ./workbench-store)")
    p.add_argument("--out", default="workbench-out", help="output folder for maps and figures (default ./workbench-out)")
    add_model_args(p)
    p.add_argument("--K", type=int, default=None, help="Hutchinson probes (default: the cache's default)")
    add_fixed_point_arg(p)
    p.add_argument("--window", type=int, default=None, help="fluctuation window L (default: the analysis default)")
    p.add_argument("--t-b", type=float, default=None, help="fluctuation cut t_b (default: the analysis default)")
    add_overwrite_arg(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from cache.batch import build_batch, plan_batch
    from cache.params import CubeParams, FluctuationParams
    from cache.sources import find_images
    from cache.store import CubeStore

    from analysis.export import export_maps
    from analysis.fluctuation import DEFAULT_T_B, DEFAULT_WINDOW

    # the flags' form is checked here, before the model loads; against its schedule once it has
    fluct = FluctuationParams(window=DEFAULT_WINDOW if args.window is None else args.window,
                              t_b=DEFAULT_T_B if args.t_b is None else args.t_b)
    window, t_b = fluct.window, fluct.t_b
    params = CubeParams(steps=args.steps, fixed_point=args.fixed_point, **({} if args.K is None else {"K": args.K}))
    device, dtype = device_from(args)
    images = [img for src in (args.images or [SAMPLES_DIR]) for img in find_images(src).images]
    for image in images:  # headers only: an unreadable file or a decompression bomb stops us now
        check_image_file(image)
    out = output_from(args).folder("run")
    out.check_names(["manifest.json"] + [f"{Path(i).stem}-overview.png" for i in images]
                    + [f"fluctuation/{Path(i).stem}.{ext}" for i in images for ext in ("png", "npy")])
    check_writable(Path(args.store).expanduser(), "--store")
    CubeStore.check_path(args.store)  # a file or a foreign folder: refused before any compute
    adapter = model_from(args, device, dtype)
    check_against_model(adapter, steps=params.steps)
    fluct.check_schedule(adapter, params.steps)
    store = CubeStore(args.store)
    print(f"# {len(images)} images -> cube store {store.path}; model {adapter.name} on {device}; rate "
          f"{params.definition}, {params.estimator} K={params.K}, {params.steps} DDIM steps", file=sys.stderr)
    plan = plan_batch(store, images, adapter, params)
    t0 = time.perf_counter()
    keys = build_batch(store, images, adapter, params, progress=batch_bars(len(images), params.steps),
                       plan=plan)  # in this process
    seconds = time.perf_counter() - t0
    cubes = [(Path(img).stem, store.open(key)) for img, key in zip(images, keys)]
    rows = []
    with out.staging() as st:  # maps and figures appear together, or not at all
        export_maps(cubes, st, what="fluctuation", fluct=fluct)
        for name, ds in cubes:
            fmap = np.load(st.staged_path(f"fluctuation/{name}.npy"))  # the exported map: computed once
            y, x = divmod(int(fmap.argmax()), fmap.shape[1])
            figure = _overview(ds, fmap)
            st.write(f"{name}-overview.png", lambda fh, im=figure: im.save(fh, format="PNG", optimize=True))
            rows.append(f"{name:<20} {ds.attrs.get('key', '')[:16]:<18} {f'({x}, {y})':<28} "
                        f"{Path(args.out) / f'{name}-overview.png'}")
    print(f"{'image':<20} {'cube key':<18} {'peak fluctuation at (x, y)':<28} overview")
    print("\n".join(rows))
    print(f"# {len(cubes)} cubes ready ({len(plan.todo)} computed in {seconds:.1f} s, {plan.cached} already in the "
          f"store); maps in {args.out}/fluctuation/ (L={window}, t_b={t_b:g}); "
          f"explore them with: workbench dashboard --store {store.path}", flush=True)
    return 0


def _overview(ds, fmap):
    """image | image with the fluctuation map overlaid | the map alone, as one PNG."""
    from analysis.figures import colorize, map_grid

    H0, W0 = fmap.shape
    try:  # the original, sharper than the model-size copy inside the cube
        source = read_image(ds.attrs.get("source_image", ""))
    except WorkbenchError:
        source = Image.fromarray(ds["image"].values)
    image = np.asarray(source.resize((W0, H0), Image.Resampling.LANCZOS))
    overlay = (0.45 * image + 0.55 * colorize(fmap)).round().astype(np.uint8)
    panel = (240, round(240 * W0 / H0))
    return map_grid([[image, overlay, fmap]], ["image", "overlay", "fluctuation map"], panel=panel)
