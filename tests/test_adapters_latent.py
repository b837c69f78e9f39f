"""workbench.adapters.latent: encode/decode through the VAE with its scaling factor, h the U-Net's
mid-block output under the prompt's embedding, as diffusers computes them."""
from __future__ import annotations

import torch

from workbench.adapters import StableDiffusionAdapter, load_model


def test_vae_scaling_and_h_under_the_prompt(tiny_sd_dir):
    ad = load_model(tiny_sd_dir, device="cpu")
    assert isinstance(ad, StableDiffusionAdapter)
    img = torch.rand(1, 3, *ad.image_size, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.no_grad():
        z = ad.vae.encode(img).latent_dist.mean
        torch.testing.assert_close(ad.encode(img), z * ad.vae.config.scaling_factor)
        torch.testing.assert_close(ad.decode(ad.encode(img)), ad.vae.decode(z).sample.clamp(-1, 1), rtol=1e-4, atol=1e-5)
    x = torch.randn(1, *ad.model_shape, generator=torch.Generator().manual_seed(1))
    seen = []
    hook = ad.unet.mid_block.register_forward_hook(lambda _m, _a, out: seen.append(out))
    try:
        with torch.no_grad():
            out = ad.unet(x, 300, encoder_hidden_states=ad.prompt_embedding).sample
    finally:
        hook.remove()
    with torch.no_grad():
        torch.testing.assert_close(ad.h(x, 300), seen[0])
        torch.testing.assert_close(ad.eps(x, 300), out)
