"""The small pixel-space DDPM that the project ships: its architecture and where it lives."""
from __future__ import annotations

from pathlib import Path

__all__ = ["DEFAULT_MODEL_DIR", "SAMPLES_DIR", "default_unet_config", "default_scheduler_config"]

DEFAULT_MODEL_DIR = Path(__file__).parent / "models" / "default"
SAMPLES_DIR = Path(__file__).parent / "samples"


def default_unet_config(sample_size: int = 64) -> dict:
    """Config of the shipped `UNet2DModel`: 4 levels (64->8), 4.3 M parameters, h-space = mid block, 128x8x8."""
    return dict(
        sample_size=sample_size,
        in_channels=3,
        out_channels=3,
        layers_per_block=1,
        block_out_channels=(32, 64, 128, 128),
        down_block_types=("DownBlock2D", "DownBlock2D", "AttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "AttnUpBlock2D", "UpBlock2D", "UpBlock2D"),
        attention_head_dim=32,
        norm_num_groups=32,
        dropout=0.0,
    )


def default_scheduler_config() -> dict:
    """DDPM training schedule (linear betas, 1000 steps, epsilon prediction: the tiny test models'; the
    shipped weights are a v-prediction fine-tune with this schedule, `workbench train --prediction`)."""
    return dict(
        num_train_timesteps=1000,
        beta_start=1e-4,
        beta_end=0.02,
        beta_schedule="linear",
        prediction_type="epsilon",
        clip_sample=False,
        set_alpha_to_one=False,
    )
