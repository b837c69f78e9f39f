"""workbench.ddim: the one DDIM loop against diffusers' schedulers."""
from __future__ import annotations

import torch

from workbench.adapters import load_model
from workbench.ddim import ddim_loop, generate, invert, make_schedule


def test_inversion_matches_diffusers_schedulers(tiny_pixel_dir):
    from diffusers import DDIMInverseScheduler, DDIMScheduler

    ad = load_model(tiny_pixel_dir, device="cpu")
    sched = make_schedule(ad, 10)
    x0 = torch.rand(1, *ad.model_shape, generator=torch.Generator().manual_seed(5)) * 2 - 1
    ours = ddim_loop(ad, x0, sched, direction="invert")
    inv = DDIMInverseScheduler.from_config(ad.scheduler_config, clip_sample=False, set_alpha_to_one=False)
    inv.set_timesteps(10)
    x = x0.clone()
    with torch.no_grad():
        for t in inv.timesteps:
            x = inv.step(ad.eps(x, int(t)), t, x).prev_sample
    torch.testing.assert_close(ours, x, rtol=1e-4, atol=1e-4)
    gen = DDIMScheduler.from_config(ad.scheduler_config, clip_sample=False, set_alpha_to_one=False)
    gen.set_timesteps(10)
    y = ours.clone()
    with torch.no_grad():
        for t in gen.timesteps:
            y = gen.step(ad.eps(y, int(t)), t, y, eta=0.0).prev_sample
    torch.testing.assert_close(generate(ad, ours, sched), y, rtol=1e-4, atol=1e-4)


def test_invert_then_generate_round_trips_a_smooth_model(tiny_pixel_dir):
    ad = load_model(tiny_pixel_dir, device="cpu")
    with torch.no_grad():
        ad.unet.conv_out.weight.zero_()  # constant eps: DDIM inversion is then exact
    sched = make_schedule(ad, 20)
    x0 = torch.rand(ad.model_shape) * 2 - 1
    traj = invert(ad, x0, sched)
    rec = generate(ad, traj.x_T[None], sched)[0]
    assert (rec - x0).abs().max() < 1e-3
