"""Generation rates: the length of a variation's image under a Jacobian (DESIGN.md section 1).

Definitions, for a variation v at state x_t on the DDIM grid index i:
  step       ||A_t v + B_t Jeps(x_t)[v]||   full reverse-step Jacobian
  eps        ||Jeps(x_t)[v]||
  h          ||Jh(x_t)[v]||                 the paper's Eq. 10 (default)
  projected  ||Jh(x_t) P_k v||              Eq. 6; P_k projects on the k leading right singular vectors
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from .adapters import ModelAdapter
from .ddim import Schedule
from .linalg import jvp_columns, randomized_svd, vjp_rows
from .errors import WorkbenchError
from .validate import check_channel, check_int, check_k

__all__ = ["RATE_DEFINITIONS", "RateSpec", "rate_function", "batched_rate_function", "rates_along", "tangent_basis", "rates_of", "exact_element_rates",
           "pixel_rates", "unit_tangents"]

RATE_DEFINITIONS = ("step", "eps", "h", "projected")


@dataclass(frozen=True)
class RateSpec:
    """Which rate: `definition` (one of RATE_DEFINITIONS), `k` for `projected` (tangent-space
    dimension), its rSVD `iters`, and the pixel `channel` rule (None = mean over channels)."""

    definition: str = "h"
    k: int = 32
    iters: int = 2
    channel: int | None = None

    def __post_init__(self):
        if self.definition not in RATE_DEFINITIONS:
            raise WorkbenchError(f"unknown rate definition {self.definition!r}: choose one of {', '.join(RATE_DEFINITIONS)}")
        check_k(self.k)
        check_int("iters", self.iters, minimum=0, maximum=100)
        check_channel(self.channel)


def rate_function(adapter: ModelAdapter, schedule: Schedule, i: int, definition: str = "h"
                  ) -> Callable[[torch.Tensor], torch.Tensor]:
    """The map whose Jacobian defines the rate at grid index i: (B, C, H, W) -> (B, ...)."""
    t = int(schedule.timesteps[i])
    if definition in ("h", "projected"):
        return lambda x: adapter.h(x, t)
    if definition == "eps":
        return lambda x: adapter.eps(x, t)
    if definition == "step":
        A, B = schedule.step_coefficients(i)
        return lambda x: A * x + B * adapter.eps(x, t)
    raise ValueError(f"unknown rate definition {definition!r}: choose one of {', '.join(RATE_DEFINITIONS)}")


def batched_rate_function(adapter: ModelAdapter, schedule: Schedule, indices: torch.Tensor, definition: str = "h"
                          ) -> Callable[[torch.Tensor], torch.Tensor]:
    """One map for several grid indices at once: row b of the batch (n, C, H, W) is evaluated at
    timestep `schedule.timesteps[indices[b]]`. Rows do not interact, so the JVP of this map with a
    batch of tangents gives each row's own Jacobian-vector product."""
    if definition == "projected":
        raise ValueError("the projected rate needs a per-timestep basis; use rates_of")
    ts = schedule.timesteps[indices].to(adapter.device)
    if definition == "h":
        return lambda x: adapter.h(x, ts)
    if definition == "eps":
        return lambda x: adapter.eps(x, ts)
    coef = [schedule.step_coefficients(int(i)) for i in indices]
    A = torch.tensor([c[0] for c in coef], device=adapter.device, dtype=adapter.dtype).view(-1, 1, 1, 1)
    B = torch.tensor([c[1] for c in coef], device=adapter.device, dtype=adapter.dtype).view(-1, 1, 1, 1)
    return lambda x: A * x + B * adapter.eps(x, ts)


def rates_along(adapter: ModelAdapter, schedule: Schedule, states: torch.Tensor, tangents: torch.Tensor,
                definition: str = "h", *, batch: int = 50) -> torch.Tensor:
    """Rate of one variation per timestep: states (N, C, H, W), tangents (N, C, H, W) -> (N,);
    row i is ||J_i v_i|| at grid index i. Timesteps are batched `batch` at a time."""
    out = []
    with adapter.autodiff():
        for s in range(0, len(states), batch):
            idx = torch.arange(s, min(s + batch, len(states)))
            f = batched_rate_function(adapter, schedule, idx, definition)
            x = states[idx].to(adapter.device, adapter.dtype)
            v = tangents[idx].to(adapter.device, adapter.dtype)
            _, jv = torch.func.jvp(f, (x,), (v,))
            out.append(jv.flatten(1).norm(dim=1))
    return torch.cat(out)


