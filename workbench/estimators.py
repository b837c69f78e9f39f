"""Whole-map estimators: the rate of every model-grid element at every timestep (DESIGN.md section 2).

For J = Jh(x_t) (m x n; n = C*H*W inputs, m = size of h), the rate of element i is the column
norm ||J e_i||. Estimators of all n of them at once, each a pure function of tensors:
  exact            column norms by n JVPs or m VJPs, whichever is fewer (the reference)
  hutchinson       E[(J^T u)_i^2] = ||J e_i||^2 for Gaussian u in h-space; K probes, the same at
                   every timestep (common random numbers); each squared estimate ~ truth x chi2(K)/K
  rsvd             ||J P_k e_i||^2 = sum_j sigma_j^2 V_ij^2 from a randomised SVD of rank k = K
                   (the `projected` rate: a lower bound of the h rate)
  rsvd+hutchinson  Diag++ (Baston & Nakatsukasa 2022) in h-space: with Q (m x r) an orthonormal basis
                   of J's leading range, ||J e_i||^2 = ||Q^T J e_i||^2 + ||(I - QQ^T) J e_i||^2
                   exactly; the first term from r VJPs, the second by Hutchinson with K projected probes
`rate_cube` runs them over a trajectory with several timesteps in one pass (`batch`), the
reverse passes bounded by `chunk` probe x timestep pairs (memory).

Standard errors and refinement (the numerics in `workbench.uncertainty`):
  hutchinson_cube_stats(adapter, traj, spec, ProbeOptions(K=, seed=), first=0) -> ProbeStats (sums (N, C, H, W) and
      (N, C(C+1)/2, H, W), float64): what a cube keeps to report rate_se and to be refined exactly
  cube_rates_se(stats, channel) -> RatesWithSE(rate, rate_se) (N, H, W)
  refine_cube_stats(adapter, traj, stats, spec, ProbeOptions(K=K2, seed=)) runs only the new probes and merges
      (`uncertainty.merge_stats`): equal to K2 probes at once
  probe_block(out_shape, seed, first, count, kind=) probe i depends only on (seed, i)
  ProbeOptions(shift_period=P) (hutchinson_cube_stats / refine_cube_stats): the shift-averaged rate, each group of
      SHIFT_GROUP probes at a random sub-grid shift of the states, undone on the VJP rows
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

import numpy as np
import torch

from .adapters import ModelAdapter
from .ddim import Schedule, Trajectory
from .errors import WorkbenchError
from .linalg import randomized_svd, range_basis_batched, vjp_rows, vjp_rows_batched
from .memory import MemoryBudget, autodiff_chunk, default_cap
from .progress import ProgressFn, emit
from .rates import RateSpec, batched_rate_function, exact_element_rates, pixel_rates
from .uncertainty import ProbeStats, RatesWithSE, merge_stats, pixel_rates_se, stats_from_samples

__all__ = ["ESTIMATORS", "DEFAULT_K", "PROBE_KINDS", "ProbeOptions", "probe_block", "hutchinson_probes", "hutchinson_stats_batched",
           "hutchinson_cube_stats", "refine_cube_stats", "cube_rates_se", "SHIFT_GROUP", "probe_shift",
           "shifted_stats_batched", "hutchinson_element_rates", "rsvd_element_rates",
           "hutchinson_sq_batched", "rsvd_sq_batched", "diagpp_sq_batched", "element_rates", "rate_cube",
           "check_estimator", "cube_chunk", "has_probe_stats", "CubeEstimate", "estimate_cube"]

ESTIMATORS = ("hutchinson", "rsvd", "rsvd+hutchinson", "exact")

#: Hutchinson probes per timestep, chosen by measurement (python -m bench.bench_cubes; README.md, "Whole-map estimators"):
#: on the shipped model and a held-out OSIE photo, pixel-level Spearman against the exact map (512 random pixels,
#: t = 160/480/820) was 0.68/0.79/0.86/0.91/0.95 for K = 8/16/32/64/128; a 50-step cube took 20.6 s at K=32,
#: 35.4 s at K=64 and 135 s at K=128 on the 2-core CPU. No K within the 60 s budget reaches 0.98 (the 1/K trend
#: puts it near K = 256-512); K = 64 is the most accurate one measured inside the budget.
DEFAULT_K = 64

#: oversampling of the randomised SVD (Halko et al. 2011): rank k uses k + RSVD_OVERSAMPLE test vectors
RSVD_OVERSAMPLE = 8


def check_estimator(estimator: str, K: int) -> None:
    """Raise a one-line WorkbenchError for an unknown estimator or a K below 1."""
    if estimator not in ESTIMATORS:
        raise WorkbenchError(f"unknown estimator {estimator!r}: choose one of {', '.join(ESTIMATORS)}")
    if int(K) < 1:
        raise WorkbenchError(f"K={K} probes (or rank) is too small: pass K >= 1")


PROBE_KINDS = ("gaussian", "rademacher", "orthogonal")

#: probes per orthogonalised block (kind "orthogonal"); probe i belongs to block i // ORTHO_BLOCK
ORTHO_BLOCK = 32


@dataclass(frozen=True)
class ProbeOptions:
    """How the estimators draw and run their probes (shared by `rate_cube`, `element_rates`,
    `hutchinson_cube_stats` and `refine_cube_stats`).

    estimator: one of ESTIMATORS. K: Hutchinson probes per timestep (the same probes at every
    timestep) or, for `rsvd`, the rank. seed: the probes' seed. rank: the basis size of
    `rsvd+hutchinson` (None: K // 2). kind: one of PROBE_KINDS (Hutchinson statistics).
    shift_period: the shift-averaged rate (`shifted_stats_batched`), e.g. 8 for the shipped model's
    downsampling; None is the plain rate. chunk: probe x timestep pairs per reverse pass (bounds
    memory; None: from the memory budget in `rate_cube`, 64 elsewhere). batch: timesteps per pass
    (None: as many as fit in `chunk` alongside their probes)."""

    estimator: str = "hutchinson"
    K: int = DEFAULT_K
    seed: int = 0
    rank: int | None = None
    kind: str = "gaussian"
    shift_period: int | None = None
    chunk: int | None = None
    batch: int | None = None

    def basis_rank(self) -> int:
        """The basis size of `rsvd+hutchinson`: `rank`, or K // 2 (at least 1) when it is None."""
        return max(1, self.K // 2) if self.rank is None else int(self.rank)


def _probe_generator(seed: int, index: int, tag: int = 0) -> torch.Generator:
    """A generator that depends only on (seed, index, tag): well mixed (numpy SeedSequence), 63 bits.
    tag 0: probe `index`; 1: orthogonal block `index`; 2: the Gaussian fill of a block."""
    hi, lo = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(seed) >> 32, int(index), int(tag)]).generate_state(2)
    return torch.Generator().manual_seed(((int(hi) << 32) | int(lo)) & 0x7FFFFFFFFFFFFFFF)


