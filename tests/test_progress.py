"""workbench.progress: one event type. Every producer of progress (engine, cube pipeline, batches, checks,
analysis, the Explore view's live cube) hands its callback `Progress` instances, with the phase, counts and
fields its consumers read; the tiny pixel model at 3 DDIM steps and 2 probes keeps this fast."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import xarray as xr
from PIL import Image

from analysis.cubes import cubes_for
from analysis.datasets import SaliencyItem
from analysis.export import export_maps
from analysis.predictor import score_maps
from analysis.tuning import sweep
from cache.anytime import CubeBatch
from cache.build import compute_cube
from cache.check import check_store
from cache.params import CubeParams, FluctuationParams
from cache.store import CubeStore
from dashboards.catalog import CubeCatalog
from workbench import estimators
from workbench.curves import pixel_curves
from workbench.estimators import ProbeOptions, rate_cube
from workbench.pipeline import prepare_image
from workbench.progress import Progress, by_phase, emit, relabel
from workbench.rates import RateSpec

PARAMS = CubeParams(K=2, steps=3, seed=1)


class Spy(list):
    """A progress callback that keeps every event and checks it is a `Progress` with sane counts."""

    def __call__(self, p) -> None:
        assert isinstance(p, Progress), p
        assert p.done >= 0 and (p.total is None or p.done <= p.total), p
        self.append(p)

    def phases(self) -> list[str]:
        return list(dict.fromkeys(p.phase for p in self))

    def of(self, phase: str) -> list[Progress]:
        return [p for p in self if p.phase == phase]


@pytest.fixture(scope="module")
def pix(tiny_pixel_dir):
    from workbench.adapters import load_model

    return load_model(tiny_pixel_dir, device="cpu")


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("progress-images")
    rng = np.random.default_rng(0)
    paths = []
    for i in range(2):
        p = folder / f"im{i}.png"
        Image.fromarray(rng.integers(0, 256, (12, 14, 3), dtype=np.uint8)).save(p)
        paths.append(p)
    return paths


def test_the_event_and_its_helpers():
    p = Progress("cube", 3, 12)
    assert p.fraction == 0.25 and Progress("export", 3).fraction is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.done = 4
    seen = Spy()
    emit(None, "cube", 1, 2)  # no callback: nothing to do
    emit(seen, "block", 2, 4, K=2, stability=0.5)
    relabel(seen, "cubes variant")(Progress("images", 1, 2))
    assert relabel(None, "x") is None
    by_phase(images=seen)(Progress("cube", 1, 2))  # another phase: ignored
    by_phase(images=seen)(Progress("images", 2, 2))
    assert seen == [Progress("block", 2, 4, K=2, stability=0.5), Progress("cubes variant", 1, 2),
                    Progress("images", 2, 2)]


def test_engine_producers_emit_progress(pix, images):
    inv, est, cur = Spy(), Spy(), Spy()
    prep = prepare_image(pix, images[0], steps=3, progress=inv)
    assert [(p.phase, p.done, p.total) for p in inv] == [("invert", i, 3) for i in (1, 2, 3)]
    rate_cube(pix, prep.trajectory, RateSpec(), ProbeOptions("hutchinson", K=2, chunk=8), progress=est)
    assert est.phases() == ["timesteps"] and est[-1].done == est[-1].total == 3
    pixel_curves(pix, prep.trajectory, [(0, 0)], RateSpec(channel=0), chunk=3, progress=cur)
    assert [(p.phase, p.done, p.total) for p in cur] == [("pixels", 1, 1)]


def test_cube_pipeline_and_live_batches_emit_progress(pix, images, tmp_path, monkeypatch):
    spy = Spy()
    compute_cube(pix, images[0], PARAMS, progress=spy)
    assert spy.phases() == ["cube", "block"]
    assert spy.of("cube")[-1].done == spy.of("cube")[-1].total == PARAMS.K * PARAMS.steps
    (block,) = spy.of("block")
    assert block.K == block.done == PARAMS.K and np.isnan(block.stability)  # one block, no halves
    live = Spy()
    CubeCatalog(tmp_path / "cat").add_image(pix, images[1], PARAMS, progress=live, live=True, first=1)
    assert live.phases() == ["cube", "batch"] and live.of("cube")[-1].total == PARAMS.K * PARAMS.steps
    shown = live.of("batch")
    assert [(p.done, p.total, p.K) for p in shown] == [(1, 2, 1), (2, 2, 2)]
    assert all(isinstance(p.result, CubeBatch) and p.result.K == p.K for p in shown) and shown[-1].result.final

    def estimate(adapter, trajectory, spec, *, progress=None, **_):  # an rSVD stand-in: its events, not its cost
        N, (_, H, W) = len(trajectory.schedule), adapter.model_shape
        emit(progress, "timesteps", N, N)
        return estimators.CubeEstimate(torch.ones(N, H, W), torch.full((N, H, W), float("nan")), None)

    monkeypatch.setattr(estimators, "estimate_cube", estimate)
    other = Spy()
    compute_cube(pix, images[0], dataclasses.replace(PARAMS, estimator="rsvd"), progress=other)
    assert [(p.phase, p.done, p.total) for p in other] == [("cube", 3, 3)]  # the estimator's events, renamed


def test_store_batch_and_check_emit_progress(pix, images, tmp_path):
    store = CubeStore(tmp_path / "st")
    spy = Spy()
    store.build(images, pix, PARAMS, progress=spy)
    assert set(spy.phases()) == {"images", "cube", "block"}
    assert [(p.done, p.total) for p in spy.of("images")][-1] == (2, 2)
    stable = Spy()
    store.until_stable(images[:1], pix, dataclasses.replace(PARAMS, seed=7), 0.5, fluct=FluctuationParams(window=2, t_b=0.0), block=1, cap=2,
                       progress=stable)
    (b,) = stable.of("block")
    assert (b.name, b.K, b.total) == (images[0].stem, 2, 2) and np.isfinite(b.stability)
    checked = Spy()
    check_store(store, progress=checked)
    assert checked.phases() == ["check"] and checked[-1].done == checked[-1].total >= 1
    analysed = Spy()
    cubes_for(images, pix, store=tmp_path / "st", params=PARAMS, progress=analysed)
    assert [(p.phase, p.done, p.total) for p in analysed] == [("images", 1, 2), ("images", 2, 2)]  # stored: no work
    exported = Spy()
    export_maps([(p.stem, store.open(store.key_of(pix, p, PARAMS))) for p in images], tmp_path / "out",
                fluct=FluctuationParams(window=2, t_b=0.0), formats=("npy",), progress=exported)
    assert [(p.phase, p.done, p.total, p.name) for p in exported] == [("export", i + 1, None, im.stem)
                                                                      for i, im in enumerate(images)]


def test_analysis_scoring_emits_progress():
    ts = np.arange(901, 0, -100)
    rate = np.random.default_rng(0).random((ts.size, 8, 8)).astype(np.float32) + 1
    cube = xr.Dataset({"rate": (("t", "y", "x"), rate)}, coords={"timestep": ("t", ts)})
    fix = np.zeros((8, 8), bool)
    fix[[1, 5], [2, 6]] = True
    density = np.zeros((8, 8), np.float32)
    density[:, :4] = 1.0
    items = [SaliencyItem(n, None, fix, density + 0.01) for n in ("a", "b")]
    scored, tuned = Spy(), Spy()
    score_maps({"m": [rate[0], rate[1]], "n": [rate[2], rate[3]]}, items, progress=scored)
    assert [(p.phase, p.done, p.total) for p in scored] == [("metrics", 1, 2), ("metrics", 2, 2)]
    sweep([cube, cube], items, windows=(3,), t_bs=(0, 100), normalise=(False,), progress=tuned)
    assert [(p.phase, p.done, p.total) for p in tuned] == [("tune", 1, 2), ("tune", 2, 2)]
