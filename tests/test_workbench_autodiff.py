"""workbench.autodiff: forward AD through a U-Net, reversibly."""
from __future__ import annotations

from workbench.adapters import load_model


def test_forward_ad_context_restores_the_model(tiny_sd_dir):
    ad = load_model(tiny_sd_dir, device="cpu")
    hooks_before = sum(len(m._forward_pre_hooks) for m in ad.unet.modules())
    with ad.autodiff():
        assert sum(len(m._forward_pre_hooks) for m in ad.unet.modules()) > hooks_before
    assert sum(len(m._forward_pre_hooks) for m in ad.unet.modules()) == hooks_before