def tangent_basis(adapter: ModelAdapter, schedule: Schedule, i: int, x_t: torch.Tensor, k: int, *,
                  iters: int = 2, seed: int = 0, chunk: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """(sigma (k,), V (k, C, H, W)): the k leading singular pairs of Jh at x_t (rSVD, fixed seed;
    `chunk` test vectors per JVP/VJP)."""
    f = rate_function(adapter, schedule, i, "h")
    gen = torch.Generator().manual_seed(seed)
    with adapter.autodiff():
        return randomized_svd(f, x_t.to(adapter.device, adapter.dtype), k, iters=iters, generator=gen, chunk=chunk)


def rates_of(adapter: ModelAdapter, schedule: Schedule, i: int, x_t: torch.Tensor, tangents: torch.Tensor,
             spec: RateSpec = RateSpec(), *, chunk: int = 64,
             basis: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """Rates of variations: x_t (C, H, W), tangents (k, C, H, W) -> (k,) non-negative."""
    x_t = x_t.to(adapter.device, adapter.dtype)
    tangents = tangents.to(adapter.device, adapter.dtype)
    if spec.definition == "projected":
        sigma, V = basis if basis is not None else tangent_basis(adapter, schedule, i, x_t, spec.k, iters=spec.iters)
        coeff = tangents.flatten(1) @ V.flatten(1).T  # (k_tangents, k)
        return (coeff.pow(2) * sigma.pow(2)).sum(1).sqrt()
    f = rate_function(adapter, schedule, i, spec.definition)
    with adapter.autodiff():
        out = jvp_columns(f, x_t, tangents, chunk=chunk)
    return out.flatten(1).norm(dim=1)


def unit_tangents(shape: tuple[int, ...], flat_indices: torch.Tensor, *, device=None, dtype=None) -> torch.Tensor:
    """Unit vectors e_j of a (C, H, W) space for each flat index: (k, C, H, W)."""
    e = torch.zeros(len(flat_indices), int(torch.tensor(shape).prod()), device=device, dtype=dtype)
    e[torch.arange(len(flat_indices)), flat_indices.to(e.device)] = 1
    return e.reshape(len(flat_indices), *shape)


def exact_element_rates(adapter: ModelAdapter, schedule: Schedule, i: int, x_t: torch.Tensor,
                        spec: RateSpec = RateSpec(), *, chunk: int = 64) -> torch.Tensor:
    """Rate of every input element e_j at x_t: the column norms of J, (C, H, W).

    Exact: n JVPs (columns) or m VJPs (rows), whichever is fewer; `projected` from its basis.
    """
    x_t = x_t.to(adapter.device, adapter.dtype)
    shape = tuple(x_t.shape)
    if spec.definition == "projected":
        sigma, V = tangent_basis(adapter, schedule, i, x_t, spec.k, iters=spec.iters)
        return (V.flatten(1).pow(2) * sigma.pow(2)[:, None]).sum(0).sqrt().reshape(shape)
    f = rate_function(adapter, schedule, i, spec.definition)
    with torch.no_grad():
        out_shape = tuple(f(x_t[None]).shape[1:])
    n, m = x_t.numel(), int(torch.tensor(out_shape).prod())
    sq = torch.zeros(n, device=x_t.device, dtype=torch.float64)
    with adapter.autodiff():
        if n <= m:
            for s in range(0, n, chunk):
                idx = torch.arange(s, min(s + chunk, n))
                cols = jvp_columns(f, x_t, unit_tangents(shape, idx, device=x_t.device, dtype=x_t.dtype), chunk=chunk)
                sq[idx] = cols.flatten(1).double().pow(2).sum(1)
        else:
            for s in range(0, m, chunk):
                idx = torch.arange(s, min(s + chunk, m))
                rows = vjp_rows(f, x_t, unit_tangents(out_shape, idx, device=x_t.device, dtype=x_t.dtype), chunk=chunk)
                sq += rows.flatten(1).double().pow(2).sum(0)
    return sq.sqrt().to(x_t.dtype).reshape(shape)


def pixel_rates(element_rates: torch.Tensor, channel: int | None = None) -> torch.Tensor:
    """Per-pixel rates from per-element ones (..., C, H, W) -> (..., H, W): channel mean or one channel."""
    if channel is None:
        return element_rates.mean(-3)
    C = element_rates.shape[-3]
    if not 0 <= channel < C:
        raise ValueError(f"channel {channel} out of range: the model has {C} channels (0..{C - 1})")
    return element_rates[..., channel, :, :]
