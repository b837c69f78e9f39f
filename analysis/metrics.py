"""Saliency metrics with the MIT saliency benchmark's names and conventions (array kernels).

Conventions (Bylinskii et al., "What do different evaluation metrics tell us about saliency
models?", TPAMI 2019, and the benchmark's MATLAB code):
  saliency map S and ground truth share one shape (H, W): resize S first with
  `analysis.datasets.resize_map` (a mismatch is an error, never a silent resize);
  fixations are a binary map (H, W) of fixated pixels; the fixation *density* map is the
  blurred fixation map.
  AUC_Judd    thresholds at every fixated pixel's saliency; TP = fraction of fixations above,
              FP = fraction of non-fixated pixels above; trapezoid area. Optional tie-breaking
              jitter (MIT default on, seeded here).
  AUC_Borji   S normalised to [0, 1]; negatives: saliency at uniformly random pixels (as many as
              fixations, `n_splits` draws); thresholds 0:step:max; area averaged over splits.
  sAUC        as AUC_Borji, negatives = fixations of *other* images (`other_fixations` map).
  NSS         mean of (S - mean S) / std S (ddof = 1) at fixations.
  CC          Pearson correlation of S and the density map.
  SIM         sum of min(S / sum S, D / sum D) (each first scaled to [0, 1]).
  KLD         sum D' log(eps + D' / (S' + eps)), S', D' normalised to sum 1, eps = 2.2204e-16.
Degenerate input (no fixations, a constant map such as all zeros, NaN) raises a one-line `WorkbenchError`:
no metric ever returns a silent NaN.
"""
from __future__ import annotations

import numpy as np

from workbench.errors import WorkbenchError

__all__ = ["AUC_Judd", "AUC_Borji", "sAUC", "NSS", "CC", "SIM", "KLD", "METRICS", "score_all", "EPS"]

EPS = 2.220446049250313e-16  # MATLAB eps, as in the benchmark code


