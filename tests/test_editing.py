"""Curve-matching edits on tiny models: second-order gradients against finite differences, the
loss going down, the blend, every task end to end, bad inputs (the metrics, masks, baselines and config
have their own files: test_editing_<module>.py)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from workbench.editing import EditConfig, run_edit
from workbench.editing.loop import sampled_rates
from workbench.editing.trajectory import channel_curves, generate_states
from workbench.errors import WorkbenchError
from workbench.pipeline import prepare_image
from workbench.rates import unit_tangents

FAST = dict(steps=5, t_b=100, blend_t=500, curve_pixels=2, refresh_every=4)


def _image(h=16, w=16, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([yy * 255 / h, xx * 255 / w, np.full((h, w), 120.0)], -1)
    return Image.fromarray(np.clip(base + rng.normal(0, 20, (h, w, 3)), 0, 255).astype(np.uint8))


def _mask(h=16, w=16):
    m = np.zeros((h, w), bool)
    m[4:11, 5:12] = True
    return m


@pytest.fixture(scope="module")
def pix64(tiny_pixel_dir):
    from workbench.adapters import load_model

    return load_model(tiny_pixel_dir, device="cpu", dtype=torch.float64)


@pytest.fixture(scope="module")
def pix(tiny_pixel_dir):
    from workbench.adapters import load_model

    return load_model(tiny_pixel_dir, device="cpu")


def test_rate_gradient_matches_finite_differences(pix64):
    """d r_t(x_t(x_T), e_p) / d x_T by second-order AD, through a blended 3-step chain, against
    central differences along a random direction (float64)."""
    prep = prepare_image(pix64, _image(), steps=5)
    traj = prep.trajectory
    sched = traj.schedule
    C, H, W = pix64.model_shape
    mask = torch.from_numpy(_mask()).double()
    blend = dict(original_states=traj.states, mask=mask, blend_t=int(sched.timesteps[3]))
    tangents = unit_tangents((C, H, W), torch.tensor([1 * H * W + 6 * W + 7, 0 * H * W + 8 * W + 9]), dtype=torch.float64)
    i = 1
    x = (traj.x_T[None] + 0.1 * torch.randn(1, C, H, W, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
         ).requires_grad_(True)

    def objective(z):
        with pix64.autodiff():
            return sampled_rates(pix64, z, sched, i, tangents, "h", **blend)[1].sum()

    with pix64.autodiff():
        g, = torch.autograd.grad(objective(x), x)
    v = torch.randn(x.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    eps = 1e-5
    with torch.no_grad():
        fd = (objective(x.detach() + eps * v) - objective(x.detach() - eps * v)) / (2 * eps)
    ad = (g * v).sum()
    assert g.abs().sum() > 0
    torch.testing.assert_close(ad, fd, rtol=1e-5, atol=1e-8)
    # the checkpointed chain gives the same gradient
    with pix64.autodiff():
        z = x.detach().clone().requires_grad_(True)
        gc, = torch.autograd.grad(sampled_rates(pix64, z, sched, i, tangents, "h", checkpoint=True, **blend)[1].sum(), z)
    torch.testing.assert_close(gc, g)


def _objective(adapter, x_T, traj, pixels, t_b, blend):
    """Mean rate over the given pixels, all channels and t > t_b along the blended trajectory of x_T."""
    states, _ = generate_states(adapter, x_T, traj.schedule, **blend)
    curves = channel_curves(adapter, traj.schedule, states, pixels)
    return float(curves[..., traj.schedule.timesteps > t_b].mean())


def test_optimisation_lowers_the_objective(pix):
    """Removal with the pseudo-curve minimises the region's rates for t > t_b: the full objective
    (every region pixel and channel, every t > t_b) is lower at the returned x_T."""
    img, mask = _image(), _mask()
    cfg = EditConfig(task="removal", n_iter=30, lr=0.05, **FAST)
    res = run_edit(pix, img, mask, cfg, baselines=False)
    prep = prepare_image(pix, img, steps=cfg.steps)
    M = torch.from_numpy(mask).float()
    pixels = [tuple(p) for p in torch.nonzero(M > 0.5).tolist()]
    blend = dict(original_states=prep.trajectory.states, mask=M, blend_t=cfg.blend_t)
    before = _objective(pix, res.x_T_original, prep.trajectory, pixels, cfg.t_b, blend)
    after = _objective(pix, res.x_T, prep.trajectory, pixels, cfg.t_b, blend)
    assert res.iterations_done == 30 and len(res.losses) == 30
    assert after < 0.97 * before, (before, after)


def test_transfer_moves_the_curve_towards_the_reference(pix):
    img, mask = _image(), _mask()
    cfg = EditConfig(task="transfer", n_iter=30, lr=0.02, **FAST)
    res = run_edit(pix, img, mask, cfg, ref_xy=(1, 14), baselines=False)
    prep = prepare_image(pix, img, steps=cfg.steps)
    sched = prep.trajectory.schedule
    M = torch.from_numpy(mask).float()
    pixels = [tuple(p) for p in torch.nonzero(M > 0.5).tolist()]
    blend = dict(original_states=prep.trajectory.states, mask=M, blend_t=cfg.blend_t)
    ref = channel_curves(pix, sched, prep.trajectory.states, [(14, 1)])[0]  # (C, N)
    keep = sched.timesteps > cfg.t_b

    def gap(x_T):
        states, _ = generate_states(pix, x_T, sched, **blend)
        cur = channel_curves(pix, sched, states, pixels)  # (P, C, N)
        return float((cur - ref[None]).abs()[..., keep].mean())

    assert gap(res.x_T) < 0.97 * gap(res.x_T_original)


def test_blending_keeps_the_outside_at_the_blend_level(pix):
    img, mask = _image(), _mask()
    cfg = EditConfig(task="saliency", n_iter=8, lr=0.1, **FAST)
    res = run_edit(pix, img, mask, cfg, baselines=False)
    prep = prepare_image(pix, img, steps=cfg.steps)
    sched = prep.trajectory.schedule
    M = torch.from_numpy(mask).float()
    states, _ = generate_states(pix, res.x_T, sched, original_states=prep.trajectory.states, mask=M,
                                blend_t=cfg.blend_t)
    out = ~torch.from_numpy(mask)
    blended = [i for i in range(len(sched)) if int(sched.timesteps[i]) >= cfg.blend_t]
    assert blended and len(blended) < len(sched)
    assert (res.x_T - res.x_T_original).abs()[:, ~out].max() > 0  # the inside did move
    for i in blended:  # x_T itself is blended every k iterations and at the end
        torch.testing.assert_close(states[i][:, out], prep.trajectory.states[i][:, out], rtol=0, atol=1e-6)
    below = max(i for i in range(len(sched)) if i not in blended)
    assert (states[below] - prep.trajectory.states[below])[:, out].abs().max() > 0  # free below the blend level


@pytest.mark.slow
@pytest.mark.parametrize("model,task,ref", [("pixel", "transfer", (1, 1)), ("pixel", "removal", (14, 2)),
                                            ("pixel", "removal", None), ("pixel", "saliency", None),
                                            ("pixel", "blending", None), ("sd", "saliency", None),
                                            ("sd", "removal", (14, 2))])
def test_each_task_end_to_end(request, model, task, ref):
    from workbench.adapters import load_model

    tiny_adapter = (request.getfixturevalue("pix") if model == "pixel"
                    else load_model(request.getfixturevalue("tiny_sd_dir"), device="cpu"))
    H, W = tiny_adapter.image_size
    img, mask = _image(H, W, seed=3), _mask(H, W)
    cfg = EditConfig(task=task, n_iter=4, erosion=3, **FAST)
    seen = []
    res = run_edit(tiny_adapter, img, mask, cfg, ref_xy=ref, callback=seen.append)
    assert res.edited.size == (W, H) and res.original.size == (W, H)
    assert res.iterations_done == 4 and not res.cancelled
    assert [s.done for s in seen if s.phase == "optimise"] == [1, 2, 3, 4]
    N = len(res.timesteps)
    assert res.curve_before.shape == (N,) and res.curve_after.shape == (N,)
    assert (res.reference_curve is not None) == (ref is not None)
    assert res.mask_model.shape == tiny_adapter.model_shape[1:]
    for key in ("psnr_outside", "ssim_outside", "change_inside", "fluctuation_before", "fluctuation_after"):
        assert np.isfinite(res.metrics[key]), key
    assert set(res.baselines) == {"removal": {"biharmonic", "telea"}, "blending": {"poisson"}}.get(task, set())


def test_seed_makes_a_run_repeatable_and_cancel_keeps_the_best(pix):
    img, mask = _image(), _mask()
    cfg = EditConfig(task="removal", n_iter=6, **FAST)
    a = run_edit(pix, img, mask, cfg, baselines=False)
    b = run_edit(pix, img, mask, cfg, baselines=False)
    assert a.losses == b.losses
    np.testing.assert_array_equal(np.asarray(a.edited), np.asarray(b.edited))
    seen = []  # stop once 5 iterations are reported (should_stop is also polled during the inversion)
    c = run_edit(pix, img, mask, cfg.with_(n_iter=50), baselines=False, callback=seen.append,
                 should_stop=lambda: sum(i.phase == "optimise" for i in seen) >= 5)
    assert c.cancelled and c.iterations_done == 5 and c.losses == a.losses[:5]


@pytest.mark.parametrize("case,match", [
    ("size", "is 16x10 but the image is 16x16"), ("empty", "mask is empty"), ("full", "whole image"),
    ("ref-outside", "outside the 16x16 image"), ("ref-inside", "inside the object"),
    ("transfer-no-ref", "needs a reference pixel"), ("saliency-ref", "takes no reference pixel"),
])
def test_bad_inputs_give_one_line_errors(pix, case, match):
    img, mask = _image(), _mask()
    task, ref = "removal", None
    if case == "size":
        mask = mask[:10]
    elif case == "empty":
        mask = np.zeros_like(mask)
    elif case == "full":
        mask = np.ones_like(mask)
    elif case == "ref-outside":
        ref = (16, 3)
    elif case == "ref-inside":
        ref = (6, 5)
    elif case == "transfer-no-ref":
        task = "transfer"
    elif case == "saliency-ref":
        task, ref = "saliency", (0, 0)
    with pytest.raises(WorkbenchError, match=match) as err:
        run_edit(pix, img, mask, EditConfig(task=task, n_iter=1, **FAST), ref_xy=ref)
    assert "\n" not in str(err.value)
