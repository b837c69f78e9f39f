"""`workbench cubes DIR --store PATH`: precompute the curve cubes of many images, resumably."""
from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

from .. import validate
from ..errors import WorkbenchError
from ..estimators import DEFAULT_K, ESTIMATORS
from ..images import check_image_file
from ..outputs import check_writable
from ..progress import by_phase
from ..splits import split_held_out
from .common import add_fixed_point_arg, add_held_out_arg, model_from, add_model_args, batch_bars, check_against_model, device_from


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "cubes", help="precompute curve cubes of a folder or data set into a store (resumable)",
        description="Compute the rate cube (every pixel's generation rate at every DDIM timestep) of each image "
                    "under DIR into the cube store PATH. DIR is a folder of images, an OSIE root (data/stimuli/) or "
                    "a CAT2000/MIT root (Stimuli/<category>/). Cubes already in the store are not recomputed; after "
                    "Ctrl-C or kill -9, rerun the same command to finish the missing ones.")
    p.add_argument("dir", help="image folder, data set root, or one image")
    p.add_argument("--store", required=True, help="cube store folder (created if missing)")
    add_model_args(p)
    p.add_argument("--rate", default="h", choices=("step", "eps", "h", "projected"),
                   help="rate definition (default h, the paper's Eq. 10)")
    p.add_argument("--estimator", default="hutchinson", choices=ESTIMATORS,
                   help="whole-map estimator (default hutchinson)")
    p.add_argument("--K", type=int, default=DEFAULT_K, help="Hutchinson probes / rSVD rank / projected tangent "
                                                            f"dimension (default {DEFAULT_K})")
    p.add_argument("--seed", type=int, default=0, help="probe seed (default 0)")
    p.add_argument("--channel", type=int, default=None, help="one model channel instead of the channel mean")
    add_fixed_point_arg(p)
    p.add_argument("--limit", type=int, default=None, help="only the first N images (sorted by path)")
    p.add_argument("--split", default="all", choices=("all", "held-out", "train"),
                   help="held-out = the last --held-out images by sorted file name (the shipped model never saw "
                        "them), train = all the others; --limit applies after the split (default all)")
    add_held_out_arg(p)
    p.add_argument("--refine-to", type=int, default=None, metavar="K2",
                   help="bring the images' stored Hutchinson cubes (any K below K2) to K2 probes: only the missing "
                        "probes run, merged exactly (as if K2 had run at once); the smaller cubes stay. Resumable "
                        "like every batch; images without a stored cube are computed with K2")
    p.add_argument("--refinable", action="store_true",
                   help="keep the Hutchinson probe statistics (about 9x the bytes of rate + rate_se) so that a "
                        "later --refine-to adds only the missing probes; without them it recomputes all K2 probes "
                        "(the same numbers). Refined cubes keep them")
    p.add_argument("--until-stable", type=float, default=None, metavar="R",
                   help="per image, add Hutchinson probe blocks (K/2 per half) until the split-half stability of its "
                        "fluctuation map (Spearman-Brown) reaches R, e.g. 0.98; prints the K each image needed")
    p.add_argument("--max-K", type=int, default=None, help="probe cap of --until-stable (default 8 x --K)")
    grp = p.add_mutually_exclusive_group()
    grp.add_argument("--scheduler", default=None, help="run on an existing dask.distributed cluster (tcp://HOST:PORT);"
                                                      " its workers must see the store folder")
    grp.add_argument("--local-cluster", type=int, default=None, metavar="N",
                     help="run on a new local dask cluster of N worker processes")
    grp.add_argument("--workers", type=int, default=None, metavar="N",
                     help="processes of one thread each (a local dask cluster; 1 = this process, all threads). "
                          "Default on the CPU with 2+ images to compute and the default prompt: one per core "
                          f"(measured faster on 2 cores, docs/cubes.md); else 1. ${WORKERS_ENV} sets the default")
    p.set_defaults(func=run)


#: overrides the default of --workers (e.g. 1 in a test suite)
WORKERS_ENV = "WORKBENCH_WORKERS"


def default_workers(device: str, todo: int, *, default_prompt: bool = True, cpus: int | None = None,
                    env: dict | None = None) -> int:
    """Processes for `todo` cubes on `device` when --workers is not given: $WORKBENCH_WORKERS if set;
    on the CPU with 2+ cubes to compute and the default conditioning (workers load the model without a
    prompt), one single-threaded process per core (50 images on 2 cores: 2.8x the images per hour of
    one 2-thread process, docs/cubes.md); else 1 (this process)."""
    forced = (os.environ if env is None else env).get(WORKERS_ENV, "")
    if forced:
        if not forced.isdigit() or int(forced) < 1:
            raise WorkbenchError(f"${WORKERS_ENV}={forced!r} is not a number of processes: use 1 or more, or unset it")
        return int(forced)
    if not str(device).startswith("cpu") or todo < 2 or not default_prompt:
        return 1
    return max(1, min(int(cpus or os.cpu_count() or 1), todo))