def _orthogonal_block(out_shape: tuple[int, ...], seed: int, block: int) -> torch.Tensor:
    """ORTHO_BLOCK probes with orthogonal directions (Haar: QR of a Gaussian block with the sign of
    R's diagonal), each scaled to norm sqrt(m), so E[u u^T] = I still holds: (ORTHO_BLOCK, *out_shape)."""
    m = 1
    for d in out_shape:
        m *= int(d)
    b = min(ORTHO_BLOCK, m)
    g = torch.randn((m, b), generator=_probe_generator(seed, block, 1), dtype=torch.float64)
    Q, R = torch.linalg.qr(g)
    Q = Q * torch.sign(torch.diagonal(R))
    out = torch.zeros((ORTHO_BLOCK, m), dtype=torch.float64)
    out[:b] = Q.T * m ** 0.5
    if b < ORTHO_BLOCK:  # more probes than dimensions: the rest of the block is plain Gaussian
        out[b:] = torch.randn((ORTHO_BLOCK - b, m), generator=_probe_generator(seed, block, 2),
                              dtype=torch.float64)
    return out.float().reshape(ORTHO_BLOCK, *out_shape)


def probe_block(out_shape: tuple[int, ...], seed: int, first: int, count: int, *, kind: str = "gaussian",
                device=None, dtype=None) -> torch.Tensor:
    """Probes first .. first + count - 1 of `seed`: (count, *out_shape). Probe i depends only on
    (seed, i) (and, for kind "orthogonal", on its block i // ORTHO_BLOCK), so blocks with disjoint
    index ranges are independent and any split of 0..K-1 gives the same probes as K at once.
    kind: "gaussian" (N(0, 1) entries), "rademacher" (+-1), "orthogonal" (Haar-orthogonal within
    blocks of ORTHO_BLOCK, norm sqrt(m)); all have E[u u^T] = I."""
    if kind not in PROBE_KINDS:
        raise WorkbenchError(f"unknown probe kind {kind!r}: choose one of {', '.join(PROBE_KINDS)}")
    if kind == "orthogonal":
        blocks = range(first // ORTHO_BLOCK, (first + count - 1) // ORTHO_BLOCK + 1) if count else []
        allp = torch.cat([_orthogonal_block(out_shape, seed, j) for j in blocks]) if count else \
            torch.empty((0, *out_shape))
        off = first - (first // ORTHO_BLOCK) * ORTHO_BLOCK
        out = allp[off:off + count]
    else:
        rows = []
        for i in range(first, first + count):
            g = _probe_generator(seed, i)
            rows.append(torch.randn(out_shape, generator=g) if kind == "gaussian"
                        else torch.randint(0, 2, out_shape, generator=g).float() * 2 - 1)
        out = torch.stack(rows) if rows else torch.empty((0, *out_shape))
    return out.to(device=device, dtype=dtype)


def hutchinson_probes(out_shape: tuple[int, ...], K: int, seed: int, *, device=None, dtype=None) -> torch.Tensor:
    """K Gaussian probes (K, *out_shape), reproducible from `seed` (common random numbers over t):
    `probe_block(out_shape, seed, 0, K)`. The first k of K probes equal the k probes of the same seed."""
    return probe_block(out_shape, seed, 0, K, device=device, dtype=dtype)


# --- one timestep (kept for callers that need one map) -----------------------------------------
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


# --- batched kernels: B states, each at its own timestep, rows independent --------------------
def hutchinson_sq_batched(fb: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, probes: torch.Tensor,
                          *, chunk: int = 64) -> torch.Tensor:
    """Hutchinson estimate of the squared column norms of every row's Jacobian: x (B, *in), probes
    (K, *out) shared by all rows -> (B, *in) float32. One forward, K reverse passes (`chunk` probes
    per `vmap`, so about chunk x B samples in flight)."""
    B = x.shape[0]
    u = probes[:, None].expand(len(probes), B, *probes.shape[1:])
    rows = vjp_rows_batched(fb, x, u, chunk=chunk)  # (K, B, *in)
    return rows.float().pow(2).mean(0)


def hutchinson_stats_batched(fb: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, probes: torch.Tensor,
                             *, first: int = 0, chunk: int = 64) -> ProbeStats:
    """`hutchinson_sq_batched` keeping the sufficient statistics (`uncertainty.ProbeStats`) of the
    probes first .. first + K - 1: x (B, C, H, W), probes (K, *out) -> sums (B, C, H, W) and
    (B, C(C+1)/2, H, W), float64."""
    B = x.shape[0]
    u = probes[:, None].expand(len(probes), B, *probes.shape[1:])
    rows = vjp_rows_batched(fb, x, u, chunk=chunk)  # (K, B, C, H, W)
    return stats_from_samples(rows.double().pow(2), first=first)


#: probes per shift group of the shift-averaged rate: probe i is evaluated at the shift of group i // SHIFT_GROUP
SHIFT_GROUP = 16


def probe_shift(seed: int, index: int, period: int) -> tuple[int, int]:
    """The sub-grid shift (dy, dx), each in 0 .. period - 1, of probe `index` of `seed` in the
    shift-averaged rate; it depends only on (seed, index // SHIFT_GROUP)."""
    g = _probe_generator(seed, int(index) // SHIFT_GROUP, 3)
    dy, dx = torch.randint(0, int(period), (2,), generator=g).tolist()
    return int(dy), int(dx)


def shifted_stats_batched(fb: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, probes: torch.Tensor, *,
                          first: int, seed: int, period: int, chunk: int = 64) -> ProbeStats:
    """Shift-averaged Hutchinson statistics: probe i (index first + row) sees the states rolled by
    `probe_shift(seed, i, period)` (circularly, in y and x), and its VJP row is rolled back, so pixel
    (y, x) is scored at every sub-grid phase of the model's downsampling; the expectation is the mean
    of the squared rate over the shifts drawn. One extra forward per group of SHIFT_GROUP probes.
    x (B, C, H, W), probes (K, *out) -> ProbeStats like `hutchinson_stats_batched`."""
    out = None
    K = len(probes)
    i = 0
    while i < K:
        j = min(K, (((first + i) // SHIFT_GROUP) + 1) * SHIFT_GROUP - first)
        dy, dx = probe_shift(seed, first + i, period)
        xs = torch.roll(x, (dy, dx), dims=(-2, -1))
        u = probes[i:j, None].expand(j - i, x.shape[0], *probes.shape[1:])
        rows = torch.roll(vjp_rows_batched(fb, xs, u, chunk=chunk), (-dy, -dx), dims=(-2, -1))
        st = stats_from_samples(rows.double().pow(2), first=first + i)
        out = st if out is None else merge_stats(out, st)
        i = j
    return out


def _residual_probes(Q: torch.Tensor, probes: torch.Tensor) -> torch.Tensor:
    """(I - Q_b Q_b^T) u for every row b: Q (B, m, r), probes (K, *out) -> (K, B, *out)."""
    K, B = len(probes), Q.shape[0]
    u = probes.reshape(K, -1).to(Q.dtype)
    coeff = torch.einsum("bmr,km->bkr", Q, u)
    resid = u[None] - torch.einsum("bmr,bkr->bkm", Q, coeff)  # (B, K, m)
    return resid.transpose(0, 1).reshape(K, B, *probes.shape[1:])


def _basis_rows(fb, x: torch.Tensor, Q: torch.Tensor, out_shape: tuple[int, ...], chunk: int) -> torch.Tensor:
    """Rows of Q_b^T J_b for every row b: (r, B, n)."""
    B, r = Q.shape[0], Q.shape[2]
    return vjp_rows_batched(fb, x, Q.permute(2, 0, 1).reshape(r, B, *out_shape), chunk=chunk).reshape(r, B, -1)


def rsvd_sq_batched(fb: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, k: int, *, iters: int = 2,
                    seed: int = 0, chunk: int = 64, oversample: int = RSVD_OVERSAMPLE) -> torch.Tensor:
    """Squared projected rates sum_{j<k} sigma_j^2 V_ij^2 of every row's Jacobian from a randomised
    SVD of rank k (k + oversample test vectors, `iters` subspace iterations, the same test matrix
    at every row): x (B, *in) -> (B, *in) float32."""
    with torch.no_grad():
        out_shape = tuple(fb(x).shape[1:])
    gen = torch.Generator().manual_seed(seed)
    Q = range_basis_batched(fb, x, k + oversample, iters=iters, generator=gen, chunk=chunk, out_shape=out_shape)
    Bt = _basis_rows(fb, x, Q, out_shape, chunk).transpose(0, 1).double()  # (B, p, n) = Q^T J
    U, S, _ = torch.linalg.svd(Bt, full_matrices=False)  # Bt = U S Vh
    k = min(k, S.shape[1])
    lead = torch.einsum("bpk,bpn->bkn", U[:, :, :k], Bt)  # = S_k Vh_k
    return lead.pow(2).sum(1).float().reshape(x.shape)


def diagpp_sq_batched(fb: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, probes: torch.Tensor, rank: int,
                      *, iters: int = 2, seed: int = 0, chunk: int = 64) -> torch.Tensor:
    """Diag++ estimate of the squared column norms of every row's Jacobian: an orthonormal basis Q
    (rank columns) of J's leading range from a randomised range finder, the exact part
    ||Q^T J e_i||^2 from `rank` VJPs, plus Hutchinson with the probes (K, *out) projected off Q.
    Unbiased; x (B, *in) -> (B, *in) float32."""
    with torch.no_grad():
        out_shape = tuple(fb(x).shape[1:])
    gen = torch.Generator().manual_seed(seed + 1)  # test matrix independent of the probes
    Q = range_basis_batched(fb, x, rank, iters=iters, generator=gen, chunk=chunk, out_shape=out_shape)
    exact_part = _basis_rows(fb, x, Q, out_shape, chunk).float().pow(2).sum(0)  # (B, n)
    resid = _residual_probes(Q, probes)
    rows = vjp_rows_batched(fb, x, resid.to(x.dtype), chunk=chunk)  # (K, B, *in)
    return (exact_part.reshape(x.shape) + rows.float().pow(2).mean(0)).clamp_min(0)


# --- maps and cubes ----------------------------------------------------------------------------
def _passes_per_timestep(estimator: str, K: int, rank: int, iters: int) -> int:
    if estimator == "hutchinson":
        return K
    if estimator == "rsvd":
        return (K + RSVD_OVERSAMPLE) * (2 + 2 * iters)
    return rank * (2 + 2 * iters) + K


def _batch_sq(adapter: ModelAdapter, schedule: Schedule, idx: torch.Tensor, states: torch.Tensor, spec: RateSpec,
              opts: ProbeOptions, chunk: int, probes: torch.Tensor | None) -> torch.Tensor:
    """Squared element rates (B, C, H, W) of the states at grid indices idx (B,); `chunk` is the
    resolved number of probe x timestep pairs per pass (opts.chunk is not read)."""
    fb = batched_rate_function(adapter, schedule, idx, spec.definition)
    x = states.to(adapter.device, adapter.dtype)
    per = max(1, chunk // len(idx))  # probes per vmap call: about `chunk` samples in flight
    iters = spec.iters
    with adapter.autodiff():
        if opts.estimator == "hutchinson":
            return hutchinson_sq_batched(fb, x, probes, chunk=per)
        if opts.estimator == "rsvd":
            return rsvd_sq_batched(fb, x, opts.K, iters=iters, seed=opts.seed, chunk=per)
        return diagpp_sq_batched(fb, x, probes, opts.basis_rank(), iters=iters, seed=opts.seed, chunk=per)


def _out_shape(adapter: ModelAdapter, schedule: Schedule, x: torch.Tensor, definition: str) -> tuple[int, ...]:
    fb = batched_rate_function(adapter, schedule, torch.tensor([0]), definition)
    with torch.no_grad():
        return tuple(fb(x[None].to(adapter.device, adapter.dtype)).shape[1:])


def element_rates(adapter: ModelAdapter, schedule: Schedule, i: int, x_t: torch.Tensor, spec: RateSpec = RateSpec(),
                  opts: ProbeOptions = ProbeOptions()) -> torch.Tensor:
    """Element rates (C, H, W) of one state x_t (C, H, W) at grid index i by the estimator of `opts`
    (the same probes as `rate_cube` with the same seed; opts.chunk None is 64, opts.batch is not read).
    `projected` is always computed from its own rank-spec.k basis, as in `rates.exact_element_rates`."""
    check_estimator(opts.estimator, opts.K)
    chunk = 64 if opts.chunk is None else opts.chunk
    x_t = x_t.to(adapter.device, adapter.dtype)
    if opts.estimator == "exact" or spec.definition == "projected":
        return exact_element_rates(adapter, schedule, i, x_t, spec, chunk=chunk)
    probes = None
    if opts.estimator != "rsvd":
        probes = hutchinson_probes(_out_shape(adapter, schedule, x_t, spec.definition), opts.K, opts.seed,
                                   device=adapter.device, dtype=adapter.dtype)
    sq = _batch_sq(adapter, schedule, torch.tensor([i]), x_t[None], spec, opts, chunk, probes)
    return sq[0].sqrt().to(x_t.dtype)


def cube_chunk(adapter: ModelAdapter, schedule: Schedule, x_t: torch.Tensor, spec: RateSpec, estimator: str, K: int,
               budget: MemoryBudget | None = None) -> int:
    """Probe x timestep pairs per autodiff pass that keep a cube's peak memory under the budget
    (`workbench.memory`): measured once per model, resolution and rate definition."""
    work = K * len(schedule)
    kinds = ("vjp",) if estimator == "hutchinson" else ("vjp", "jvp")
    definition = "h" if spec.definition == "projected" else spec.definition
    fb = batched_rate_function(adapter, schedule, torch.tensor([0]), definition)
    return autodiff_chunk(adapter, fb, x_t[None], kinds=kinds, key=definition, cap=default_cap(adapter, work),
                          budget=budget, what="probe")


def rate_cube(adapter: ModelAdapter, trajectory: Trajectory, spec: RateSpec = RateSpec(),
              opts: ProbeOptions = ProbeOptions(), *, progress: ProgressFn | None = None,
              budget: MemoryBudget | None = None) -> torch.Tensor:
    """Per-pixel rates over the whole trajectory: (N, H, W) float32 on the CPU, indexed like the schedule.

    opts: the estimator and its probes (`ProbeOptions`); opts.chunk None is as many probe x timestep
    pairs per reverse pass as the memory budget allows (`budget`, else the adapter's, else automatic;
    see `workbench.memory`). progress: a `Progress` (phase "timesteps", done of N) after every pass. `exact` and the
    `projected` definition go one timestep at a time through `rates.exact_element_rates`.
    """
    estimator, K, seed = opts.estimator, opts.K, opts.seed
    check_estimator(estimator, K)
    N = len(trajectory.schedule)
    _, H, W = adapter.model_shape
    cube = torch.empty(N, H, W, dtype=torch.float32)
    chunk = opts.chunk
    if chunk is None:
        chunk = cube_chunk(adapter, trajectory.schedule, trajectory.states[0], spec, estimator, K, budget)
    if estimator == "exact" or spec.definition == "projected":
        for i in range(N):
            er = exact_element_rates(adapter, trajectory.schedule, i, trajectory.states[i], spec, chunk=chunk)
            cube[i] = pixel_rates(er, spec.channel).float().cpu()
            emit(progress, "timesteps", i + 1, N)
        return cube
    if estimator == "hutchinson":
        stats = hutchinson_cube_stats(adapter, trajectory, spec, replace(opts, chunk=chunk), progress=progress)
        return cube_rates_se(stats, spec.channel).rate.float()
    batch = opts.batch
    if batch is None:
        batch = max(1, chunk // max(1, K if estimator != "rsvd" else K + RSVD_OVERSAMPLE))
    batch = max(1, min(int(batch), N))
    probes = None
    if estimator != "rsvd":
        out_shape = _out_shape(adapter, trajectory.schedule, trajectory.states[0], spec.definition)
        probes = hutchinson_probes(out_shape, K, seed, device=adapter.device, dtype=adapter.dtype)
    for s in range(0, N, batch):
        idx = torch.arange(s, min(s + batch, N))
        sq = _batch_sq(adapter, trajectory.schedule, idx, trajectory.states[idx], spec, opts, chunk, probes)
        cube[idx] = pixel_rates(sq.sqrt(), spec.channel).float().cpu()
        emit(progress, "timesteps", int(idx[-1]) + 1, N)
    return cube


# --- cubes with standard errors, refinable -------------------------------------------------------
def hutchinson_cube_stats(adapter: ModelAdapter, trajectory: Trajectory, spec: RateSpec = RateSpec(),
                          opts: ProbeOptions = ProbeOptions(), *, first: int = 0,
                          progress: ProgressFn | None = None) -> ProbeStats:
    """Hutchinson sufficient statistics of a whole trajectory from probes first .. first + opts.K - 1
    of opts.seed (the same probes at every timestep): `ProbeStats` with sums (N, C, H, W) and
    (N, C(C+1)/2, H, W) float64 on the CPU. `cube_rates_se` turns them into rate and rate_se (N, H, W);
    `merge_stats` adds a later block exactly. opts (`ProbeOptions`): K, seed, kind, shift_period, chunk
    (None: 64) and batch; its estimator must be hutchinson. progress as in `rate_cube`."""
    if opts.estimator != "hutchinson":
        raise WorkbenchError(f"probe statistics come from the hutchinson estimator, not {opts.estimator!r}: "
                             "pass ProbeOptions(estimator='hutchinson')")
    K, seed, kind, shift_period = opts.K, opts.seed, opts.kind, opts.shift_period
    chunk = 64 if opts.chunk is None else opts.chunk
    check_estimator("hutchinson", K)
    if spec.definition == "projected":
        raise WorkbenchError("the projected rate has no Hutchinson estimate: use definition h, eps or step")
    if shift_period is not None and int(shift_period) < 1:
        raise WorkbenchError(f"shift period {shift_period} is too small: pass the model's downsampling (e.g. 8) or None")
    N = len(trajectory.schedule)
    out_shape = _out_shape(adapter, trajectory.schedule, trajectory.states[0], spec.definition)
    probes = probe_block(out_shape, seed, first, K, kind=kind, device=adapter.device, dtype=adapter.dtype)
    batch = max(1, min(int(opts.batch or max(1, chunk // K)), N))
    parts = []
    for s in range(0, N, batch):
        idx = torch.arange(s, min(s + batch, N))
        fb = batched_rate_function(adapter, trajectory.schedule, idx, spec.definition)
        x = trajectory.states[idx].to(adapter.device, adapter.dtype)
        with adapter.autodiff():
            per = max(1, chunk // len(idx))
            st = (hutchinson_stats_batched(fb, x, probes, first=first, chunk=per) if not shift_period else
                  shifted_stats_batched(fb, x, probes, first=first, seed=seed, period=shift_period, chunk=per))
        parts.append((st.sum_s.cpu(), st.sum_ss.cpu()))
        emit(progress, "timesteps", int(idx[-1]) + 1, N)
    return ProbeStats(K=int(K), first=int(first), sum_s=torch.cat([a for a, _ in parts]),
                      sum_ss=torch.cat([b for _, b in parts]))


def refine_cube_stats(adapter: ModelAdapter, trajectory: Trajectory, stats: ProbeStats, spec: RateSpec = RateSpec(),
                      opts: ProbeOptions = ProbeOptions(), *,
                      progress: ProgressFn | None = None) -> ProbeStats:
    """Statistics of K2 = opts.K probes from those of stats.K <= K2: runs only the probes
    stats.first + stats.K .. stats.first + K2 - 1 (new, disjoint) and merges them exactly, equal (to
    float64 rounding) to `hutchinson_cube_stats(adapter, trajectory, spec, opts, first=stats.first)`.
    opts' seed, kind and shift_period must be the ones the stats were made with."""
    K2 = opts.K
    if K2 < stats.K:
        raise WorkbenchError(f"--refine-to {K2} is below the {stats.K} probes the cube already has: pass K2 >= {stats.K}")
    if K2 == stats.K:
        return stats
    more = hutchinson_cube_stats(adapter, trajectory, spec, replace(opts, K=K2 - stats.K), first=stats.first + stats.K,
                                 progress=progress)
    return merge_stats(stats, more)


def cube_rates_se(stats: ProbeStats, channel: int | None = None) -> RatesWithSE:
    """Pixel rates and their standard errors (N, H, W) float64 from a cube's statistics
    (`uncertainty.pixel_rates_se`: channel mean of element rates, delta method)."""
    return pixel_rates_se(stats, channel)


def has_probe_stats(estimator: str, definition: str) -> bool:
    """True when cubes of this estimator and rate definition carry Hutchinson probe statistics
    (refinable, with standard errors): Hutchinson, any definition but the projected rate."""
    return estimator == "hutchinson" and definition != "projected"


@dataclass(frozen=True)
class CubeEstimate:
    """A cube's rates: `rate` and `rate_se` (N, H, W) float32 on the CPU (SE 0 for `exact`, NaN where
    the estimator gives none) and the probe statistics `stats` (None for estimators without them)."""

    rate: torch.Tensor
    rate_se: torch.Tensor
    stats: ProbeStats | None

    @classmethod
    def from_stats(cls, stats: ProbeStats, channel: int | None = None) -> "CubeEstimate":
        """Rate and SE of Hutchinson probe statistics (`cube_rates_se`), with the statistics."""
        r = cube_rates_se(stats, channel)
        return cls(r.rate.float(), r.rate_se.float(), stats)


def estimate_cube(adapter: ModelAdapter, trajectory: Trajectory, spec: RateSpec, *, estimator: str, K: int,
                  seed: int = 0, rank: int | None = None,
                  progress: ProgressFn | None = None) -> CubeEstimate:
    """The one estimator choice of a cube: rate, SE and statistics of a trajectory.

    Hutchinson (`has_probe_stats`): K probes of `seed` at once, rate and SE from their statistics
    (`CubeEstimate.from_stats`; probes run block by block are turned into a cube the same way).
    Other estimators: `rate_cube` (K = the rSVD rank, `rank` the basis of rsvd+hutchinson, the
    projected dimension is `spec.k`), SE 0 for `exact` and NaN otherwise. `progress` as
    in `rate_cube`."""
    if has_probe_stats(estimator, spec.definition):
        chunk = cube_chunk(adapter, trajectory.schedule, trajectory.states[0], spec, "hutchinson", K)
        stats = hutchinson_cube_stats(adapter, trajectory, spec, ProbeOptions(K=K, seed=seed, chunk=chunk),
                                      progress=progress)
        return CubeEstimate.from_stats(stats, spec.channel)
    cube = rate_cube(adapter, trajectory, spec, ProbeOptions(estimator, K, seed, rank=rank), progress=progress)
    se = torch.zeros_like(cube) if estimator == "exact" else torch.full_like(cube, float("nan"))
    return CubeEstimate(cube, se, None)
