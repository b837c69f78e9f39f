"""The editing trajectory: DDIM generation from an optimised x_T, blended with the original's
trajectory outside the mask at high noise (t >= blend_t), and per-channel pixel curves along it.

Generation reuses `workbench.ddim.ddim_loop` one grid step at a time so that the blend can act
between steps; it is differentiable (optionally checkpointed) for the optimisation.
"""
from __future__ import annotations

import torch

from ..adapters import ModelAdapter
from ..curves import check_finite
from ..ddim import Schedule, ddim_loop
from ..memory import MemoryBudget, autodiff_chunk, default_cap
from ..rates import batched_rate_function, rate_function, rates_along, unit_tangents

__all__ = ["blend_states", "generate_to", "generate_states", "channel_curves"]


def blend_states(x: torch.Tensor, original: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """M * x + (1 - M) * original; x, original (B|1, C, H, W), mask (H, W) in [0, 1] on the model grid."""
    m = mask.to(x.device, x.dtype)
    return m * x + (1 - m) * original.to(x.device, x.dtype)


def _blended_at(schedule: Schedule, i: int, blend_t: int | None) -> bool:
    return blend_t is not None and i >= 0 and int(schedule.timesteps[i]) >= blend_t


def generate_to(adapter: ModelAdapter, x_T: torch.Tensor, schedule: Schedule, stop: int, *,
                original_states: torch.Tensor | None = None, mask: torch.Tensor | None = None,
                blend_t: int | None = None, grad: str = "off") -> torch.Tensor:
    """Generate from x_T (B, C, H, W) at grid index N-1 down to grid index `stop` (-1 = clean).

    After each step that lands on a state with t >= blend_t, the state is blended with
    `original_states[i]` (N, C, H, W) outside `mask` (no blending when blend_t or mask is None).
    `grad` as in `workbench.ddim.ddim_loop`.
    """
    x = x_T
    for j in range(len(schedule) - 1, stop, -1):
        x = _step(adapter, x, schedule, j, original_states=original_states, mask=mask, blend_t=blend_t, grad=grad)
    return x


def generate_states(adapter: ModelAdapter, x_T: torch.Tensor, schedule: Schedule, **blend) -> tuple[torch.Tensor, torch.Tensor]:
    """No-grad generation of one sample x_T (C, H, W): (states (N, C, H, W) ascending t, x0 (C, H, W))."""
    N = len(schedule)
    states = [None] * N
    x = x_T[None].to(adapter.device, adapter.dtype)
    states[N - 1] = x[0]
    with torch.no_grad():
        for j in range(N - 1, -1, -1):
            x = _step(adapter, x, schedule, j, **blend)
            if j - 1 >= 0:
                states[j - 1] = x[0]
    return torch.stack(states), x[0]


def _step(adapter, x, schedule, j, *, original_states=None, mask=None, blend_t=None, grad="off"):
    """One generation step from grid index j to j - 1, then the blend if that state is at t >= blend_t."""
    x = ddim_loop(adapter, x, schedule, direction="generate", span=(j, j - 1), grad=grad)
    if blend_t is not None and mask is not None and original_states is not None and _blended_at(schedule, j - 1, blend_t):
        x = blend_states(x, original_states[j - 1][None], mask)
    return x


def channel_curves(adapter: ModelAdapter, schedule: Schedule, states: torch.Tensor, pixels: list[tuple[int, int]],
                   definition: str = "h", *, chunk: int | None = None,
                   budget: MemoryBudget | None = None) -> torch.Tensor:
    """Per-channel curves of model-grid pixels (y, x) along `states` (N, C, H, W): (P, C, N) float32 cpu.

    Batched over timesteps (one JVP per pixel and channel) when there are few pixels, else over the
    pixels' unit tangents at each timestep; `chunk` timesteps or tangents per JVP, by default as
    many as the memory budget allows (`workbench.memory`). Raises WorkbenchError on NaN/inf rates."""
    C, H, W = states.shape[1:]
    N = len(states)
    states = states.to(adapter.device, adapter.dtype)
    out = torch.empty(len(pixels), C, N)
    flat = torch.tensor([c * H * W + y * W + x for (y, x) in pixels for c in range(C)])
    if chunk is None:
        fb = batched_rate_function(adapter, schedule, torch.tensor([0]), definition)
        chunk = autodiff_chunk(adapter, fb, states[:1], kinds=("jvp",), key=definition,
                               cap=default_cap(adapter, max(N, min(len(flat), 48))), budget=budget, what="tangent")
    if len(flat) <= N:
        for k, j in enumerate(flat):
            v = unit_tangents((C, H, W), j[None], device=states.device, dtype=states.dtype).expand(N, C, H, W)
            out.view(-1, N)[k] = rates_along(adapter, schedule, states, v, definition, batch=chunk).float().cpu()
        return check_finite(out, adapter)
    with adapter.autodiff():
        for i in range(N):
            f = rate_function(adapter, schedule, i, definition)
            for s in range(0, len(flat), chunk):
                idx = flat[s:s + chunk]
                v = unit_tangents((C, H, W), idx, device=states.device, dtype=states.dtype)
                x = states[i][None].expand(len(idx), C, H, W).contiguous()
                _, jv = torch.func.jvp(f, (x,), (v,))
                out.view(-1, N)[s:s + len(idx), i] = jv.flatten(1).norm(dim=1).float().cpu()
    return check_finite(out, adapter)
