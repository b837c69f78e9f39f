"""Anytime cubes: a Hutchinson cube shown after its first probe batch and refined batch by batch.

`cube_batches` is the cube pipeline (`cache.build`) with the stop rule `StopRule.anytime`: the
image is inverted once, then probes run in growing batches (first `first` probes, then doubling:
4, 8, 16, ... up to `params.K`), each batch as two half-blocks counted to half A and half B. After
each batch it yields a `CubeBatch`: a complete in-memory cube of the probes so far (rate, rate_se,
attributes with K = the probes so far) and the split-half stability of its fluctuation map. The
batches merge exactly (probes 0 .. K-1 of the seed), so the last cube equals
`cache.build.compute_cube(adapter, image, params)` (same key, same values to float rounding).
Intermediate cubes carry `complete` = 0 (the store refuses them); only the last is complete.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import xarray as xr
from PIL import Image

from workbench.progress import ProgressFn

from .build import DEFAULT_FIRST, StopRule, batch_sizes, compute_cube, cube_of, invert_image, probe_blocks
from .params import CubeParams, FluctuationParams

__all__ = ["CubeBatch", "batch_sizes", "cube_batches", "DEFAULT_FIRST"]


@dataclass(frozen=True)
class CubeBatch:
    """One step of `cube_batches`: `ds` the cube of the first `K` probes (of `K_final`), `stability`
    the split-half stability of its fluctuation map (NaN when a half has fewer than 2 probes),
    `final` True for the last (complete) cube."""

    ds: xr.Dataset
    K: int
    K_final: int
    stability: float
    final: bool


def cube_batches(adapter, image: str | Path | Image.Image, params: CubeParams = CubeParams(), *,
                 first: int = DEFAULT_FIRST, window: int = 3, t_b: float = 0.0, until_stable: float | None = None,
                 progress: ProgressFn | None = None) -> Iterator[CubeBatch]:
    """Yield the cube of `image` after each probe batch (see the module doc); the last one is complete.

    params: a Hutchinson cube's parameters (not the projected rate); other estimators yield one
    batch, the cube computed at once (`compute_cube`). window/t_b: the fluctuation map whose
    split-half stability is reported (NaN when they leave too few timesteps). until_stable: stop at
    the first batch whose stability reaches it (params.K is then the cap); the last cube is that of
    the probes so far (its key that of params with that K, attributes `until_stable` and
    `stability`, as `workbench cubes --until-stable` writes them).
    progress: `Progress` events of phase "cube" (probe x timestep pairs of the whole cube, total = K x
    N) after each timestep batch."""
    if not params.refinable:
        ds = compute_cube(adapter, image, params, progress=progress)
        yield CubeBatch(ds, params.K, params.K, float("nan"), True)
        return
    inv = invert_image(adapter, image, params.steps, params.fixed_point)
    rule = StopRule.anytime(params.K, first, until_stable)
    for block in probe_blocks(adapter, inv, params, rule, fluct=FluctuationParams(window=window, t_b=t_b),
                              progress=progress):
        now = dataclasses.replace(params, K=block.K)
        extra = {} if until_stable is None else {"until_stable": float(until_stable),
                                                 "stability": float(block.stability)}
        if block.final:
            ds = cube_of(adapter, inv, now, stats=block.stats, **extra)
        else:  # an in-memory preview under the key of the cube it becomes: `put` refuses it
            ds = cube_of(adapter, inv, params, stats=block.stats, **now.as_attrs(), **extra, complete=0)
        yield CubeBatch(ds, block.K, int(params.K), block.stability, block.final)
