"""The fluctuation map (and baselines) scored as saliency predictors, per image and averaged.

Every map is first brought to the image's own resolution with `analysis.datasets.resize_map`, then
scored with `analysis.metrics.score_all` against the image's fixations and density. The shuffled
AUC's negatives are the fixations of `n_other` other images of the set (drawn with `seed`, their
coordinates scaled to this image's size).
"""
from __future__ import annotations

import numpy as np

from workbench.errors import WorkbenchError
from workbench.progress import ProgressFn, emit

from .datasets import SaliencyItem
from .metrics import METRICS, score_all

__all__ = ["other_fixations", "score_maps", "summarise_scores", "HIGHER_IS_BETTER"]

HIGHER_IS_BETTER = {name: name != "KLD" for name in METRICS}


def other_fixations(items: list[SaliencyItem], i: int, *, n_other: int = 10, seed: int = 0) -> np.ndarray:
    """Union of the fixations of up to `n_other` images other than i, scaled to image i's size (H, W) bool."""
    H, W = items[i].size
    others = [j for j in range(len(items)) if j != i]
    out = np.zeros((H, W), dtype=bool)
    if not others:
        return out
    rng = np.random.default_rng([seed, i])
    for j in rng.choice(others, size=min(n_other, len(others)), replace=False):
        ys, xs = np.nonzero(items[j].fixations)
        h, w = items[j].size
        out[np.minimum((ys * H) // h, H - 1), np.minimum((xs * W) // w, W - 1)] = True
    return out


def score_maps(maps: dict[str, list[np.ndarray]], items: list[SaliencyItem], *, n_other: int = 10, seed: int = 0,
               metrics=tuple(METRICS), progress: ProgressFn | None = None) -> dict[str, list[dict[str, float]]]:
    """Per map name, a list (one per item) of {metric: value}. Maps must have their item's size.
    `progress`: a `Progress` of phase "metrics" (maps scored of all) after each map."""
    if not items:
        raise WorkbenchError("no images to score")
    others = [other_fixations(items, i, n_other=n_other, seed=seed) if len(items) > 1 else None
              for i in range(len(items))]
    out: dict[str, list[dict[str, float]]] = {}
    for k, (name, ms) in enumerate(maps.items()):
        if len(ms) != len(items):
            raise WorkbenchError(f"{name}: {len(ms)} maps for {len(items)} images")
        rows = []
        for i, (m, it) in enumerate(zip(ms, items)):
            try:
                rows.append(score_all(m, fixations=it.fixations, density=it.density, other_fixations=others[i],
                                      metrics=metrics, seed=seed))
            except WorkbenchError as exc:
                raise WorkbenchError(f"{name} on {it.name}: {exc}") from None
        out[name] = rows
        emit(progress, "metrics", k + 1, len(maps))
    return out


def summarise_scores(scores: dict[str, list[dict[str, float]]]) -> dict[str, dict[str, dict[str, float]]]:
    """Per map and metric: mean, sd, sem and n over images."""
    out = {}
    for name, rows in scores.items():
        out[name] = {}
        for metric in rows[0]:
            v = np.array([r[metric] for r in rows], dtype=np.float64)
            sd = float(v.std(ddof=1)) if v.size > 1 else 0.0
            out[name][metric] = {"mean": float(v.mean()), "sd": sd, "sem": sd / np.sqrt(v.size), "n": int(v.size)}
    return out
