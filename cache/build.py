"""The one cube pipeline: an image inverted once, then probe blocks until a stop rule says enough.

    image (path, PIL or file bytes) -> `invert_image` (PIL, prepare, DDIM-invert; once)
        -> `probe_blocks(..., rule)`: Hutchinson `ProbeStats` of probes 0 .. K-1, block after block,
           merged exactly (`workbench.uncertainty.merge_stats`), until the `StopRule` stops
        -> `cube_of`: rate, SE (`workbench.estimators.estimate_cube`) and attributes (`cache.keys`)

The stop rules: `StopRule.fixed(K)` (one block; with `base`, the statistics of a stored cube of
fewer probes, only the missing probes run: `--refine-to`), `StopRule.until_stable(R, block, cap)`
(`--until-stable`: pairs of blocks, one per half, until the split-half stability of the
fluctuation map reaches R) and `StopRule.anytime(K, first)` (the dashboard's live refinement:
doubling batches, each cube shown as it arrives). `compute_cube` returns the last cube,
`cache.anytime.cube_batches` every one, `cache.batch` writes them into a store's slots.
Estimators without probe statistics (rSVD, exact, the projected rate) skip the blocks: one call
of `estimate_cube`.
"""
from __future__ import annotations

import dataclasses
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
import xarray as xr
from PIL import Image
from scipy.stats import spearmanr

from workbench.ddim import Trajectory
from workbench.errors import WorkbenchError
from workbench import estimators
from workbench.fluctuation import fluctuation
from workbench.images import read_image, to_rgb, to_uint8
from workbench.pipeline import prepare_image
from workbench.progress import ProgressFn, emit, relabel
from workbench.rates import RateSpec
from workbench.uncertainty import ProbeStats, merge_stats

from . import schema
from .keys import cube_attrs, image_bytes
from .params import CubeParams, FluctuationParams

__all__ = ["compute_cube", "cube_from_arrays", "cube_of", "probe_stats_of", "Inversion",
           "invert_image", "StopRule", "ProbeBlock", "probe_blocks", "split_half_stability", "batch_sizes",
           "DEFAULT_FIRST"]

#: probes of the first batch of a live (anytime) cube: the first map a dropped image shows
DEFAULT_FIRST = 4


def cube_from_arrays(rate: np.ndarray, timesteps: np.ndarray, alphas: np.ndarray, image: np.ndarray, *,
                     attrs: dict, rate_se: np.ndarray | None = None, stats=None) -> xr.Dataset:
    """Assemble a single-image cube Dataset from arrays: rate (N, H, W), timesteps (N,), alphas (N,),
    image (iy, ix, 3) uint8, and the attributes (`cache.schema.ATTR_KEYS`); optionally `rate_se`
    (N, H, W) and the probe statistics `stats` (workbench.uncertainty.ProbeStats, sums (N, C|CC, H, W))."""
    D = schema.DIMS
    data = {schema.VAR_RATE: ((D["t"], D["y"], D["x"]), np.asarray(rate, dtype=np.float32)),
            schema.VAR_ALPHA: ((D["t"],), np.asarray(alphas, dtype=np.float64)),
            schema.VAR_IMAGE: ((D["image_y"], D["image_x"], D["rgb"]), np.asarray(image, dtype=np.uint8))}
    attrs = dict(attrs)
    if rate_se is not None:
        data[schema.VAR_RATE_SE] = ((D["t"], D["y"], D["x"]), np.asarray(rate_se, dtype=np.float32))
    if stats is not None:
        data[schema.VAR_SUM_S] = ((D["t"], D["channel"], D["y"], D["x"]), _numpy(stats.sum_s, np.float64))
        data[schema.VAR_SUM_SS] = ((D["t"], D["pair"], D["y"], D["x"]), _numpy(stats.sum_ss, np.float64))
        attrs["probe_first"] = int(stats.first)
    return xr.Dataset(data, coords={schema.COORD_T: ((D["t"],), np.asarray(timesteps, dtype=np.int64))}, attrs=attrs)


def _numpy(t, dtype) -> np.ndarray:
    return np.asarray(t.cpu().numpy() if hasattr(t, "cpu") else t, dtype=dtype)


