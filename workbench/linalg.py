"""Jacobian products of a function of one sample, and a randomised SVD built on them.

`f` maps a batch (B, *in_shape) to (B, *out_shape); the Jacobian J is taken at one sample x
(*in_shape), flattened to (m, n) with n = prod(in_shape), m = prod(out_shape).
"""
from __future__ import annotations

from typing import Callable

import torch
from torch.func import jvp, vjp, vmap

__all__ = ["jvp_columns", "vjp_rows", "randomized_svd", "vjp_rows_batched", "jvp_columns_batched",
           "range_basis_batched"]

Fn = Callable[[torch.Tensor], torch.Tensor]


def _single(f: Fn) -> Fn:
    return lambda z: f(z[None])[0]


def jvp_columns(f: Fn, x: torch.Tensor, tangents: torch.Tensor, *, chunk: int = 64) -> torch.Tensor:
    """J v for each tangent: tangents (k, *in_shape) -> (k, *out_shape); `vmap` over `jvp` in chunks."""
    g = _single(f)
    one = lambda v: jvp(g, (x,), (v,))[1]  # noqa: E731
    return torch.cat([vmap(one)(tangents[i:i + chunk]) for i in range(0, len(tangents), chunk)])


def vjp_rows(f: Fn, x: torch.Tensor, cotangents: torch.Tensor, *, chunk: int = 64) -> torch.Tensor:
    """J^T u for each cotangent: cotangents (k, *out_shape) -> (k, *in_shape); `vmap` over one `vjp`."""
    _, pull = vjp(_single(f), x)
    one = lambda u: pull(u)[0]  # noqa: E731
    return torch.cat([vmap(one)(cotangents[i:i + chunk]) for i in range(0, len(cotangents), chunk)])


def _orth(a: torch.Tensor) -> torch.Tensor:
    return torch.linalg.qr(a.double())[0].to(a.dtype)


def randomized_svd(f: Fn, x: torch.Tensor, k: int, *, oversample: int = 8, iters: int = 2,
                   generator: torch.Generator | None = None, chunk: int = 64,
                   out_shape: tuple[int, ...] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """k leading singular values and right singular vectors of J = df/dx at x (Halko et al. 2011,
    Alg. 4.4, subspace iteration). Returns (sigma (k,), V (k, *in_shape))."""
    in_shape = tuple(x.shape)
    if out_shape is None:
        with torch.no_grad():
            out_shape = tuple(f(x[None]).shape[1:])
    n, p = x.numel(), min(k + oversample, x.numel())
    omega = torch.randn((p, *in_shape), generator=generator, dtype=torch.float32).to(x.device, x.dtype)
    Y = jvp_columns(f, x, omega, chunk=chunk).reshape(p, -1).T  # (m, p)
    Q = _orth(Y)
    for _ in range(iters):
        Z = vjp_rows(f, x, Q.T.reshape(p, *out_shape), chunk=chunk).reshape(p, -1).T  # (n, p)
        Zq = _orth(Z)
        Q = _orth(jvp_columns(f, x, Zq.T.reshape(p, *in_shape), chunk=chunk).reshape(p, -1).T)
    Bt = vjp_rows(f, x, Q.T.reshape(p, *out_shape), chunk=chunk).reshape(p, n)  # rows of B = Q^T J
    _, S, Vh = torch.linalg.svd(Bt.double(), full_matrices=False)
    k = min(k, len(S))
    return S[:k].to(x.dtype), Vh[:k].to(x.dtype).reshape(k, *in_shape)


# --- batched over independent rows -------------------------------------------------------------
# `fb` maps a batch (B, *in) to (B, *out) with rows that do not interact (e.g. B states at B
# timesteps, `rates.batched_rate_function`); the Jacobians J_b of the rows are taken together.

def vjp_rows_batched(fb: Fn, x: torch.Tensor, cotangents: torch.Tensor, *, chunk: int = 64) -> torch.Tensor:
    """J_b^T u for every row b and cotangent: x (B, *in), cotangents (P, B, *out) -> (P, B, *in).
    One forward of the B rows, then reverse passes over `chunk` cotangents at a time (`vmap`)."""
    _, pull = vjp(fb, x)
    one = lambda u: pull(u)[0]  # noqa: E731
    return torch.cat([vmap(one)(cotangents[i:i + chunk]) for i in range(0, len(cotangents), chunk)])


def jvp_columns_batched(fb: Fn, x: torch.Tensor, tangents: torch.Tensor, *, chunk: int = 64) -> torch.Tensor:
    """J_b v for every row b and tangent: x (B, *in), tangents (P, B, *in) -> (P, B, *out)."""
    one = lambda v: jvp(fb, (x,), (v,))[1]  # noqa: E731
    return torch.cat([vmap(one)(tangents[i:i + chunk]) for i in range(0, len(tangents), chunk)])


def _orth_batched(a: torch.Tensor) -> torch.Tensor:
    """Orthonormal bases of the columns of a (B, r, p) (float64 QR), in a's dtype."""
    return torch.linalg.qr(a.double())[0].to(a.dtype)


def range_basis_batched(fb: Fn, x: torch.Tensor, p: int, *, iters: int = 2, generator: torch.Generator | None = None,
                        chunk: int = 64, out_shape: tuple[int, ...] | None = None) -> torch.Tensor:
    """Randomised range finder with subspace iteration (Halko et al. 2011, Alg. 4.4) for every row's
    Jacobian J_b (m x n) at once: an orthonormal Q_b (m, p) per row, returned as (B, m, p).
    The same Gaussian test matrix is used for every row (common random numbers)."""
    B, in_shape = x.shape[0], tuple(x.shape[1:])
    if out_shape is None:
        with torch.no_grad():
            out_shape = tuple(fb(x).shape[1:])
    p = min(p, x[0].numel())
    omega = torch.randn((p, *in_shape), generator=generator, dtype=torch.float32).to(x.device, x.dtype)
    Y = jvp_columns_batched(fb, x, omega[:, None].expand(p, B, *in_shape), chunk=chunk)  # (p, B, *out)
    Q = _orth_batched(Y.reshape(p, B, -1).permute(1, 2, 0))  # (B, m, p)
    for _ in range(iters):
        Z = vjp_rows_batched(fb, x, Q.permute(2, 0, 1).reshape(p, B, *out_shape), chunk=chunk)  # (p, B, *in)
        Zq = _orth_batched(Z.reshape(p, B, -1).permute(1, 2, 0))  # (B, n, p)
        Y = jvp_columns_batched(fb, x, Zq.permute(2, 0, 1).reshape(p, B, *in_shape), chunk=chunk)
        Q = _orth_batched(Y.reshape(p, B, -1).permute(1, 2, 0))
    return Q