def _check(s: np.ndarray, ref: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(s, dtype=np.float64)
    ref = np.asarray(ref)
    if s.ndim != 2:
        raise WorkbenchError(f"a saliency map must be 2-D (H, W), got shape {s.shape}")
    if s.shape != ref.shape:
        raise WorkbenchError(f"saliency map {s.shape[1]}x{s.shape[0]} and {what} {ref.shape[1]}x{ref.shape[0]} "
                             "differ in size: resize the map first (analysis.datasets.resize_map)")
    if not np.isfinite(s).all():
        raise WorkbenchError("the saliency map contains NaN or inf: fix the map (or the cube it came from)")
    if ref.dtype != bool and not np.isfinite(ref).all():
        raise WorkbenchError(f"the {what} contains NaN or inf: fix the ground truth")
    return s, ref


def _fix(s: np.ndarray, fixations: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    s, f = _check(s, fixations, "fixation map")
    f = f > 0
    if not f.any():
        raise WorkbenchError("the fixation map has no fixations: this image cannot be scored by a "
                             "fixation-based metric (drop it, or check the fixation loader)")
    return s, f


def _unit(s: np.ndarray) -> np.ndarray:
    lo, hi = s.min(), s.max()
    return (s - lo) / (hi - lo) if hi > lo else np.zeros_like(s)


def _not_constant(s: np.ndarray, metric: str) -> None:
    if not s.max() > s.min():
        raise WorkbenchError(f"{metric} of a constant map is undefined: the map is flat (all {s.flat[0]:g})")


def AUC_Judd(saliency: np.ndarray, fixations: np.ndarray, *, jitter: bool = True, seed: int = 0) -> float:
    """AUC-Judd of a saliency map (H, W) against a binary fixation map (H, W); 0.5 = chance."""
    s, f = _fix(saliency, fixations)
    _not_constant(s, "AUC_Judd")
    if f.all():
        raise WorkbenchError("every pixel is fixated, so there are no negatives: AUC_Judd is undefined")
    if jitter:  # break ties as the MIT code does (1e-7 uniform noise), seeded
        s = s + np.random.default_rng(seed).random(s.shape) / 1e7
    s = _unit(s)
    sth = np.sort(s[f])[::-1]
    n_fix, n_pix = sth.size, s.size
    flat = np.sort(s.ravel())
    above = n_pix - np.searchsorted(flat, sth, side="left")  # #pixels with s >= thresh
    tp = np.concatenate([[0.0], np.arange(1, n_fix + 1) / n_fix, [1.0]])
    fp = np.concatenate([[0.0], (above - np.arange(1, n_fix + 1)) / (n_pix - n_fix), [1.0]])
    return float(np.trapezoid(tp, fp))


def _auc_thresholds(sth: np.ndarray, neg: np.ndarray, step: float) -> float:
    hi = max(sth.max(), neg.max())
    thr = np.arange(0, hi + 1e-12, step)[::-1]
    tp = np.concatenate([[0.0], (sth[None, :] >= thr[:, None]).mean(1), [1.0]])
    fp = np.concatenate([[0.0], (neg[None, :] >= thr[:, None]).mean(1), [1.0]])
    return float(np.trapezoid(tp, fp))


def AUC_Borji(saliency: np.ndarray, fixations: np.ndarray, *, n_splits: int = 100, step: float = 0.1,
              seed: int = 0) -> float:
    """AUC-Borji: fixated pixels versus uniformly random pixels, thresholds every `step` of [0, 1]."""
    s, f = _fix(saliency, fixations)
    _not_constant(s, "AUC_Borji")
    s = _unit(s)
    sth = s[f]
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, s.size, size=(n_splits, sth.size))
    flat = s.ravel()
    return float(np.mean([_auc_thresholds(sth, flat[idx[k]], step) for k in range(n_splits)]))


def sAUC(saliency: np.ndarray, fixations: np.ndarray, other_fixations: np.ndarray, *, n_splits: int = 100,
         step: float = 0.1, seed: int = 0) -> float:
    """Shuffled AUC: fixated pixels versus the saliency at other images' fixations (a binary map
    of the same size, e.g. the union of 10 other images' fixations); cancels centre bias."""
    s, f = _fix(saliency, fixations)
    _not_constant(s, "sAUC")
    _, o = _check(s, other_fixations, "other-fixation map")
    ind = np.flatnonzero(np.asarray(o).ravel() > 0)
    if ind.size == 0:
        raise WorkbenchError("sAUC needs other images' fixations, but the other-fixation map is empty: "
                             "score at least two images")
    s = _unit(s)
    sth = s[f]
    n_oth = min(sth.size, ind.size)
    rng = np.random.default_rng(seed)
    flat = s.ravel()
    return float(np.mean([_auc_thresholds(sth, flat[rng.permutation(ind)[:n_oth]], step)
                          for _ in range(n_splits)]))


def NSS(saliency: np.ndarray, fixations: np.ndarray) -> float:
    """Normalised scanpath saliency: mean z-scored saliency (ddof = 1) at the fixated pixels."""
    s, f = _fix(saliency, fixations)
    _not_constant(s, "NSS")
    z = (s - s.mean()) / s.std(ddof=1)
    return float(z[f].mean())


def CC(saliency: np.ndarray, density: np.ndarray) -> float:
    """Pearson linear correlation coefficient between a saliency map and a fixation density map."""
    s, d = _check(saliency, density, "density map")
    d = d.astype(np.float64)
    _not_constant(s, "CC")
    _not_constant(d, "CC (density map)")
    a = (s - s.mean()) / s.std(ddof=1)
    b = (d - d.mean()) / d.std(ddof=1)
    return float((a * b).sum() / (s.size - 1))


def _as_distribution(m: np.ndarray, what: str) -> np.ndarray:
    total = m.sum()
    if not total > 0:
        raise WorkbenchError(f"the {what} sums to zero, so it is no distribution: it must have some positive mass")
    return m / total


def SIM(saliency: np.ndarray, density: np.ndarray) -> float:
    """Similarity (histogram intersection) of the two maps as distributions; 1 = identical."""
    s, d = _check(saliency, density, "density map")
    _not_constant(s, "SIM")
    s = _as_distribution(_unit(s), "saliency map (after scaling to [0, 1])")
    d = _as_distribution(_unit(d.astype(np.float64)), "density map")
    return float(np.minimum(s, d).sum())


def KLD(saliency: np.ndarray, density: np.ndarray) -> float:
    """Kullback-Leibler divergence KL(density || saliency), both normalised to sum 1; 0 = identical."""
    s, d = _check(saliency, density, "density map")
    if (s < 0).any() or (np.asarray(d) < 0).any():
        raise WorkbenchError("KLD needs non-negative maps: shift or clip the saliency map to >= 0")
    s = _as_distribution(s, "saliency map")
    d = _as_distribution(d.astype(np.float64), "density map")
    return float((d * np.log(EPS + d / (s + EPS))).sum())


#: name -> (function, which ground truth it takes: "fixations" | "density" | "shuffled")
METRICS = {"AUC_Judd": (AUC_Judd, "fixations"), "AUC_Borji": (AUC_Borji, "fixations"),
           "sAUC": (sAUC, "shuffled"), "NSS": (NSS, "fixations"), "CC": (CC, "density"),
           "SIM": (SIM, "density"), "KLD": (KLD, "density")}


def score_all(saliency: np.ndarray, *, fixations: np.ndarray | None = None, density: np.ndarray | None = None,
              other_fixations: np.ndarray | None = None, metrics=tuple(METRICS), seed: int = 0) -> dict[str, float]:
    """All requested metrics whose ground truth is given (others are left out, not NaN).

    saliency, fixations (binary), density, other_fixations: (H, W) arrays of one shape.
    KLD is computed on the saliency map shifted to a minimum of 0.
    """
    out: dict[str, float] = {}
    for name in metrics:
        fn, kind = METRICS[name]
        if kind == "fixations" and fixations is not None:
            out[name] = fn(saliency, fixations, **({"seed": seed} if name != "NSS" else {}))
        elif kind == "shuffled" and fixations is not None and other_fixations is not None:
            out[name] = fn(saliency, fixations, other_fixations, seed=seed)
        elif kind == "density" and density is not None:
            s = np.asarray(saliency, dtype=np.float64)
            out[name] = fn(s - s.min() if name == "KLD" else s, density)
    return out
