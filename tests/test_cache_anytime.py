"""cache.anytime: a cube refined batch by batch equals the cube computed at once (exact merge)."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from cache.anytime import batch_sizes, cube_batches
from cache.build import compute_cube
from cache.params import CubeParams
from cache.build import split_half_stability


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, tiny_pixel_dir):
    from workbench.adapters import load_model

    img = tmp_path_factory.mktemp("any") / "n.png"
    Image.fromarray(np.random.default_rng(2).integers(0, 255, (20, 24, 3), dtype=np.uint8)).save(img)
    return load_model(tiny_pixel_dir, device="cpu"), img


def test_batch_sizes_double_from_the_first_and_end_at_K():
    assert batch_sizes(32) == [4, 8, 16, 32]
    assert batch_sizes(12, 4) == [4, 8, 12] and batch_sizes(3) == [3] and batch_sizes(1, 1) == [1]


def test_batches_merge_exactly_report_stability_and_stop_when_stable(tiny):
    """Each batch's cube is the K-probe cube computed at once; the stability is the halves' by hand;
    `until_stable` stops at the first batch reaching it and keeps that cube (key of K probes)."""
    from workbench.estimators import ProbeOptions, cube_rates_se, hutchinson_cube_stats
    from workbench.fluctuation import fluctuation
    from workbench.pipeline import prepare_image
    from workbench.rates import RateSpec
    from workbench.uncertainty import ProbeStats

    ad, img = tiny
    steps = list(cube_batches(ad, img, CubeParams(steps=4, K=16)))
    assert [(b.K, b.final, int(b.ds.attrs["complete"]), int(b.ds.attrs["K"])) for b in steps] == \
        [(4, False, 0, 4), (8, False, 0, 8), (16, True, 1, 16)]
    once = {K: compute_cube(ad, img, CubeParams(steps=4, K=K)) for K in (4, 8)}
    for b in steps[:2]:
        np.testing.assert_allclose(b.ds["rate"].values, once[b.K]["rate"].values, rtol=1e-6)
        np.testing.assert_allclose(b.ds["rate_se"].values, once[b.K]["rate_se"].values, rtol=1e-5)
    # the stability after batch 2: halves are probes {0,1,4,5} and {2,3,6,7}, by hand
    traj = prepare_image(ad, Image.open(img), steps=4).trajectory
    ts = traj.schedule.timesteps.numpy()
    blocks = {f: hutchinson_cube_stats(ad, traj, RateSpec("h"), ProbeOptions(K=2, seed=0), first=f) for f in (0, 2, 4, 6)}

    def half(a, b):  # two non-adjacent blocks: add their sums
        return ProbeStats(K=a.K + b.K, first=a.first, sum_s=a.sum_s + b.sum_s, sum_ss=a.sum_ss + b.sum_ss)

    maps = [fluctuation(cube_rates_se(h).rate.double().numpy(), ts, window=3, t_b=0, axis=0)
            for h in (half(blocks[0], blocks[4]), half(blocks[2], blocks[6]))]
    assert steps[1].stability == pytest.approx(split_half_stability(*maps), abs=1e-9)

    assert steps[1].stability > steps[0].stability  # the seeded data make batch 2 the first to reach R
    R = steps[1].stability - 1e-9
    stop = list(cube_batches(ad, img, CubeParams(steps=4, K=16), until_stable=R))
    assert [b.K for b in stop] == [4, 8] and stop[-1].final
    last = stop[-1].ds
    assert last.attrs["key"] == once[8].attrs["key"] and int(last.attrs["complete"]) == 1
    assert last.attrs["until_stable"] == pytest.approx(R) and last.attrs["stability"] == pytest.approx(R, abs=1e-6)
    np.testing.assert_allclose(last["probe_sum_s"].values, once[8]["probe_sum_s"].values, rtol=1e-12)


def test_a_window_longer_than_the_curve_gives_no_stability_but_the_cube(tiny):
    ad, img = tiny
    (only,) = cube_batches(ad, img, CubeParams(steps=4, K=2), window=10)
    assert only.final and only.K == 2 and np.isnan(only.stability) and int(only.ds.attrs["complete"]) == 1
