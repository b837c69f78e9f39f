"""Generation curves: a pixel's rates over the DDIM grid of an image's trajectory.

A curve is indexed like `trajectory.schedule.timesteps` (ascending t: t_N ... t_1).
Pixels are (y, x) on the model grid.
"""
from __future__ import annotations

from typing import Sequence

import torch

from .adapters import ModelAdapter
from .ddim import Trajectory
from .errors import WorkbenchError
from .memory import MemoryBudget, autodiff_chunk, default_cap
from .progress import ProgressFn, emit
from .rates import RateSpec, batched_rate_function, rates_along, rates_of, tangent_basis, unit_tangents

__all__ = ["pixel_curves", "region_curve", "check_pixel", "normalise_curve", "curve_chunk", "check_finite"]


def check_pixel(adapter: ModelAdapter, y: int, x: int) -> None:
    """Raise a one-line error if (y, x) is outside the model grid."""
    _, H, W = adapter.model_shape
    if not (0 <= y < H and 0 <= x < W):
        raise WorkbenchError(f"pixel (x={x}, y={y}) is outside the {W}x{H} model grid: pick 0<=x<{W}, 0<=y<{H}")


def curve_chunk(adapter: ModelAdapter, trajectory: Trajectory, spec: RateSpec = RateSpec(), *,
                budget: MemoryBudget | None = None) -> int:
    """Timesteps (or tangents) per JVP that keep a curve's peak memory under the budget
    (`workbench.memory`; measured once per model, resolution and rate definition)."""
    definition = "h" if spec.definition == "projected" else spec.definition
    kinds = ("jvp", "vjp") if spec.definition == "projected" else ("jvp",)
    fb = batched_rate_function(adapter, trajectory.schedule, torch.tensor([0]), definition)
    work = len(trajectory.schedule) if spec.definition != "projected" else spec.k + 8
    return autodiff_chunk(adapter, fb, trajectory.states[:1], kinds=kinds, key=definition,
                          cap=default_cap(adapter, work), budget=budget, what="timestep")


def pixel_curves(adapter: ModelAdapter, trajectory: Trajectory, pixels: Sequence[tuple[int, int]],
                 spec: RateSpec = RateSpec(), *, chunk: int | None = None,
                 progress: ProgressFn | None = None,
                 budget: MemoryBudget | None = None) -> torch.Tensor:
    """Curves of pixels (P pairs (y, x)) -> (P, N): per timestep the rate of each pixel's unit
    variations, averaged over channels (or `spec.channel` only). `chunk`: timesteps (tangents for
    `projected`) per JVP; default from the memory budget (`curve_chunk`). `progress`: a `Progress` after
    each pixel (phase "pixels"; "timesteps" for `projected`). Raises WorkbenchError when a rate is not
    finite (half precision overflowing)."""
    C, H, W = adapter.model_shape
    for y, x in pixels:
        check_pixel(adapter, y, x)
    channels = range(C) if spec.channel is None else [spec.channel]
    if spec.channel is not None and not 0 <= spec.channel < C:
        raise WorkbenchError(f"channel {spec.channel} out of range: the model has {C} channels (0..{C - 1})")
    flat = torch.tensor([c * H * W + y * W + x for (y, x) in pixels for c in channels])
    tangents = unit_tangents((C, H, W), flat, device=adapter.device, dtype=adapter.dtype)
    schedule = trajectory.schedule
    N = len(schedule)
    if chunk is None:
        chunk = curve_chunk(adapter, trajectory, spec, budget=budget)
    out = torch.empty(len(pixels), N, dtype=torch.float32)
    if spec.definition != "projected":
        batch = max(1, min(N, chunk))
        for p in range(len(pixels)):
            r = torch.stack([rates_along(adapter, schedule, trajectory.states,
                                         tangents[p * len(channels) + c].expand(N, C, H, W), spec.definition,
                                         batch=batch) for c in range(len(channels))])
            out[p] = r.mean(0).float().cpu()
            emit(progress, "pixels", p + 1, len(pixels))
        return check_finite(out, adapter)
    for i in range(N):
        x_t = trajectory.states[i]
        basis = tangent_basis(adapter, schedule, i, x_t, spec.k, iters=spec.iters, chunk=chunk)
        r = rates_of(adapter, schedule, i, x_t, tangents, spec, chunk=chunk, basis=basis)
        out[:, i] = r.reshape(len(pixels), len(channels)).mean(1).float().cpu()
        emit(progress, "timesteps", i + 1, N)
    return check_finite(out, adapter)


def check_finite(rates: torch.Tensor, adapter: ModelAdapter) -> torch.Tensor:
    """`rates` unchanged, or a one-line WorkbenchError when any is NaN/inf (names the dtype and the fix)."""
    if not torch.isfinite(rates).all():
        dtype = str(adapter.dtype).replace("torch.", "")
        fix = ("use --dtype float32 (or bfloat16): half-precision derivatives overflow"
               if adapter.dtype == torch.float16 else "check the model's weights (they give NaN/inf derivatives)")
        raise WorkbenchError(f"{int((~torch.isfinite(rates)).sum())} of {rates.numel()} rates are NaN/inf "
                             f"in {dtype}: {fix}")
    return rates


def region_curve(adapter: ModelAdapter, trajectory: Trajectory, mask: torch.Tensor, spec: RateSpec = RateSpec(),
                 *, max_pixels: int = 256, seed: int = 0, **kw) -> torch.Tensor:
    """Mean curve over the pixels of a model-grid mask (H, W) -> (N,). Regions larger than
    `max_pixels` are subsampled uniformly (seeded)."""
    ys, xs = torch.nonzero(mask > 0.5, as_tuple=True)
    if len(ys) == 0:
        raise WorkbenchError("the region is empty on the model grid: draw a larger mask")
    if len(ys) > max_pixels:
        pick = torch.randperm(len(ys), generator=torch.Generator().manual_seed(seed))[:max_pixels]
        ys, xs = ys[pick], xs[pick]
    return pixel_curves(adapter, trajectory, list(zip(ys.tolist(), xs.tolist())), spec, **kw).mean(0)


def normalise_curve(curve: torch.Tensor) -> torch.Tensor:
    """A curve as a distribution over timesteps (sums to 1 along the last axis)."""
    return curve / curve.sum(-1, keepdim=True).clamp_min(1e-30)
