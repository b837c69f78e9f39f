"""Choosing the fluctuation's window L and cut t_b by measurement on a development split.

For every (L, t_b, normalise) on a grid, the fluctuation map of each development image is brought to
the image's resolution (the one resize) and scored against its fixations: mean AUC-Judd (the
selection criterion: rank-based, threshold-free, the paper's question "higher where people look"),
NSS and CC, and the paired test's all-pairs P(salient > non-salient). Run it on images the report
does not use (`--images dev`), then pass the winner as `--window/--t-b` or make it the default.
"""
from __future__ import annotations

import numpy as np

from workbench.errors import WorkbenchError
from workbench.progress import ProgressFn, emit

from .datasets import resize_map
from .fluctuation import fluctuation
from .metrics import CC, NSS, AUC_Judd
from .paired import pair_auc

__all__ = ["WINDOWS", "T_BS", "sweep", "best"]

WINDOWS = (3, 5, 8, 12, 20)
T_BS = (0, 100, 200, 300, 400, 500, 600)


def sweep(cubes: list, items: list, *, windows=WINDOWS, t_bs=T_BS, normalise=(False, True), frac: float = 0.05,
          progress: ProgressFn | None = None) -> list[dict]:
    """One row per feasible (L, t_b, normalise): mean and s.e.m. of AUC_Judd, NSS, CC, pair_auc over images.
    `progress`: a `Progress` of phase "tune" (combinations tried of all) after each feasible one."""
    if len(cubes) != len(items) or not cubes:
        raise WorkbenchError("the sweep needs one cube per image, and at least one image")
    rows = []
    combos = [(L, tb, nm) for L in windows for tb in t_bs for nm in normalise]
    for k, (L, tb, nm) in enumerate(combos):
        ts = cubes[0]["timestep"].values
        if int((ts > tb).sum()) < L:
            continue
        vals = {"AUC_Judd": [], "NSS": [], "CC": [], "pair_auc": []}
        for ds, it in zip(cubes, items):
            m = resize_map(fluctuation(ds["rate"].values, ds["timestep"].values, window=L, t_b=tb, axis=0,
                                       normalise=nm), it.size)
            vals["AUC_Judd"].append(AUC_Judd(m, it.fixations))
            vals["NSS"].append(NSS(m, it.fixations))
            vals["CC"].append(CC(m, it.density))
            vals["pair_auc"].append(pair_auc(m, it.density, frac))
        row = {"window": L, "t_b": tb, "normalise": nm, "n": len(items)}
        for key, v in vals.items():
            v = np.asarray(v)
            row[key] = float(v.mean())
            row[key + "_sem"] = float(v.std(ddof=1) / np.sqrt(v.size)) if v.size > 1 else 0.0
        rows.append(row)
        emit(progress, "tune", k + 1, len(combos))
    return rows


def best(rows: list[dict], key: str = "AUC_Judd") -> dict:
    """The row with the highest mean `key`."""
    if not rows:
        raise WorkbenchError("no feasible (L, t_b) in the sweep: lower t_b or L")
    return max(rows, key=lambda r: r[key])
