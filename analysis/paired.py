"""The paper's paired test: is a map (the fluctuation map) higher at a salient pixel than at a
non-salient one, image after image?

Choice rule (recorded in every result): on the image's own grid, the *salient* set is the pixels
whose ground-truth density is at or above its (1 - q) quantile, the *non-salient* set those at or
below its q quantile (q = `frac`, default 0.05); per image and draw, one pixel is drawn uniformly
from each set with `numpy.random.default_rng([seed, draw, image index])`. The map is compared at the
two pixels: a win when the salient pixel's value is higher, a tie when equal (ties are left out of
the sign test, as usual).

Statistics: the fraction of images won in draw 0 (the paper's protocol) with a Wilson 95 % interval
and a two-sided exact sign test (scipy.stats.binomtest); and, for stability, the mean over `draws`
draws and the *all-pairs* per-image probability P(map[salient] > map[non-salient]) (a Mann-Whitney
AUC over every salient x non-salient pair), with its sign test over images (> 0.5 or not).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy.stats import binomtest, rankdata

from workbench.errors import WorkbenchError

__all__ = ["PairedRule", "salient_sets", "draw_pairs", "paired_test", "wilson_interval", "pair_auc"]


@dataclass(frozen=True)
class PairedRule:
    """How pixels are chosen: top/bottom `frac` of the density, `draws` draws from `seed`."""

    frac: float = 0.05
    draws: int = 100
    seed: int = 0

    def __post_init__(self):
        if not 0 < self.frac <= 0.5:
            raise WorkbenchError(f"the paired test's fraction must be in (0, 0.5], got {self.frac}")
        if self.draws < 1:
            raise WorkbenchError(f"the paired test needs at least one draw, got {self.draws}")


def salient_sets(density: np.ndarray, frac: float) -> tuple[np.ndarray, np.ndarray]:
    """Flat indices of the salient (density >= (1-frac) quantile) and non-salient (<= frac quantile) pixels."""
    d = np.asarray(density, dtype=np.float64).ravel()
    if not np.isfinite(d).all():
        raise WorkbenchError("the saliency ground truth contains NaN or inf")
    hi, lo = np.quantile(d, 1 - frac), np.quantile(d, frac)
    if not hi > lo:
        raise WorkbenchError("the saliency ground truth is flat: no pixel is more salient than another")
    return np.flatnonzero(d >= hi), np.flatnonzero(d <= lo)


def draw_pairs(density: np.ndarray, rule: PairedRule, image_index: int) -> np.ndarray:
    """(draws, 2) flat pixel indices [salient, non-salient] for one image, reproducible from the rule."""
    top, bottom = salient_sets(density, rule.frac)
    out = np.empty((rule.draws, 2), dtype=np.int64)
    for k in range(rule.draws):
        rng = np.random.default_rng([rule.seed, k, image_index])
        out[k] = rng.choice(top), rng.choice(bottom)
    return out


def pair_auc(values: np.ndarray, density: np.ndarray, frac: float) -> float:
    """P(value at a salient pixel > value at a non-salient pixel) over all pairs (ties count 1/2)."""
    v = np.asarray(values, dtype=np.float64).ravel()
    top, bottom = salient_sets(density, frac)
    r = rankdata(np.concatenate([v[top], v[bottom]]))
    n1, n0 = top.size, bottom.size
    return float((r[:n1].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def wilson_interval(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion k / n (95 % by default)."""
    if n == 0:
        raise WorkbenchError("no images to test: the confidence interval needs at least one")
    p = k / n
    den = 1 + z * z / n
    mid = (p + z * z / (2 * n)) / den
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return float(mid - half), float(mid + half)


def _sign(wins: int, losses: int) -> float:
    n = wins + losses
    return float(binomtest(wins, n, 0.5).pvalue) if n else 1.0


def paired_test(maps: dict[str, list[np.ndarray]], densities: list[np.ndarray], rule: PairedRule = PairedRule(),
                names: list[str] | None = None) -> dict:
    """Run the paired test for every named map list (one map per image, each at its density's shape).

    Returns a JSON-ready dict: the rule, and per map: n, wins/losses/ties in draw 0, fraction,
    wilson_95, sign_p, mean fraction over draws, and the all-pairs AUC per image with its summary.
    """
    n = len(densities)
    if n == 0:
        raise WorkbenchError("no images to test")
    pairs = [draw_pairs(d, rule, i) for i, d in enumerate(densities)]
    out = {"rule": asdict(rule) | {"description": "top/bottom frac quantile of the fixation density at image "
                                                  "resolution; one pixel each, uniform, rng([seed, draw, i])"},
           "images": list(names) if names is not None else list(range(n)), "maps": {}}
    for key, ms in maps.items():
        if len(ms) != n:
            raise WorkbenchError(f"{key}: {len(ms)} maps for {n} images")
        wins = np.zeros((rule.draws, n), dtype=np.int8)  # +1 win, -1 loss, 0 tie
        aucs = []
        for i, (m, d) in enumerate(zip(ms, densities)):
            m = np.asarray(m, dtype=np.float64)
            if m.shape != np.shape(d):
                raise WorkbenchError(f"{key}: map {m.shape} and ground truth {np.shape(d)} differ in size: "
                                     "resize the map first (analysis.datasets.resize_map)")
            if not np.isfinite(m).all():
                raise WorkbenchError(f"{key}: the map of image {i} contains NaN or inf")
            flat = m.ravel()
            wins[:, i] = np.sign(flat[pairs[i][:, 0]] - flat[pairs[i][:, 1]])
            aucs.append(pair_auc(m, d, rule.frac))
        w0, l0 = int((wins[0] > 0).sum()), int((wins[0] < 0).sum())
        aucs = np.asarray(aucs)
        above, below = int((aucs > 0.5).sum()), int((aucs < 0.5).sum())
        out["maps"][key] = {
            "n": n, "wins": w0, "losses": l0, "ties": n - w0 - l0, "fraction": w0 / n,
            "wilson_95": list(wilson_interval(w0, n)), "sign_p": _sign(w0, l0),
            "fraction_mean_over_draws": float((wins > 0).mean()),
            "fraction_draws_p05_p95": [float(np.quantile((wins > 0).mean(1), q)) for q in (0.05, 0.95)],
            "pair_auc_mean": float(aucs.mean()), "pair_auc_images_above_half": above,
            "pair_auc_fraction": above / n, "pair_auc_wilson_95": list(wilson_interval(above, n)),
            "pair_auc_sign_p": _sign(above, below), "pair_auc_per_image": aucs.round(6).tolist(),
            "win_draw0_per_image": wins[0].tolist()}
    return out
