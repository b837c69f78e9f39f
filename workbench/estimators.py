"""Whole-map estimators: the rate of every model-grid element at one timestep (DESIGN.md section 2).

All return squared-rate-consistent element rates (C, H, W) for one state x_t; `rate_cube` stacks
them over a trajectory into per-pixel rates (N, H, W).
  exact       column norms of J, by JVPs or VJPs (whichever is fewer)
  hutchinson  E[(J^T u)_i^2] = ||J e_i||^2 for Gaussian u; K probes, the same at every timestep
  rsvd        ||J P_k e_i||^2 = sum_j sigma_j^2 V_ij^2 from a randomised SVD (the `projected` rate)
"""
from __future__ import annotations

from typing import Callable

import torch

from .adapters import ModelAdapter
from .ddim import Schedule, Trajectory
from .linalg import randomized_svd, vjp_rows
from .rates import RateSpec, exact_element_rates, pixel_rates, rate_function

__all__ = ["ESTIMATORS", "hutchinson_element_rates", "rsvd_element_rates", "element_rates", "rate_cube",
           "hutchinson_probes"]

ESTIMATORS = ("hutchinson", "rsvd", "exact")


def hutchinson_probes(out_shape: tuple[int, ...], K: int, seed: int, *, device=None, dtype=None) -> torch.Tensor:
    """K Gaussian probes (K, *out_shape), reproducible from `seed` (common random numbers over t)."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn((K, *out_shape), generator=g).to(device=device, dtype=dtype)


def hutchinson_element_rates(f: Callable[[torch.Tensor], torch.Tensor], x_t: torch.Tensor, probes: torch.Tensor,
                             *, chunk: int = 64) -> torch.Tensor:
    """Unbiased estimate of the squared column norms of J = df/dx at x_t from probes (K, *out),
    returned as rates (square root), shape of x_t. Each squared value ~ truth x chi2(K)/K."""
    rows = vjp_rows(f, x_t, probes, chunk=chunk)  # (K, *in)
    return rows.double().pow(2).mean(0).sqrt().to(x_t.dtype)


def rsvd_element_rates(f: Callable[[torch.Tensor], torch.Tensor], x_t: torch.Tensor, k: int, *, iters: int = 2,
                       seed: int = 0, chunk: int = 64) -> torch.Tensor:
    """Projected rate of every element from the k leading singular triplets of J."""
    sigma, V = randomized_svd(f, x_t, k, iters=iters, generator=torch.Generator().manual_seed(seed), chunk=chunk)
    return (V.flatten(1).double().pow(2) * sigma.double().pow(2)[:, None]).sum(0).sqrt().to(x_t.dtype).reshape(x_t.shape)


def element_rates(adapter: ModelAdapter, schedule: Schedule, i: int, x_t: torch.Tensor, spec: RateSpec = RateSpec(),
                  *, estimator: str = "hutchinson", K: int = 32, seed: int = 0, chunk: int = 64) -> torch.Tensor:
    """Element rates (C, H, W) at grid index i by the chosen estimator."""
    if estimator not in ESTIMATORS:
        raise ValueError(f"unknown estimator {estimator!r}: choose one of {', '.join(ESTIMATORS)}")
    x_t = x_t.to(adapter.device, adapter.dtype)
    if estimator == "exact":
        return exact_element_rates(adapter, schedule, i, x_t, spec, chunk=chunk)
    definition = "h" if spec.definition == "projected" else spec.definition
    f = rate_function(adapter, schedule, i, definition)
    with adapter.autodiff():
        if estimator == "rsvd" or spec.definition == "projected":
            return rsvd_element_rates(f, x_t, spec.k if estimator == "exact" else K, iters=spec.iters, seed=seed,
                                      chunk=chunk)
        with torch.no_grad():
            out_shape = tuple(f(x_t[None]).shape[1:])
        probes = hutchinson_probes(out_shape, K, seed, device=x_t.device, dtype=x_t.dtype)
        return hutchinson_element_rates(f, x_t, probes, chunk=chunk)


def rate_cube(adapter: ModelAdapter, trajectory: Trajectory, spec: RateSpec = RateSpec(), *,
              estimator: str = "hutchinson", K: int = 32, seed: int = 0, chunk: int = 64,
              progress: Callable[[int, int], None] | None = None) -> torch.Tensor:
    """Per-pixel rates over the whole trajectory: (N, H, W) float32, indexed like the schedule."""
    N = len(trajectory.schedule)
    _, H, W = adapter.model_shape
    cube = torch.empty(N, H, W, dtype=torch.float32)
    for i in range(N):
        er = element_rates(adapter, trajectory.schedule, i, trajectory.states[i], spec, estimator=estimator, K=K,
                           seed=seed, chunk=chunk)
        cube[i] = pixel_rates(er, spec.channel).float().cpu()
        if progress:
            progress(i + 1, N)
    return cube
