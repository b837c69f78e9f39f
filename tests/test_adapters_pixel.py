"""workbench.adapters.pixel: eps is the U-Net's output and h its mid-block output, as diffusers computes them."""
from __future__ import annotations

import torch

from workbench.adapters import PixelAdapter, load_model


def test_eps_and_h_are_what_the_unet_computes(tiny_pixel_dir):
    ad = load_model(tiny_pixel_dir, device="cpu")
    assert isinstance(ad, PixelAdapter) and ad.scale == 1
    x = torch.randn(2, *ad.model_shape, generator=torch.Generator().manual_seed(0))
    seen = []
    hook = ad.unet.mid_block.register_forward_hook(lambda _m, _a, out: seen.append(out))
    try:
        with torch.no_grad():
            out = ad.unet(x, 500).sample
    finally:
        hook.remove()
    with torch.no_grad():
        torch.testing.assert_close(ad.eps(x, 500), out)
        torch.testing.assert_close(ad.h(x, 500), seen[0])
    torch.testing.assert_close(ad.encode(x), x)  # pixel space: no encoder