def run(args) -> int:
    from cache.batch import BatchOptions, build_batch, plan_batch
    from cache.keys import model_identity
    from cache.params import CubeParams
    from cache.sources import find_images
    from cache.store import CubeStore

    if args.local_cluster is not None and args.local_cluster < 1:
        raise WorkbenchError(f"--local-cluster must be at least 1 worker, got {args.local_cluster}")
    if args.workers is not None and args.workers < 1:
        raise WorkbenchError(f"--workers must be at least 1, got {args.workers}")
    params = CubeParams(definition=args.rate, estimator=args.estimator, K=args.K, seed=args.seed, steps=args.steps,
                        channel=args.channel, fixed_point=args.fixed_point)
    _check_flags(args, params)  # every flag that needs no model, before it loads and before anything is written
    if args.refine_to is not None:
        params = replace(params, K=args.refine_to)
    device, dtype = device_from(args)
    source = _select_split(find_images(args.dir), args.split, args.held_out, args.limit)
    for image in source.images:  # headers only: an unreadable file or a decompression bomb stops us now
        check_image_file(image)
    check_writable(Path(args.store).expanduser(), "--store")
    CubeStore.check_path(args.store)  # a file or a foreign folder: refused before any compute
    adapter = model_from(args, device, dtype)
    check_against_model(adapter, steps=params.steps, channel=params.channel,
                        k=params.K if params.definition == "projected" else None)
    print(f"# {source.describe()}", file=sys.stderr)
    store = CubeStore(args.store, refinable=args.refinable)  # created only now: a rejected run leaves no empty store behind
    if args.until_stable is not None:
        return _until_stable(args, store, source.images, adapter, params)
    plan = plan_batch(store, source.images, adapter, params)
    refined = _refine_plan(store, plan, adapter, params) if args.refine_to is not None else None
    if args.local_cluster is None and not args.scheduler:
        default_prompt = not (args.prompt or args.negative_prompt) and args.guidance_scale == 1
        workers = args.workers or default_workers(device, len(plan.todo), default_prompt=default_prompt)
        args.local_cluster = workers if workers > 1 else None
    where = f"dask cluster {args.scheduler}" if args.scheduler else (
        f"local dask cluster of {args.local_cluster} workers" if args.local_cluster else f"this process ({device})")
    print(f"# {len(plan.keys)} images: {plan.cached} already in {store.path}, {len(plan.todo)} to compute on {where}; "
          f"model {adapter.name} ({model_identity(adapter)}), rate {params.definition}, "
          f"{params.estimator} K={params.K}, "
          f"{params.steps} steps", file=sys.stderr)
    bars = batch_bars(len(plan.keys), params.steps)
    t0 = time.perf_counter()
    try:
        options = BatchOptions(scheduler=args.scheduler, local_cluster=args.local_cluster,
                               model=_model_spec(args.model), device=args.device, refine=args.refine_to is not None)
        keys = build_batch(store, source.images, adapter, params, options=options, progress=bars, plan=plan)
    except KeyboardInterrupt:
        print("\n# stopped: cubes finished so far are stored; rerun the same command to compute the rest",
              file=sys.stderr)
        raise
    dt = time.perf_counter() - t0
    if refined is not None:
        print(refined)
    print(f"{len(keys)} cubes in {store.path} ({len(plan.todo)} computed in {dt:.1f} s, {plan.cached} already there)")
    return 0


