"""The period-8 grid power of a map (workbench.fluctuation.grid_power, linear scale) against closed forms,
and workbench.model_eval's sample maps."""
from __future__ import annotations

import numpy as np
import pytest

from workbench.fluctuation import grid_power


def grid_power_fraction(m, period=8):
    return grid_power(m, period, log=False)


def _cos(h: int, w: int, ky: int, kx: int, amp: float) -> np.ndarray:
    y, x = np.mgrid[:h, :w]
    return amp * np.cos(2 * np.pi * (ky * y / h + kx * x / w))


def test_lattice_and_off_lattice_cosines_split_as_their_squared_amplitudes():
    # (8, 16) on a 64x64 map repeats every 8 pixels; (3, 5) does not.
    m = _cos(64, 64, 8, 16, 2.0) + _cos(64, 64, 3, 5, 1.0) + 7.0
    assert grid_power_fraction(m) == pytest.approx(4.0 / (4.0 + 1.0), abs=1e-9)


def test_a_tiled_8x8_pattern_is_all_grid_and_a_smooth_ramp_none():
    rng = np.random.default_rng(1)
    tile = rng.normal(size=(8, 8))
    assert grid_power_fraction(np.tile(tile, (8, 6))) == pytest.approx(1.0, abs=1e-9)  # 64 x 48
    assert grid_power_fraction(_cos(64, 64, 1, 0, 1.0)) == pytest.approx(0.0, abs=1e-12)


def test_white_noise_gives_the_lattice_share_of_the_bins():
    rng = np.random.default_rng(0)
    fr = np.mean([grid_power_fraction(rng.normal(size=(64, 64))) for _ in range(200)])
    assert fr == pytest.approx(63 / 4095, rel=0.15)


def test_fluctuation_maps_of_samples_on_the_tiny_model(tiny_pixel_dir):
    from workbench.adapters import load_model
    from workbench.model_eval import fluctuation_maps, generate_samples, tile_grid

    adapter = load_model(tiny_pixel_dir, device="cpu")
    samples = generate_samples(adapter, 2, steps=4, seed=0)
    assert samples.shape == (2, 3, *adapter.image_size) and samples.abs().max() <= 1
    assert tile_grid(samples).size == (2 * adapter.image_size[1], 2 * adapter.image_size[0])
    maps = fluctuation_maps(adapter, samples, steps=6, K=2)
    assert maps.shape == (2, *adapter.model_shape[1:]) and np.isfinite(maps).all() and (maps >= 0).all()
    m = maps[0].astype(np.float64)  # eta^2 of the 4x4 phase by a loop over the phases
    between = sum(m[py::4, px::4].size * (m[py::4, px::4].mean() - m.mean()) ** 2 for py in range(4) for px in range(4))
    assert grid_power_fraction(maps[0], period=4) == pytest.approx(between / ((m - m.mean()) ** 2).sum())


def test_eval_model_grid_on_photos_is_paired_on_the_same_photos(tiny_pixel_dir, tmp_path):
    """`grid-photos` scores every 6th evaluation photo (the same ones for every model), unlike the
    samples, which differ between models."""
    from PIL import Image

    from bench.eval_model import evaluate

    rng = np.random.default_rng(0)
    files = []
    for i in range(7):
        f = tmp_path / f"p{i}.png"
        Image.fromarray(rng.integers(0, 255, (24, 32, 3), dtype=np.uint8)).save(f)
        files.append(f)
    got = evaluate(str(tiny_pixel_dir), ("grid-photos",), files=files)["photos_fluctuation_grid8_power"]
    assert got["images"] == ["p0.png", "p6.png"] and len(got["per_image"]) == 2
    assert 0 <= got["mean"] <= 1 and got["mean"] == pytest.approx(np.mean(got["per_image"]), abs=1e-4)


@pytest.mark.parametrize("a", [1.0, 2.0, 3.0])
def test_spectrum_slope_recovers_the_exponent_of_synthetic_power_law_noise(a):
    from workbench.model_eval import spectrum_slope

    rng = np.random.default_rng(0)
    n = 64
    ky, kx = np.meshgrid(np.fft.fftfreq(n) * n, np.fft.fftfreq(n) * n, indexing="ij")
    k = np.hypot(ky, kx)
    amp = np.where(k > 0, k, 1.0) ** (-a / 2)  # power ~ 1/k^a
    slopes = []
    for _ in range(20):
        spec = amp * (rng.normal(size=(n, n)) + 1j * rng.normal(size=(n, n)))
        slopes.append(spectrum_slope(np.fft.ifft2(spec).real))
    assert np.mean(slopes) == pytest.approx(-a, abs=0.1)


def test_energy_distance_matches_scipy_in_one_dimension_and_hand_values():
    from scipy.stats import energy_distance as scipy_energy

    from workbench.model_eval import energy_distance

    rng = np.random.default_rng(0)
    u, v = rng.normal(size=30), rng.normal(0.5, 2.0, size=20)
    assert energy_distance(u, v) == pytest.approx(scipy_energy(u, v), rel=1e-9)
    assert energy_distance(np.array([[0.0, 0, 0]]), np.array([[3.0, 4, 0]])) == pytest.approx(np.sqrt(2 * 5.0))
    pts = rng.normal(size=(10, 3))
    assert energy_distance(pts, pts) == pytest.approx(0.0, abs=1e-7)


def test_x0_from_noise_follows_the_prediction_type(tiny_pixel_dir):
    """A network that outputs zeros: an epsilon model's x0 is x / alpha, a v model's alpha x."""
    import torch

    from workbench.adapters import load_model
    from workbench.model_eval import x0_from_noise

    adapter = load_model(tiny_pixel_dir, device="cpu")
    adapter.predict = lambda x, t: torch.zeros_like(x)
    x = torch.randn((4, *adapter.model_shape), generator=torch.Generator().manual_seed(0)).numpy()
    for kind, factor in (("epsilon", lambda al: 1 / al), ("v_prediction", lambda al: al)):
        adapter.prediction_type = kind
        got = x0_from_noise(adapter, ts=(900, 500), n=4, seed=0)
        for t in (900, 500):
            al = float(adapter.alphas_cumprod[t]) ** 0.5
            x0 = factor(al) * x.reshape(4, 3, -1)
            assert got[t]["abs_channel_mean"] == pytest.approx(np.abs(x0.mean(-1)).mean(), rel=1e-4)
            assert got[t]["spatial_std"] == pytest.approx(x0.std(-1).mean(), rel=1e-4)


def test_sample_vs_photo_stats_on_flat_and_textured_images():
    import torch

    from workbench.model_eval import sample_vs_photo_stats

    g = torch.Generator().manual_seed(0)
    flat = torch.zeros(6, 3, 16, 16) + torch.linspace(-0.8, 0.8, 6).view(6, 1, 1, 1)
    textured = torch.rand(5, 3, 16, 16, generator=g) * 2 - 1
    got = sample_vs_photo_stats(flat, textured)
    assert got["samples"]["spatial_std"]["median"] == pytest.approx(0.0, abs=1e-6)
    assert got["photos"]["spatial_std"]["median"] == pytest.approx(1 / np.sqrt(12), rel=0.1)  # uniform on [0, 1]
    assert got["mean_colour_energy_distance"] > 0.1 and (got["n_samples"], got["n_photos"]) == (6, 5)
    assert sample_vs_photo_stats(textured, textured)["mean_colour_energy_distance"] == pytest.approx(0, abs=1e-6)
