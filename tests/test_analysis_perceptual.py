"""analysis.perceptual: perceptual state distances against a manual computation."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from workbench.errors import WorkbenchError


def test_perceptual_state_pixels_matches_manual(tiny_pixel_dir):
    import torch

    from analysis.perceptual import curve_agreement, perceptual_states, predicted_x0, state_derivative
    from workbench.adapters import load_model
    from workbench.pipeline import prepare_image

    a = load_model(tiny_pixel_dir, device="cpu")
    img = Image.fromarray(np.random.default_rng(0).integers(0, 255, (16, 16, 3), dtype=np.uint8))
    traj = prepare_image(a, img, steps=6).trajectory
    x0h = predicted_x0(a, traj)
    i = 3  # manual x0_hat at one timestep
    t, al = int(traj.schedule.timesteps[i]), float(traj.schedule.alphas[i])
    with torch.no_grad():
        e = a.eps(traj.states[i][None], t)[0]
    manual = (traj.states[i] - (1 - al) ** 0.5 * e) / al ** 0.5
    torch.testing.assert_close(x0h[i], manual, rtol=1e-4, atol=1e-5)
    mask = np.zeros((2, 16, 16), np.float32)
    mask[0, :8] = 1
    mask[1, 8:] = 1
    s = perceptual_states(a, traj, mask, features="pixels")
    d = (x0h - traj.x0[None]).pow(2).mean(1).numpy()
    np.testing.assert_allclose(s[0], d[:, :8].mean((1, 2)), rtol=1e-5)
    np.testing.assert_allclose(s[1], d[:, 8:].mean((1, 2)), rtol=1e-5)
    su = perceptual_states(a, traj, mask, features="unet")
    assert su.shape == (2, 6) and np.isfinite(su).all() and (su >= 0).all()
    ts = np.array([0, 10, 20, 40])
    np.testing.assert_allclose(state_derivative(np.array([0.0, 1, 2, 4]), ts), 0.1)
    agree = curve_agreement(np.array([1.0, 2, 3]), np.array([2.0, 4, 6]))
    assert agree["pearson"] == pytest.approx(1.0) and agree["tv"] == pytest.approx(0.0)
    with pytest.raises(WorkbenchError, match="empty"):
        perceptual_states(a, traj, np.zeros((16, 16)), features="pixels")
