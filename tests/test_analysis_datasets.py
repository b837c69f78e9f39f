"""Saliency data set loaders on small fixture files written in each layout, the one resize, baselines."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.io as sio
from PIL import Image
from scipy.ndimage import gaussian_filter

from analysis.baselines import centre_bias, chance, spectral_residual
from analysis.datasets import (dataset_images, fixation_density, fixation_points, load_cat2000, load_osie, load_pairs,
                               open_dataset, resize_map, select_images)
from workbench.errors import WorkbenchError

from conftest import SHARED_DATA


def _image(path, size=(30, 40), seed=0):
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (*size, 3), dtype=np.uint8)).save(path)


def write_osie(root, subjects_per_image, size=(30, 40)):
    """OSIE layout: data/stimuli/*.jpg + data/eye/fixations.mat (MATLAB struct array)."""
    stim = root / "data" / "stimuli"
    stim.mkdir(parents=True)
    (root / "data" / "eye").mkdir()
    rec = np.zeros((1, len(subjects_per_image)), dtype=[("img", "O"), ("subjects", "O")])
    for i, subs in enumerate(subjects_per_image):
        name = f"{100 + i}.jpg"
        _image(stim / name, size, i)
        s = np.zeros((1, len(subs)), dtype=[("fix_x", "O"), ("fix_y", "O"), ("fix_duration", "O")])
        for j, (xs, ys) in enumerate(subs):
            s[0, j] = (np.array(xs, float), np.array(ys, float), np.full(len(xs), 200.0))
        rec[0, i] = (name, s)
    sio.savemat(root / "data" / "eye" / "fixations.mat", {"fixations": rec})
    return root


def test_osie_loader_points_and_density(tmp_path):
    root = write_osie(tmp_path, [[([1, 40], [1, 30]), ([10.4], [5.6])], [([20, 21], [15, 15])]])
    items = load_osie(root, sigma=3)
    assert [it.name for it in items] == ["100", "101"]
    f = items[0].fixations
    assert f.shape == (30, 40) and f.sum() == 3
    assert f[0, 0] and f[29, 39] and f[5, 9]  # 1-based (x, y) -> [row y-1, col x-1]; (10.4, 5.6) -> (10, 6)
    ref = gaussian_filter(f.astype(float), 3, mode="constant")
    np.testing.assert_allclose(items[0].density, ref / ref.max(), rtol=1e-5)
    assert items[1].fixations.sum() == 2
    assert len(load_osie(root, names=["101.jpg"])) == 1
    assert open_dataset(root)[0].name == "100"


def test_osie_counts_repeated_fixations_and_drops_outside(tmp_path):
    root = write_osie(tmp_path, [[([5, 5], [5, 5]), ([5, 500], [5, 500])]])
    it = load_osie(root, sigma=2)[0]
    assert it.fixations.sum() == 1  # three fixations on one pixel, one outside the image


def test_osie_empty_fixation_list_is_an_error(tmp_path):
    root = write_osie(tmp_path, [[([], [])], [([3], [3])]])
    with pytest.raises(WorkbenchError, match="empty fixation list"):
        load_osie(root)
    assert [it.name for it in load_osie(root, drop_empty=True)] == ["101"]


def test_cat2000_layout(tmp_path):
    for cat in ("Action", "Art"):
        (tmp_path / "Stimuli" / cat).mkdir(parents=True)
        (tmp_path / "FIXATIONMAPS" / cat).mkdir(parents=True)
        (tmp_path / "FIXATIONLOCS" / cat).mkdir(parents=True)
        _image(tmp_path / "Stimuli" / cat / "001.jpg")
        d = np.zeros((30, 40))
        d[10, 12] = 1
        d = gaussian_filter(d, 4)
        Image.fromarray((255 * d / d.max()).astype(np.uint8)).save(tmp_path / "FIXATIONMAPS" / cat / "001.png")
    loc = np.zeros((30, 40), np.uint8)
    loc[10, 12] = loc[3, 4] = 1
    sio.savemat(tmp_path / "FIXATIONLOCS" / "Action" / "001.mat", {"fixLocs": loc})
    items = load_cat2000(tmp_path)
    assert [it.name for it in items] == ["Action/001", "Art/001"]
    assert items[0].fixations.sum() == 2 and items[0].fixations[3, 4]
    assert items[1].fixations[10, 12]  # no FIXATIONLOCS: the density's peak stands in
    assert items[0].density.max() == pytest.approx(1.0) and items[0].category == "Action"
    assert len(open_dataset(tmp_path)) == 2
    # a map whose size differs from its image is an error
    Image.fromarray(np.full((10, 10), 200, np.uint8)).save(tmp_path / "FIXATIONMAPS" / "Art" / "001.png")
    with pytest.raises(WorkbenchError, match="resolution"):
        load_cat2000(tmp_path)


def test_pairs_layout_binary_and_grey_maps(tmp_path):
    _image(tmp_path / "a.jpg")
    fix = np.zeros((30, 40), np.uint8)
    fix[15, 22] = 255
    Image.fromarray(fix).save(tmp_path / "a_fixmap.png")
    _image(tmp_path / "b.png")
    grey = (255 * gaussian_filter(fix.astype(float), 5) / gaussian_filter(fix.astype(float), 5).max()).astype(np.uint8)
    Image.fromarray(grey).save(tmp_path / "b_map.png")
    items = load_pairs(tmp_path, sigma=2)
    assert [it.name for it in items] == ["a", "b"]
    assert items[0].fixations.sum() == 1 and items[0].fixations[15, 22]
    assert items[1].fixations[15, 22] and items[1].fixations.sum() == 1  # the grey map's peak
    assert [p.name for p in dataset_images(tmp_path)] == ["a.jpg", "b.png"]
    Image.fromarray(np.zeros((30, 40), np.uint8)).save(tmp_path / "a_fixmap.png")
    with pytest.raises(WorkbenchError, match="all zeros"):
        load_pairs(tmp_path)


def test_resize_map_one_rule_both_ways():
    m = np.arange(64 * 64, dtype=np.float32).reshape(64, 64)
    up = resize_map(m, (600, 800))
    assert up.shape == (600, 800) and up.dtype == np.float32
    back = resize_map(up, (64, 64))
    np.testing.assert_allclose(back[2:-2, 2:-2], m[2:-2, 2:-2], atol=1.0)  # away from the clamped border
    c = np.full((8, 8), 3.0)
    assert np.allclose(resize_map(c, (31, 17)), 3.0)  # constants stay constant
    with pytest.raises(WorkbenchError, match="2-D"):
        resize_map(np.zeros((2, 3, 4)), (4, 4))


def test_fixation_helpers_bad_inputs():
    with pytest.raises(WorkbenchError, match="pair up"):
        fixation_points([1, 2], [1], (5, 5))
    with pytest.raises(WorkbenchError, match="empty fixation list"):
        fixation_density(np.zeros((5, 5), bool))


def test_select_images_splits():
    names = [f"{i:04d}.jpg" for i in range(700)]
    from pathlib import Path

    paths = [Path(n) for n in names]
    held = select_images(paths, "held-out")
    assert [p.name for p in held] == names[650:]
    dev = select_images(paths, "dev")
    assert len(dev) == 24 and not set(dev) & set(held) and dev[1].name == names[27]
    assert select_images(paths, "3") == held[:3]
    with pytest.raises(WorkbenchError, match="--images"):
        select_images(paths, "some")


def test_baselines():
    cb = centre_bias((60, 80))
    assert cb.shape == (60, 80) and cb.max() == pytest.approx(1.0, abs=0.01)
    assert cb[0, 0] == pytest.approx(np.exp(-0.5 * ((29.5 / 15) ** 2 + (39.5 / 20) ** 2)), rel=1e-5)
    assert np.unravel_index(cb.argmax(), cb.shape) in {(29, 39), (29, 40), (30, 39), (30, 40)}
    ch = chance((60, 80), 3)
    assert np.array_equal(ch, chance((60, 80), 3)) and not np.array_equal(ch, chance((60, 80), 4))
    # spectral residual singles out the odd one out: a bright square on a faint noise texture
    img = 100 + 10 * np.random.default_rng(0).random((96, 128))
    img[40:52, 90:102] = 255
    sr = spectral_residual(img)
    assert sr.shape == (96, 128)
    y, x = np.unravel_index(sr.argmax(), sr.shape)
    assert 40 <= y < 52 and 90 <= x < 102  # the peak is on the square
    assert sr[40:52, 90:102].mean() > 10 * sr[:, :40].mean()


@pytest.mark.skipif(not (SHARED_DATA / "osie").exists(), reason="shared OSIE data not present")
def test_real_osie_file_reads():
    items = load_osie(SHARED_DATA / "osie", names=["1001.jpg", "1700.jpg"])
    assert [it.size for it in items] == [(600, 800)] * 2
    assert all(it.fixations.sum() > 50 for it in items)
