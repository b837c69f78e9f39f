"""analysis.tuning: the (L, t_b, normalise) sweep on a development split, on cubes whose answer is known."""
from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from analysis.datasets import SaliencyItem
from analysis.tuning import best, sweep
from workbench.errors import WorkbenchError

TS = np.arange(981, 0, -98)  # 11 timesteps, 981 ... 1


def _cube(seed: int, H=8, W=8):
    """Rates that fluctuate in the left half (alternating 1, 3, 1, ...) and are flat (2) on the right."""
    rng = np.random.default_rng(seed)
    rate = np.full((TS.size, H, W), 2.0, np.float32)
    rate[:, :, : W // 2] = (1 + 2 * (np.arange(TS.size) % 2))[:, None, None] + 0.01 * rng.random((TS.size, H, W // 2))
    return xr.Dataset({"rate": (("t", "y", "x"), rate)}, coords={"timestep": ("t", TS)})


def _item(name, H=16, W=16):
    fix = np.zeros((H, W), bool)
    fix[[3, 8, 12], [1, 5, 2]] = True  # all in the left half: where the rates fluctuate
    dens = np.zeros((H, W), np.float32)
    dens[:, : W // 2] = 1.0
    return SaliencyItem(name, None, fix, dens + 0.01)


def test_only_feasible_combinations_are_scored_and_the_answer_is_found():
    cubes, items = [_cube(0), _cube(1)], [_item("a"), _item("b")]
    windows, t_bs = (3, 5, 8), (0, 400, 800)
    rows = sweep(cubes, items, windows=windows, t_bs=t_bs)
    # feasible: at least L timesteps above t_b (11, 7 and 2 of them)
    above = {tb: int((TS > tb).sum()) for tb in t_bs}
    want = [(L, tb, nm) for L in windows for tb in t_bs for nm in (False, True) if above[tb] >= L]
    assert [(r["window"], r["t_b"], r["normalise"]) for r in rows] == want
    assert len(want) == 10
    for r in rows:
        assert r["n"] == 2
        assert r["AUC_Judd"] > 0.8  # fixations where the map is high (half the image ties with them; chance 0.5)
        assert r["NSS"] > 0.9 and r["CC"] > 0.9
    top = best(rows)
    assert top["AUC_Judd"] == max(r["AUC_Judd"] for r in rows)
    assert best(rows, key="NSS")["NSS"] == max(r["NSS"] for r in rows)


def test_mean_and_standard_error_over_images():
    from analysis.datasets import resize_map
    from analysis.fluctuation import fluctuation
    from analysis.metrics import NSS

    cubes, items = [_cube(0), _cube(1), _cube(2)], [_item("a"), _item("b", 16, 24), _item("c")]
    (row,) = sweep(cubes, items, windows=(3,), t_bs=(0,), normalise=(False,))
    per = [NSS(resize_map(fluctuation(ds["rate"].values, TS, window=3, t_b=0, axis=0, normalise=False), it.size),
               it.fixations) for ds, it in zip(cubes, items)]
    assert row["NSS"] == pytest.approx(np.mean(per))
    assert row["NSS_sem"] == pytest.approx(np.std(per, ddof=1) / np.sqrt(3))
    (one,) = sweep(cubes[:1], items[:1], windows=(3,), t_bs=(0,), normalise=(False,))
    assert one["NSS_sem"] == 0.0 and one["NSS"] == pytest.approx(per[0])


def test_bad_inputs():
    with pytest.raises(WorkbenchError, match="one cube per image"):
        sweep([_cube(0)], [], windows=(3,), t_bs=(0,))
    with pytest.raises(WorkbenchError, match="no feasible"):
        best(sweep([_cube(0)], [_item("a")], windows=(20,), t_bs=(0,)))
