"""The paper's own saliency protocol (Appendix B.1 of arXiv 2406.18588), on any data set layout.

Per image: one pixel among those with the *maximal* ground-truth value and one among those with the
*minimal* value (drawn uniformly with `numpy.random.default_rng([seed, draw, image index])`), both
mapped to the model grid by the whole-image resize (pixel (y, x) of an H0 x W0 image -> model pixel
(floor(y H / H0), floor(x W / W0))). The generation curve of each model pixel is scored by the
fluctuation: the variance inside sliding windows of L timesteps over t > t_b, averaged over the
windows (`analysis.fluctuation`, raw curves, not normalised, as the paper describes). A win is an
image where the salient pixel's fluctuation is higher. Reported: the fraction of wins in draw 0
(Wilson 95 % interval, two-sided sign test), and the mean fraction over `draws` draws, for every
(L, t_b) asked (a setting that leaves fewer than L timesteps above t_b in some cube is left out).
"""
from __future__ import annotations

import numpy as np

from workbench.errors import WorkbenchError

from .fluctuation import fluctuation
from .paired import _sign, wilson_interval

__all__ = ["extreme_pixels", "paper_protocol"]


def extreme_pixels(density: np.ndarray, rule: str = "extreme") -> tuple[np.ndarray, np.ndarray]:
    """(rows, cols) index arrays of the maximal-value and the minimal-value pixels of a ground truth."""
    d = np.asarray(density, dtype=np.float64)
    if d.ndim != 2 or not np.isfinite(d).all():
        raise WorkbenchError("the ground truth must be a finite 2-D map")
    hi, lo = d.max(), d.min()
    if not hi > lo:
        raise WorkbenchError("the ground truth is flat: no pixel is more salient than another")
    return np.flatnonzero(d == hi), np.flatnonzero(d == lo)


def paper_protocol(cubes: list[tuple[np.ndarray, np.ndarray]], densities: list[np.ndarray], *,
                   windows=(3, 5, 8), t_bs=(0, 200, 400), draws: int = 100, seed: int = 0,
                   normalise: bool = False) -> dict:
    """Run the protocol. cubes: (rate (N, H, W), timesteps (N,)) per image; densities: the ground
    truth at each image's resolution. Returns a JSON-ready dict with one entry per (L, t_b)."""
    if len(cubes) != len(densities) or not cubes:
        raise WorkbenchError(f"the paper protocol needs one cube per ground truth, got {len(cubes)} and "
                             f"{len(densities)}")
    n = len(cubes)
    pix = []  # (draws, 2) flat model-grid indices per image
    for i, ((rate, _), d) in enumerate(zip(cubes, densities)):
        top, bottom = extreme_pixels(d)
        H0, W0 = np.shape(d)
        H, W = np.shape(rate)[1:]
        out = np.empty((draws, 2), dtype=np.int64)
        for k in range(draws):
            rng = np.random.default_rng([seed, k, i])
            for j, pool in enumerate((top, bottom)):
                y, x = divmod(int(rng.choice(pool)), W0)
                out[k, j] = (y * H // H0) * W + x * W // W0
        pix.append(out)
    results = []
    for L in windows:
        for t_b in t_bs:
            wins = np.zeros((draws, n), dtype=np.int8)
            for i, (rate, ts) in enumerate(cubes):
                ts = np.asarray(ts)
                if int((ts > t_b).sum()) < L:
                    break
                flat = np.asarray(rate, dtype=np.float64).reshape(len(ts), -1)
                cols = np.unique(pix[i])
                f = fluctuation(flat[:, cols], ts, window=L, t_b=t_b, axis=0, normalise=normalise)
                val = dict(zip(cols.tolist(), f.tolist()))
                wins[:, i] = np.sign([val[a] - val[b] for a, b in pix[i].tolist()])
            else:
                w0, l0 = int((wins[0] > 0).sum()), int((wins[0] < 0).sum())
                results.append({"window": int(L), "t_b": float(t_b), "n": n, "wins": w0, "losses": l0,
                                "ties": n - w0 - l0, "fraction": w0 / n, "wilson_95": list(wilson_interval(w0, n)),
                                "sign_p": _sign(w0, l0), "fraction_mean_over_draws": float((wins > 0).mean()),
                                "win_draw0_per_image": wins[0].tolist()})
    return {"rule": {"salient": "a pixel among the maximal ground-truth values", "non_salient":
                     "a pixel among the minimal ground-truth values", "draws": draws, "seed": seed,
                     "normalise": bool(normalise), "mapping": "whole-image resize to the model grid"},
            "settings": results}