def probe_stats_of(ds: xr.Dataset):
    """The probe statistics (workbench.uncertainty.ProbeStats) stored in a cube, or None (older schema,
    or an estimator other than hutchinson)."""
    if schema.VAR_SUM_S not in ds or schema.VAR_SUM_SS not in ds:
        return None
    return ProbeStats(K=int(ds.attrs["K"]), first=int(ds.attrs.get("probe_first", 0)),
                      sum_s=torch.from_numpy(np.asarray(ds[schema.VAR_SUM_S].values, dtype=np.float64)),
                      sum_ss=torch.from_numpy(np.asarray(ds[schema.VAR_SUM_SS].values, dtype=np.float64)))


# --- 1. the image, inverted once ------------------------------------------------------------------
@dataclass(frozen=True)
class Inversion:
    """An image as one cube pipeline sees it: `raw` (the bytes its key hashes), `source` (its path or
    PIL image, None for bare bytes), `source_size` (H0, W0), `pixels` (iy, ix, 3) uint8 at the model's
    image size, and the DDIM `trajectory` of `steps` steps."""

    raw: bytes
    source: str | Path | Image.Image | None
    source_size: tuple[int, int]
    pixels: np.ndarray
    trajectory: Trajectory


def invert_image(adapter, image: str | Path | Image.Image | bytes, steps: int, fixed_point: int) -> Inversion:
    """Read `image` (a path, a PIL image or an image file's bytes), bring it to the model's size and
    DDIM-invert it with `steps` steps, each refined `refine` times (`workbench.pipeline.prepare_image`)."""
    raw = image_bytes(image)
    if isinstance(image, bytes):
        im = Image.open(io.BytesIO(image))
        im.load()
        pil, source = to_rgb(im), None
    else:
        pil, source = (to_rgb(image) if isinstance(image, Image.Image) else read_image(image)), image
    prep = prepare_image(adapter, pil, steps=steps, fixed_point=fixed_point)
    return Inversion(raw, source, prep.source_size, to_uint8(prep.pixels), prep.trajectory)


# --- 2. probe blocks until a stop rule says enough ------------------------------------------------
def batch_sizes(K: int, first: int = DEFAULT_FIRST) -> list[int]:
    """The probe counts after each batch of a live cube: min(first, K), then doubling, ending at K.

    >>> batch_sizes(32)
    [4, 8, 16, 32]
    >>> batch_sizes(12, 4)
    [4, 8, 12]
    >>> batch_sizes(3)
    [3]
    """
    out = [min(int(first), int(K))]
    while out[-1] < K:
        out.append(min(2 * out[-1], int(K)))
    return out


@dataclass(frozen=True)
class StopRule:
    """When the probe blocks of one image stop. `sizes`: the probe counts after each block (ascending;
    the last is the most the rule runs); `halves`: each block runs as two halves counted to half A and
    half B, whose fluctuation maps give the split-half stability; `stable_at`: stop at the first
    block whose stability reaches it; `preview`: every block is shown (a stability the fluctuation
    parameters cannot give is NaN, not an error); `chunk_K`: the probe count the autodiff chunk is
    sized for (default the last size)."""

    sizes: tuple[int, ...]
    halves: bool = False
    stable_at: float | None = None
    preview: bool = False
    chunk_K: int | None = None

    @classmethod
    def fixed(cls, K: int) -> "StopRule":
        """K probes in one block (`workbench cubes`; with a base: only the probes it lacks)."""
        return cls((int(K),))

    @classmethod
    def until_stable(cls, R: float, block: int, cap: int) -> "StopRule":
        """Pairs of `block` probes (one per half) until the split-half stability reaches R, at most `cap` probes."""
        if not 0 < R < 1:
            raise WorkbenchError(f"--until-stable {R}: pass a stability between 0 and 1, e.g. 0.98")
        if cap < 2 * block:
            raise WorkbenchError(f"--max-K {cap} is below one pair of probe blocks ({2 * block}): raise it")
        return cls(tuple(range(2 * block, cap + 1, 2 * block)), halves=True, stable_at=float(R), chunk_K=int(block))

    @classmethod
    def anytime(cls, K: int, first: int = DEFAULT_FIRST, stable_at: float | None = None) -> "StopRule":
        """Doubling batches up to K (`batch_sizes`), each shown; optionally stop once stable."""
        return cls(tuple(batch_sizes(K, first)), halves=True, stable_at=stable_at, preview=True, chunk_K=int(K))


@dataclass(frozen=True)
class ProbeBlock:
    """One step of `probe_blocks`: `stats` of every probe so far (probes first .. first + K - 1 of the
    seed), the split-half `stability` of its fluctuation map (NaN without halves), `final` for the last."""

    stats: ProbeStats
    stability: float
    final: bool

    @property
    def K(self) -> int:
        """Probes so far."""
        return int(self.stats.K)


