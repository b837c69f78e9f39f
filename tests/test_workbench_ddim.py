"""workbench.ddim: the one DDIM loop against diffusers' schedulers."""
from __future__ import annotations

import pytest
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


def _newton_inverse_step(ad, sched, x_src, dst, iters=30):
    """The exact inverse of the generation step dst -> src, x_src = A y + B eps(y, t_dst), solved for y
    by a Newton-chord method: the dense Jacobian of the residual, computed once, then y -= J^-1 r(y)
    until the residual vanishes (independent of the fixed-point refinement under test)."""
    src = dst - 1
    a_d, s_d = sched.signal_noise(dst)
    a_s, s_s = sched.signal_noise(src)
    A, B = a_s / a_d, s_s - a_s * s_d / a_d
    t = int(sched.timesteps[dst])
    shape = x_src.shape

    def residual(y_flat):
        y = y_flat.reshape(shape)
        return (A * y + B * ad.eps(y, t, level=(a_d, s_d)) - x_src).flatten()

    y = x_src.flatten().clone()
    lu = torch.linalg.lu_factor(torch.autograd.functional.jacobian(residual, y).double())
    for _ in range(iters):
        with torch.no_grad():
            r = residual(y)
            if float(r.abs().max()) < 1e-6:
                break
            y = y - torch.linalg.lu_solve(*lu, r.double()[:, None])[:, 0].float()
    assert float(residual(y).abs().max()) < 1e-5  # converged: y solves the step
    return y.reshape(shape)


def test_refined_inversion_step_converges_to_the_exact_inverse_of_generation(tiny_pixel_dir):
    ad = load_model(tiny_pixel_dir, device="cpu")
    sched = make_schedule(ad, 20)
    clean = torch.rand(1, *ad.model_shape, generator=torch.Generator().manual_seed(7)) * 2 - 1
    x_src = ddim_loop(ad, clean, sched, direction="invert", span=(-1, 0))  # the state at grid index 0
    exact = _newton_inverse_step(ad, sched, x_src, dst=1)
    x_dst = {k: ddim_loop(ad, x_src, sched, direction="invert", span=(0, 1), fixed_point=k) for k in (0, 1, 2, 6)}
    errors = [float((x_dst[k] - exact).abs().max()) for k in (0, 1, 2, 6)]
    assert errors[0] > 1e-3, errors  # the plain step is not the exact inverse
    assert errors[1] < errors[0] / 3 and errors[2] < errors[1] and errors[3] < 1e-4, errors


@pytest.mark.parametrize("family", ["pixel", "sd"])
def test_refined_inversion_reconstructs_better_than_plain(tiny_pixel_dir, tiny_sd_dir, family):
    ad = load_model(tiny_pixel_dir if family == "pixel" else tiny_sd_dir, device="cpu")  # its own copy: changed below
    with torch.no_grad():  # a random network's eps swings wildly; a milder one behaves more like a trained model
        ad.unet.conv_out.weight.mul_(0.1)
        ad.unet.conv_out.bias.mul_(0.1)
    sched = make_schedule(ad, 20)
    x0 = torch.rand(ad.model_shape, generator=torch.Generator().manual_seed(2)) * 2 - 1
    err = {}
    for k in (0, 1, 3):
        traj = invert(ad, x0, sched, fixed_point=k)
        err[k] = float((generate(ad, traj.x_T[None], sched)[0] - traj.x0).abs().max())
    assert err[1] < err[0] / 2 and err[3] < err[1], err


def test_fixed_point_bounds_are_one_clear_error(tiny_pixel_dir):
    from workbench.errors import WorkbenchError

    ad = load_model(tiny_pixel_dir, device="cpu")
    sched = make_schedule(ad, 3)
    x0 = torch.zeros(1, *ad.model_shape)
    for bad in (-1, 9, 1.5, "2"):
        with pytest.raises(WorkbenchError, match="fixed-point iterations must be a whole number from 0 to 8"):
            ddim_loop(ad, x0, sched, direction="invert", fixed_point=bad)
    # generation has no inversion step to refine: the argument is ignored there
    assert ddim_loop(ad, x0, sched, direction="generate", fixed_point=5).shape == x0.shape
