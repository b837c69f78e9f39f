"""workbench.curves: pixel curves are the per-timestep exact maps read at the pixels."""
from __future__ import annotations

import torch

from workbench.curves import pixel_curves
from workbench.ddim import invert, make_schedule
from workbench.rates import RateSpec, exact_element_rates


def test_pixel_curves_match_per_timestep_exact_maps(tiny_adapter):
    sched = make_schedule(tiny_adapter, 6)
    traj = invert(tiny_adapter, torch.randn(tiny_adapter.model_shape), sched)
    curves = pixel_curves(tiny_adapter, traj, [(1, 2), (3, 0)], RateSpec("h"))
    for i in range(6):
        m = exact_element_rates(tiny_adapter, sched, i, traj.states[i], RateSpec("h")).mean(0)
        torch.testing.assert_close(curves[:, i], torch.stack([m[1, 2], m[3, 0]]), rtol=1e-4, atol=1e-6)