def _refine_plan(store, plan, adapter, params) -> str:
    """What --refine-to K2 will do, in one line ("refined 2 cubes from K=8", "no cube to refine:
    computed 2 new cubes"); refuses K2 below the probes an image's stored cube already has."""
    from cache.batch import refine_bases
    from cache.keys import cube_key, model_identity

    bases = refine_bases(store, plan, adapter, params)
    rows = store.index()
    k_of = {(str(store.group_path(r["group"])), r["slot"]): int(r["K"]) for r in rows if r.get("K") is not None}
    above = sorted({int(r["K"]) for r in rows if r.get("K") is not None and int(r["K"]) > params.K})
    below = sorted({int(r["K"]) for r in rows if r.get("K") is not None and int(r["K"]) < params.K})
    ident = model_identity(adapter)
    bare = 0  # images with a smaller stored cube that has no probe statistics: recomputed in full
    for i in plan.todo:
        if i in bases:
            continue
        bare += any(cube_key(plan.blobs[i], ident, replace(params, K=k)) in store for k in below)
        for k in above:
            if cube_key(plan.blobs[i], ident, replace(params, K=k)) in store:
                raise WorkbenchError(f"--refine-to {params.K} is below the K={k} probes the store already holds for "
                                     f"{Path(str(plan.images[i])).name}: refinement only adds probes; pass a K2 above "
                                     f"{k}, or --K {params.K} without --refine-to for new cubes with fewer probes")
    fresh = len(plan.todo) - len(bases)
    why = (f" ({bare} stored cubes with fewer probes keep no probe statistics: all {params.K} probes ran; "
           "`workbench cubes --refinable` keeps them)") if bare else ""
    if not bases:
        return f"no cube to refine: computed {fresh} new cubes{why}" if plan.todo else \
            f"no cube to refine: all {len(plan.keys)} images already have K={params.K} cubes"
    ks = sorted({k_of.get(loc, 0) for loc in bases.values()})
    line = f"refined {len(bases)} cubes from K={','.join(str(k) for k in ks)} to K={params.K}"
    return line + (f"; computed {fresh} new cubes{why or ' (no stored cube to refine)'}" if fresh else "")


def _check_flags(args, params) -> None:
    """The flags of `cubes` that need no model (workbench.validate): stability target, probe cap,
    refinement target, scheduler address, memory budget."""
    if args.until_stable is not None:
        validate.check_stability(args.until_stable)
        validate.check_probe_cap(args.max_K, K=params.K)
    elif args.max_K is not None:
        raise WorkbenchError(f"--max-K {args.max_K} caps the probes of --until-stable: pass --until-stable R too, or "
                             "drop --max-K")
    if args.refine_to is not None:
        if args.until_stable is not None:
            raise WorkbenchError("--refine-to and --until-stable both choose the probe count: pass one of them")
        validate.check_refine_to(args.refine_to, estimator=params.estimator, definition=params.definition)
    validate.check_scheduler_address(args.scheduler)
    validate.check_memory_size(getattr(args, "max_memory", None))


def _until_stable(args, store, images, adapter, params) -> int:
    """--until-stable R: one cube per image with the probes its fluctuation map needed
    (cache.build.StopRule.until_stable)."""
    from analysis.fluctuation import DEFAULT_T_B, DEFAULT_WINDOW
    from cache.params import FluctuationParams

    t0 = time.perf_counter()
    rows = store.until_stable(images, adapter, params, args.until_stable,
                              fluct=FluctuationParams(window=DEFAULT_WINDOW, t_b=DEFAULT_T_B),
                              cap=args.max_K,
                              progress=by_phase(block=lambda p: print(f"# {p.name}: K={p.K} stability {p.stability:.4f}",
                                                                      file=sys.stderr)))
    print(f"{'image':<24} {'K':>5} {'stability':>9}  key")
    for r in rows:
        st = "" if r["stability"] is None else f"{float(r['stability']):.4f}"
        print(f"{r['name']:<24} {r['K']:>5} {st:>9}  {r['key']}{'' if r['computed'] else ' (already stored)'}")
    print(f"{len(rows)} cubes in {store.path} ({sum(r['computed'] for r in rows)} computed in "
          f"{time.perf_counter() - t0:.1f} s, stability target {args.until_stable}, L={DEFAULT_WINDOW}, "
          f"t_b={DEFAULT_T_B:g})")
    return 0


def _select_split(source, split: str, held_out: int, limit: int | None):
    """The images of `source` in `split` ("all"; "held-out" and "train": the parts of
    `workbench.splits.split_held_out`), in the source's order, then the first `limit` of them."""
    if limit is not None and limit < 1:
        raise WorkbenchError(f"--limit must be at least 1, got {limit}")
    images = list(source.images)
    train, held = split_held_out(images, held_out)
    if split != "all":
        chosen = set(held if split == "held-out" else train)
        images = [q for q in images if q in chosen]
        if not images:
            raise WorkbenchError(f"--split {split}: no images in that split ({len(source.images)} images, "
                                 f"--held-out {held_out}); lower --held-out or use --split all")
    images = images[:limit] if limit is not None else images
    return replace(source, images=tuple(images), layout=source.layout + (
        f", {split} split" if split != "all" else ""))


def _model_spec(model: str | None) -> str:
    """What cluster workers load: "default", a model folder as an absolute path (workers may run in
    another directory; the fingerprint does not depend on the path), or an HF-cache repo id."""
    if model is None:
        return "default"
    path = Path(model).expanduser()
    return str(path.resolve()) if path.exists() else str(model)