def split_half_stability(map_a: np.ndarray, map_b: np.ndarray) -> float:
    """Spearman-Brown stepped-up Spearman correlation of two half-sample maps (any equal shapes):
    2r / (1 + r), the expected rank correlation of the whole map with an independent one as large."""
    r = float(spearmanr(np.ravel(map_a), np.ravel(map_b)).statistic)
    if not np.isfinite(r):
        return 0.0
    return 2 * r / (1 + r) if r > -1 else -1.0


def _add(a: ProbeStats | None, b: ProbeStats) -> ProbeStats:
    """a + b, for halves whose blocks are not adjacent probe ranges (so not `merge_stats`)."""
    if a is None:
        return b
    return ProbeStats(K=a.K + b.K, first=a.first, sum_s=a.sum_s + b.sum_s, sum_ss=a.sum_ss + b.sum_ss)


def probe_blocks(adapter, inv: Inversion, params: CubeParams, rule: StopRule, *, base: ProbeStats | None = None,
                 fluct: FluctuationParams | None = None,
                 progress: ProgressFn | None = None) -> Iterator[ProbeBlock]:
    """Run the Hutchinson probes of `params` over `inv`'s trajectory block by block (see the module doc)
    and yield the merged statistics after each block; the last is `final`. `base`: statistics of the
    same cube with fewer probes to start from (only later probes run). `fluct`: the fluctuation map
    whose split-half stability rules with `rule.halves`. `progress`: a `Progress` (phase "cube", done
    of total probe x timestep pairs of the whole rule, total = the last size x N) after each timestep
    batch."""
    if not params.refinable:
        raise WorkbenchError("probe blocks need Hutchinson cubes (rate h, eps or step)")
    if rule.halves and (base is not None or fluct is None):
        raise WorkbenchError("split-half stability needs the fluctuation parameters and no base cube")
    traj = inv.trajectory
    spec = RateSpec(params.definition, k=params.tangent_k, channel=params.channel)
    chunk = estimators.cube_chunk(adapter, traj.schedule, traj.states[0], spec, "hutchinson",
                                  rule.chunk_K or rule.sizes[-1])
    ts = traj.schedule.timesteps.cpu().numpy()
    N, last = len(ts), rule.sizes[-1]
    total, halves, done = base, [None, None], 0 if base is None else base.K
    if base is not None and base.K > last:
        raise WorkbenchError("this cube cannot be refined (more probes stored than asked): compute it afresh")
    sizes = [n for n in rule.sizes if n > done] or [done]
    for n in sizes:
        add = n - done
        parts = [(done, (add + 1) // 2), (done + (add + 1) // 2, add // 2)] if rule.halves else [(done, add)]
        for h, (start, count) in enumerate(parts):
            if count == 0:
                continue

            def overall(p, start=start, count=count) -> None:
                emit(progress, "cube", start * N + p.done * count, last * N)

            first = 0 if base is None else base.first
            st = estimators.hutchinson_cube_stats(adapter, traj, spec,
                                                  estimators.ProbeOptions(K=count, seed=params.seed, chunk=chunk),
                                                  first=first + start, progress=overall)
            total = st if total is None else merge_stats(total, st)
            halves[h] = _add(halves[h], st)
        done = n
        stability = _stability(halves, spec, ts, fluct, strict=not rule.preview) if rule.halves else float("nan")
        stable = rule.stable_at is not None and np.isfinite(stability) and stability >= rule.stable_at
        final = n == sizes[-1] or stable
        yield ProbeBlock(total, stability, final)
        if final:
            return


def _stability(halves, spec: RateSpec, ts: np.ndarray, fluct: FluctuationParams, *, strict: bool) -> float:
    """Split-half stability of the halves' fluctuation maps (raw curves: `fluct.normalise` is not
    used, so a stability does not depend on how maps are later shown); NaN while a half is empty,
    or (not `strict`) when the fluctuation parameters leave too few timesteps."""
    if any(h is None for h in halves):
        return float("nan")
    try:
        maps = [fluctuation(estimators.cube_rates_se(h, spec.channel).rate.to(torch.float64).numpy(), ts,
                            window=fluct.window, t_b=fluct.t_b, axis=0) for h in halves]
    except WorkbenchError:
        if strict:
            raise
        return float("nan")
    return split_half_stability(*maps)


# --- 3. the cube ----------------------------------------------------------------------------------
def cube_of(adapter, inv: Inversion, params: CubeParams, *, stats: ProbeStats | None = None,
            progress: ProgressFn | None = None, **attrs) -> xr.Dataset:
    """The cube of `inv` under `params`: rate and SE from `stats` (Hutchinson probes already run) or
    by the estimator at once (`workbench.estimators.estimate_cube`), the attributes of `cache.keys`
    (key of `params`), then `attrs` (e.g. K of a preview, until_stable, complete=0). The probe
    statistics are kept when `stats` was given and the cube is complete. `progress`: the estimator's
    events as phase "cube"."""
    spec = RateSpec(params.definition, k=params.tangent_k, channel=params.channel)
    try:
        if stats is not None:
            est = estimators.CubeEstimate.from_stats(stats, spec.channel)
        else:
            est = estimators.estimate_cube(adapter, inv.trajectory, spec, estimator=params.estimator, K=params.K,
                                           seed=params.seed, rank=params.rank,
                                           progress=relabel(progress, "cube"))
    except ValueError as exc:  # e.g. a channel index the model does not have
        raise WorkbenchError(str(exc)) from None
    if not torch.isfinite(est.rate).all():
        raise WorkbenchError("the rate cube has NaN/inf values: check the model weights and --dtype (use float32)")
    sched = inv.trajectory.schedule
    meta = cube_attrs(adapter, params, raw=inv.raw, source=inv.source, source_size=inv.source_size, **attrs)
    keep = est.stats if int(meta.get("complete", 1)) == 1 else None
    return cube_from_arrays(est.rate.cpu().numpy(), sched.timesteps.cpu().numpy(),
                            sched.alphas.double().cpu().numpy(), inv.pixels, attrs=meta,
                            rate_se=est.rate_se.cpu().numpy(), stats=keep)


def compute_cube(adapter, image: str | Path | Image.Image | bytes, params: CubeParams = CubeParams(), *,
                 progress: ProgressFn | None = None, base: xr.Dataset | None = None,
                 rule: StopRule | None = None, fluct: FluctuationParams | None = None) -> xr.Dataset:
    """Invert `image` (path, PIL or file bytes) with `params.steps` DDIM steps and estimate every pixel's rate.

    Returns a single-image Dataset: `rate` and `rate_se` (t, y, x) float32 on the model grid (t
    ascending, coordinate `timestep` int64), `alpha` (t) float64, `image` (iy, ix, rgb) uint8 at the
    model's image size, for Hutchinson cubes the probe statistics, attributes per
    `cache.schema.ATTR_KEYS` (incl. `key`, `complete`=1). `base`: a stored cube of the same image,
    model and parameters but fewer probes (K < params.K) with probe statistics: only the missing
    probes are run and merged exactly (refinement; the result equals computing params.K at once).
    `rule`: a `StopRule` other than K probes at once (e.g. `StopRule.until_stable`, with `fluct`):
    the cube is that of the probes the rule ran (its key that of params with that K, attributes
    `until_stable` and `stability`). `progress`: `Progress` events of phase "cube" (the work done, see
    `probe_blocks` or `cube_of`) and, for Hutchinson cubes, one of phase "block" after each probe block
    (done = K = the probes so far of the rule's last size, `stability` its split-half stability, NaN
    without halves).
    """
    base_stats = None
    if base is not None:
        base_stats = probe_stats_of(base)
        if base_stats is None or not params.refinable or int(base.attrs["K"]) > params.K:
            raise WorkbenchError("this cube cannot be refined (no probe statistics, or more probes than asked): "
                                 "compute it afresh")
    if rule is not None and not params.refinable:
        raise WorkbenchError("--until-stable needs Hutchinson cubes (rate h, eps or step)")
    inv = invert_image(adapter, image, params.steps, params.fixed_point)
    if not params.refinable:
        return cube_of(adapter, inv, params, progress=progress)
    block = None
    rule = rule or StopRule.fixed(params.K)
    for block in probe_blocks(adapter, inv, params, rule, base=base_stats, fluct=fluct, progress=progress):
        emit(progress, "block", block.K, rule.sizes[-1], K=block.K, stability=float(block.stability))
    extra = {} if rule.stable_at is None else {"until_stable": float(rule.stable_at),
                                                                "stability": float(block.stability)}
    return cube_of(adapter, inv, dataclasses.replace(params, K=block.K), stats=block.stats, **extra)
