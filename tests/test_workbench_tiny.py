"""workbench.tiny: the test models are small, seeded and saved in the real diffusers layouts."""
from __future__ import annotations

import json

import torch

from workbench.default_model import default_scheduler_config
from workbench.tiny import tiny_pixel_unet


def test_tiny_pixel_unet_is_small_and_seeded():
    a, b, c = tiny_pixel_unet(seed=0), tiny_pixel_unet(seed=0), tiny_pixel_unet(seed=1)
    n = sum(p.numel() for p in a.parameters())
    assert 10_000 < n < 100_000, n
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not torch.equal(a.conv_in.weight, c.conv_in.weight)


def test_saved_pixel_model_layout(tiny_pixel_dir):
    unet = json.loads((tiny_pixel_dir / "unet" / "config.json").read_text())
    assert unet["_class_name"] == "UNet2DModel" and unet["sample_size"] == 16
    assert (tiny_pixel_dir / "unet" / "diffusion_pytorch_model.safetensors").is_file()
    sched = json.loads((tiny_pixel_dir / "scheduler" / "scheduler_config.json").read_text())
    assert sched["_class_name"] == "DDIMScheduler"
    assert {k: sched[k] for k in default_scheduler_config()} == default_scheduler_config()
