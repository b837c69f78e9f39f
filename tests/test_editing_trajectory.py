"""workbench.editing.trajectory: the blend by hand, generation against the one DDIM loop, channel
curves against torch.autograd.functional.jvp."""
from __future__ import annotations

import pytest
import torch

from workbench.adapters import load_model
from workbench.ddim import generate, make_schedule
from workbench.editing.trajectory import blend_states, channel_curves, generate_states, generate_to


@pytest.fixture(scope="module")
def pix(tiny_pixel_dir):
    return load_model(tiny_pixel_dir, device="cpu")


def test_blend_states_is_the_masked_mix():
    x, orig = torch.full((1, 2, 2, 3), 4.0), torch.full((1, 2, 2, 3), 1.0)
    mask = torch.tensor([[1.0, 0.0, 0.5], [0.0, 0.25, 1.0]])
    want = torch.tensor([[4.0, 1.0, 2.5], [1.0, 1.75, 4.0]]).expand(1, 2, 2, 3)
    torch.testing.assert_close(blend_states(x, orig, mask), want)


def test_generate_states_ends_where_generate_does(pix):
    sched = make_schedule(pix, 3)
    x_T = torch.randn(pix.model_shape, generator=torch.Generator().manual_seed(0))
    states, x0 = generate_states(pix, x_T, sched)
    assert states.shape == (3, *pix.model_shape)
    torch.testing.assert_close(states[2], x_T)
    torch.testing.assert_close(x0, generate(pix, x_T[None], sched)[0], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(states[0], generate_to(pix, x_T[None], sched, 0)[0], rtol=1e-5, atol=1e-6)


def test_channel_curves_are_jvp_norms_of_h(pix):
    """Batched over timesteps (one pixel) and over tangents (the pixel twice) against
    torch.autograd.functional.jvp (the double-backward trick, not torch.func)."""
    sched = make_schedule(pix, 3)
    states = torch.randn(3, *pix.model_shape, generator=torch.Generator().manual_seed(1))
    C, (y, x) = pix.model_shape[0], (3, 5)
    want = torch.empty(1, C, 3)
    with pix.autodiff():  # the double-backward trick needs the math attention kernel
        for i in range(3):
            t = int(sched.timesteps[i])
            for c in range(C):
                e = torch.zeros_like(states[i])
                e[c, y, x] = 1
                want[0, c, i] = torch.autograd.functional.jvp(lambda z: pix.h(z[None], t)[0], states[i], e)[1].norm()
    one = channel_curves(pix, sched, states, [(y, x)], chunk=3)
    torch.testing.assert_close(one, want, rtol=1e-4, atol=1e-6)
    two = channel_curves(pix, sched, states, [(y, x), (y, x)], chunk=4)  # 6 tangents > 3 timesteps
    torch.testing.assert_close(two, want.expand(2, C, 3), rtol=1e-4, atol=1e-6)
