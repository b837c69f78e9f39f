"""Resumable batch precompute of many cubes into a `CubeStore`, locally or on a dask.distributed cluster.

A batch is one multi-image group `b-<hash of its keys>` (cache.slots) with a preallocated slot per
image not yet in the store. Each slot is computed and written independently (on a cluster: one
task per image; the rate chunks of one slot belong to that slot only, so no two tasks write one
chunk); its done flag is set last. Rerunning the same batch finds the same group and recomputes
exactly the slots whose flag is unset, so a batch survives Ctrl-C and kill -9. Cluster workers
must see the store's folder (a shared file system); images travel to them as bytes.
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import io
import logging
from dataclasses import dataclass
from pathlib import Path
import numpy as np
import torch
from PIL import Image

from workbench.adapters import load_model
from workbench.ddim import make_schedule
from workbench.errors import WorkbenchError
from workbench.images import check_pixels
from workbench.progress import ProgressFn, emit

from . import compact, schema, slots
from .build import compute_cube
from .keys import cube_key, image_bytes, model_attrs, model_identity, same_model
from .params import CubeParams

__all__ = ["BatchPlan", "BatchOptions", "SlotJob", "plan_batch", "build_batch", "compute_slot", "refine_bases"]


@dataclass(frozen=True)
class BatchOptions:
    """How a batch runs: `scheduler` = "tcp://HOST:PORT" runs one task per image on that
    dask.distributed cluster, `local_cluster` = N on a new local cluster of N worker processes
    (neither: in this process); cluster workers load the model from `model` (a path or "default";
    None ships the adapter to them) on `device`. `refine`: start from the store's cubes of the same
    image with fewer probes (`refine_bases`)."""

    scheduler: str | None = None
    local_cluster: int | None = None
    model: str | None = None
    device: str | None = None
    refine: bool = False

    @property
    def distributed(self) -> bool:
        """True when the cubes are computed by dask workers."""
        return bool(self.scheduler or self.local_cluster)


@dataclass(frozen=True)
class SlotJob:
    """One image of a batch: write the cube of `blob` (its file bytes, content key `key`) into slot
    `slot` of the group at `group_path`; `base` = (group path, slot) of a stored cube of the same
    image with fewer probes to refine."""

    group_path: str
    slot: int
    blob: bytes
    key: str
    base: tuple[str, int] | None = None


@dataclass(frozen=True)
class BatchPlan:
    """What a batch will do: `keys`/`images` (unique images in the requested order), `todo` (indices of
    those not complete in the store), `group` (the batch's group id)."""

    keys: tuple[str, ...]
    images: tuple[Path, ...]
    todo: tuple[int, ...]
    group: str
    blobs: tuple[bytes, ...] = ()

    @property
    def cached(self) -> int:
        return len(self.keys) - len(self.todo)


def plan_batch(store, images, adapter, params: CubeParams) -> BatchPlan:
    """Hash every image (content keys of `adapter` and `params`, `cache.keys`), drop duplicates, and
    find the ones the store lacks."""
    ident = model_identity(adapter)
    keys, paths, blobs, seen = [], [], [], set()
    for img in images:
        raw = image_bytes(img)
        key = cube_key(raw, ident, params)
        if key in seen:
            continue
        seen.add(key)
        keys.append(key), paths.append(Path(img)), blobs.append(raw)
    if not keys:
        raise WorkbenchError("no images to compute: pass a folder with images")
    complete = set(store.keys())
    todo = tuple(i for i, k in enumerate(keys) if k not in complete)
    gid = "b-" + hashlib.sha256(",".join(sorted(keys)).encode()).hexdigest()[:20]
    return BatchPlan(tuple(keys), tuple(paths), todo, gid, tuple(blobs))


def _group_spec(adapter, params: CubeParams, slot_rows: list[dict], *, refinable: bool = False) -> slots.GroupSpec:
    sched = make_schedule(adapter, params.steps)
    C, H, W = adapter.model_shape
    return slots.GroupSpec(shape=(len(sched), H, W), image_shape=tuple(adapter.image_size),
                           timesteps=sched.timesteps.cpu().numpy(), alphas=sched.alphas.double().cpu().numpy(),
                           attrs=model_attrs(adapter, params), slots=slot_rows,
                           stat_channels=C if refinable and params.refinable else 0)


def _slot_row(key: str, path: Path) -> dict:
    try:
        with Image.open(path) as im:
            w, h = im.size
    except Image.DecompressionBombError:
        raise WorkbenchError(f"{path} is larger than the {Image.MAX_IMAGE_PIXELS / 1e6:.0f} Mpx limit for one image "
                             "(a decompression bomb?): downscale it first") from None
    except Exception:
        raise WorkbenchError(f"{path} is not a readable image: remove it from the folder or fix it") from None
    check_pixels(w, h, path)
    return {"key": key, "source_image": str(path.resolve()), "source_size": [h, w], "name": path.stem}


@functools.lru_cache(maxsize=2)
def _worker_adapter(model: str | None, device: str | None, dtype: str):
    return load_model(model, device=device, dtype=getattr(torch, dtype))


def compute_slot(job: SlotJob, params: CubeParams, adapter=None, *, options: BatchOptions = BatchOptions(),
                 dtype: str = "float32", progress: ProgressFn | None = None) -> int:
    """Compute one image's cube and write it into its slot (`job`), done flag last; returns the slot.
    Runs in-process or as a dask task (then, without `adapter`, the model loads from `options.model`
    on `options.device` in `dtype`). With `job.base`, only the missing probes run (refinement; see
    cache.build.compute_cube). `progress`: the cube's events (`cache.build.compute_cube`)."""
    group_path, slot, blob, key, base = job.group_path, job.slot, job.blob, job.key, job.base
    if adapter is None:
        adapter = _worker_adapter(options.model, options.device, dtype)
    if cube_key(blob, model_identity(adapter), params) != key:  # a worker with other weights would store wrong cubes
        raise WorkbenchError(f"the worker's model is {model_identity(adapter)}, not the batch's: give "
                             "every worker the same model weights (--model)")
    try:
        pil = Image.open(io.BytesIO(blob))
        pil.load()
    except (OSError, ValueError, SyntaxError) as exc:  # PIL's message ("image file is truncated") names no file
        source = slots.read_attrs(Path(group_path))["slots"][slot].get("source_image") or f"image of slot {slot}"
        raise WorkbenchError(f"{source}: not a readable image ({exc}): repair or remove that file and rerun the same "
                             "command (the cubes finished so far are kept)") from None
    base_ds = slots.slot_dataset(slots.open_group(Path(base[0])), base[1]).load() if base else None
    ds = compute_cube(adapter, pil, params, progress=progress, base=base_ds)
    slots.write_slot(Path(group_path), slot, ds[schema.VAR_RATE].values, ds[schema.VAR_IMAGE].values,
                     **slots.slot_extras(ds))
    return slot


def build_batch(store, images, adapter, params: CubeParams = CubeParams(), *,
                options: BatchOptions = BatchOptions(), progress: ProgressFn | None = None,
                plan: BatchPlan | None = None) -> list[str]:
    """Compute the cubes of `images` that `store` lacks, resumably; returns every image's key.

    `options` (`BatchOptions`): where the cubes are computed (cluster workers must see the store's
    folder), and `refine`: where the store holds a cube of the same image, model and parameters
    with fewer probes (and its probe statistics), only the missing probes of `params.K` are run and
    merged exactly (`refine_bases`); the smaller cube stays as it was, the refined one is a new cube
    (the key of params.K), written crash-safely like any other.
    `progress` gets `Progress` events of phase "images" (done of total images, complete ones
    included) and, in local runs, the events of the cube being computed (phases "cube" and "block",
    `cache.build.compute_cube`). `plan`: the batch's `plan_batch`, when the caller made it already.
    """
    refine = options.refine
    plan = plan or plan_batch(store, images, adapter, params)
    total = len(plan.keys)
    emit(progress, "images", plan.cached, total)
    if not plan.todo:
        return list(plan.keys)
    store.sweep()
    path = store.group_path(plan.group)
    with slots.group_lock(path):
        # refined cubes stay refinable; others keep their probe statistics only in a refinable store
        slot_of = _prepare_group(store, path, plan, adapter, params,
                                 refinable=refine or bool(getattr(store, "refinable", False)))
        pending = [(slot_of[plan.keys[i]], i) for i in plan.todo if plan.keys[i] in slot_of]
        done = slots.read_done(path)
        jobs = [(s, i) for s, i in pending if not done[s]]
        if jobs and compact.is_compacted(path):  # slots to write into a compacted group: one file per chunk again
            compact.expand_group(path)
        finished = plan.cached + (len(pending) - len(jobs))
        emit(progress, "images", finished, total)
        bases = refine_bases(store, plan, adapter, params) if refine else {}
        work = [SlotJob(str(path.resolve()), s, plan.blobs[i], plan.keys[i], bases.get(i)) for s, i in jobs]
        if options.distributed:
            _run_dask(work, adapter, params, options, progress=progress, start=finished, total=total)
        else:
            for job in work:
                compute_slot(job, params, adapter, progress=progress)
                finished += 1
                emit(progress, "images", finished, total)
    try:  # a finished group becomes one shard per array (cache.compact): ~30 files instead of ~5 per cube
        compact.compact_group(path)
    except (WorkbenchError, OSError):  # damage found while copying, a full disk: the group stays as it was
        pass
    leftovers = [i for i in plan.todo if plan.keys[i] not in slot_of]
    if leftovers:  # images of this batch that its existing group has no slot for (rare): a group of their own
        sub = plan_batch(store, [plan.images[i] for i in leftovers], adapter, params)
        build_batch(store, sub.images, adapter, params, options=options, plan=sub,
                    progress=None if progress is None else (lambda p: p.phase != "images" and progress(p)))
        emit(progress, "images", total, total)
    store.refresh()
    return list(plan.keys)


def refine_bases(store, plan: BatchPlan, adapter, params: CubeParams) -> dict[int, tuple[str, int]]:
    """image index -> (group path, slot) of the stored cube with the most probes below params.K of the
    same image, model and other parameters, for the images of `plan` still to compute (refinable
    Hutchinson cubes only)."""
    if not params.refinable:
        raise WorkbenchError(f"--refine-to needs Hutchinson cubes (estimator {params.estimator}, rate "
                             f"{params.definition} have no probe statistics to add to)")
    others = sorted({int(r["K"]) for r in store.index() if r.get("K") is not None and int(r["K"]) < params.K},
                    reverse=True)
    out, ident = {}, model_identity(adapter)
    for i in plan.todo:
        for k in others:
            loc = store._locate(cube_key(plan.blobs[i], ident, dataclasses.replace(params, K=k)))
            if loc is not None and (store.group_path(loc[0]) / schema.VAR_SUM_S).is_dir():
                out[i] = (str(store.group_path(loc[0])), loc[1])
                break
    return out


def _prepare_group(store, path: Path, plan: BatchPlan, adapter, params: CubeParams, *,
                   refinable: bool = False) -> dict[str, int]:
    """Create the batch's group (slots for the images the store lacks) or reuse it; key -> slot."""
    if not path.exists():
        rows = [_slot_row(plan.keys[i], plan.images[i]) for i in plan.todo]
        slots.create_group(path, _group_spec(adapter, params, rows, refinable=refinable))
    attrs = slots.read_attrs(path)
    if not same_model(attrs, adapter) or any(attrs.get(k, schema.PARAM_DEFAULTS.get(k)) != v
                                             for k, v in params.as_attrs().items()):
        raise WorkbenchError(f"{path.name} in {store.path} was written with another model or parameters: delete that "
                             "folder and rerun")
    return {row["key"]: i for i, row in enumerate(attrs["slots"])}


def _close_cluster(cluster) -> None:
    """Close a local dask cluster. On a loaded machine its shutdown can time out after every cube is
    stored (measured: 50 cubes done, then `TimeoutError` and exit 2 at load 21); the results are on
    disk and the worker processes end with this one, so a slow shutdown is not the batch's error."""
    try:
        cluster.close(timeout=60)
    except TimeoutError:
        pass


def _run_dask(jobs: list[SlotJob], adapter, params: CubeParams, options: BatchOptions, *,
              progress: ProgressFn | None, start: int, total: int) -> None:
    """One task per slot on a dask.distributed cluster; the coordinator only tracks completion
    (`Progress` of phase "images" over the batch's images, `start` of them done before)."""
    from distributed import Client, LocalCluster, as_completed

    for name in ("distributed", "distributed.nanny", "distributed.worker", "distributed.scheduler"):
        logging.getLogger(name).setLevel(logging.ERROR)  # shutdown chatter; real failures re-raise below
    dtype = str(adapter.dtype).replace("torch.", "")
    with contextlib.ExitStack() as stack:
        if options.scheduler:
            if not str(options.scheduler).startswith(("tcp://", "tls://", "inproc://", "ucx://")):
                raise WorkbenchError(f"--scheduler {options.scheduler!r} is not a dask address: write "
                                     "tcp://HOST:PORT")
            try:
                client = stack.enter_context(Client(options.scheduler, timeout="20s"))
            except (OSError, TimeoutError) as exc:
                raise WorkbenchError(f"cannot reach the dask scheduler at {options.scheduler} ({type(exc).__name__}): "
                                     "start it (dask scheduler; dask worker ...) or drop --scheduler") from None
        else:
            cluster = LocalCluster(n_workers=int(options.local_cluster), threads_per_worker=1, processes=True,
                                   dashboard_address=None)
            stack.callback(_close_cluster, cluster)
            client = stack.enter_context(Client(cluster))
        shipped = None if options.model is not None else client.scatter(adapter, broadcast=True)
        futures = [client.submit(compute_slot, job, params, shipped, options=options, dtype=dtype,
                                 key=f"cube-{job.key}", pure=False) for job in jobs]
        finished = start
        for fut in as_completed(futures):
            fut.result()  # re-raises a worker's error here
            finished += 1
            emit(progress, "images", finished, total)
