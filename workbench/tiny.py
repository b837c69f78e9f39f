"""Tiny random-weight models in the real diffusers layouts, for tests and benchmarks (no downloads)."""
from __future__ import annotations

import json
from pathlib import Path

import torch

from .default_model import default_scheduler_config

__all__ = ["tiny_pixel_unet", "tiny_sd_unet", "tiny_vae", "save_tiny_pixel_model", "save_tiny_sd_model",
           "sd21_base_unet_config", "save_tiny_sdxl_model", "save_tiny_dit_model", "save_tiny_pixart_model",
           "save_tiny_sd3_model"]


def tiny_pixel_unet(sample_size: int = 16, seed: int = 0):
    """A ~50k-parameter `UNet2DModel` with one attention block (so attention is exercised)."""
    from diffusers import UNet2DModel

    torch.manual_seed(seed)
    return UNet2DModel(sample_size=sample_size, in_channels=3, out_channels=3, layers_per_block=1,
                       block_out_channels=(8, 16), down_block_types=("DownBlock2D", "AttnDownBlock2D"),
                       up_block_types=("AttnUpBlock2D", "UpBlock2D"), norm_num_groups=4, attention_head_dim=8)


def tiny_sd_unet(sample_size: int = 8, seed: int = 0, cross_attention_dim: int = 32):
    """A tiny `UNet2DConditionModel` with cross attention, 4 latent channels."""
    from diffusers import UNet2DConditionModel

    torch.manual_seed(seed)
    return UNet2DConditionModel(sample_size=sample_size, in_channels=4, out_channels=4, layers_per_block=1,
                                block_out_channels=(8, 16), down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                                up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), norm_num_groups=4,
                                cross_attention_dim=cross_attention_dim, attention_head_dim=2,
                                use_linear_projection=True)


def tiny_vae(seed: int = 0):
    """A tiny `AutoencoderKL` with a downsampling factor of 2 (two levels)."""
    from diffusers import AutoencoderKL

    torch.manual_seed(seed)
    return AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8, 8),
                         down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
                         norm_num_groups=4, layers_per_block=1, sample_size=16)


def save_tiny_pixel_model(path: str | Path, sample_size: int = 16, seed: int = 0) -> Path:
    """Save a tiny pixel model (unet/ + scheduler/) to `path`."""
    from diffusers import DDIMScheduler

    path = Path(path)
    tiny_pixel_unet(sample_size, seed).save_pretrained(path / "unet", safe_serialization=True)
    DDIMScheduler(**default_scheduler_config()).save_pretrained(path / "scheduler")
    return path


def _byte_level_alphabet() -> list[str]:
    """GPT-2 / CLIP byte-to-unicode alphabet: 256 printable characters, one per byte."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for c in cs]


def _write_tiny_clip_tokenizer(path: Path) -> None:
    """A byte-level CLIP tokenizer with a character vocabulary (enough for any prompt, no merges)."""
    from transformers import CLIPTokenizer

    chars = _byte_level_alphabet()
    vocab = {c: i for i, c in enumerate(chars)}
    vocab.update({c + "</w>": len(vocab) + i for i, c in enumerate(chars)})
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    path.mkdir(parents=True, exist_ok=True)
    (path / "vocab.json").write_text(json.dumps(vocab))
    (path / "merges.txt").write_text("#version: 0.2\n")
    tok = CLIPTokenizer(str(path / "vocab.json"), str(path / "merges.txt"), model_max_length=16)
    tok.save_pretrained(path)


def save_tiny_sd_model(path: str | Path, sample_size: int = 8, seed: int = 0) -> Path:
    """Save a tiny Stable-Diffusion-layout model (unet/ vae/ text_encoder/ tokenizer/ scheduler/)."""
    from diffusers import DDIMScheduler
    from transformers import CLIPTextConfig, CLIPTextModel

    path = Path(path)
    tiny_sd_unet(sample_size, seed).save_pretrained(path / "unet", safe_serialization=True)
    tiny_vae(seed).save_pretrained(path / "vae", safe_serialization=True)
    _write_tiny_clip_tokenizer(path / "tokenizer")
    from transformers import CLIPTokenizer

    vocab_size = len(CLIPTokenizer.from_pretrained(path / "tokenizer"))
    torch.manual_seed(seed)
    enc = CLIPTextModel(CLIPTextConfig(vocab_size=vocab_size, hidden_size=32, intermediate_size=64,
                                       num_hidden_layers=2, num_attention_heads=2, max_position_embeddings=16,
                                       eos_token_id=vocab_size - 1, bos_token_id=vocab_size - 2, pad_token_id=vocab_size - 1))
    enc.save_pretrained(path / "text_encoder", safe_serialization=True)
    cfg = default_scheduler_config() | {"beta_schedule": "scaled_linear", "beta_start": 0.00085, "beta_end": 0.012,
                                        "steps_offset": 1}
    DDIMScheduler(**cfg).save_pretrained(path / "scheduler")
    return path


def sd21_base_unet_config() -> dict:
    """The public UNet config of stabilityai/stable-diffusion-2-1-base (random weights for benchmarks)."""
    return dict(sample_size=64, in_channels=4, out_channels=4, layers_per_block=2,
                block_out_channels=(320, 640, 1280, 1280),
                down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
                up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
                attention_head_dim=(5, 10, 20, 20), cross_attention_dim=1024, use_linear_projection=True,
                norm_num_groups=32)


# --- further families (tests of workbench.adapters; random weights, real diffusers layouts) --------------
def _tiny_clip(path: Path, seed: int, *, projection_dim: int | None = None, hidden: int = 32) -> None:
    """Tokenizer (byte-level characters) in path/tokenizer*, CLIP text encoder saved beside it."""
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

    tok_dir, enc_dir = path
    _write_tiny_clip_tokenizer(tok_dir)
    vocab_size = len(CLIPTokenizer.from_pretrained(tok_dir))
    torch.manual_seed(seed)
    cfg = CLIPTextConfig(vocab_size=vocab_size, hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=2,
                         num_attention_heads=2, max_position_embeddings=16, eos_token_id=vocab_size - 1,
                         bos_token_id=vocab_size - 2, pad_token_id=vocab_size - 1, projection_dim=projection_dim or hidden)
    enc = CLIPTextModelWithProjection(cfg) if projection_dim else CLIPTextModel(cfg)
    enc.save_pretrained(enc_dir, safe_serialization=True)


def _sd_scheduler_config(**over) -> dict:
    return default_scheduler_config() | {"beta_schedule": "scaled_linear", "beta_start": 0.00085, "beta_end": 0.012,
                                         "steps_offset": 1} | over


def save_tiny_sdxl_model(path: str | Path, sample_size: int = 8, seed: int = 0) -> Path:
    """A tiny SDXL-layout model: a `UNet2DConditionModel` with addition_embed_type "text_time", a CLIP
    text encoder and a CLIP text encoder with projection (tokenizer/, tokenizer_2/)."""
    from diffusers import DDIMScheduler, UNet2DConditionModel

    path = Path(path)
    torch.manual_seed(seed)
    UNet2DConditionModel(sample_size=sample_size, in_channels=4, out_channels=4, layers_per_block=1,
                         block_out_channels=(8, 16), down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                         up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), norm_num_groups=4, cross_attention_dim=64,
                         attention_head_dim=2, use_linear_projection=True, addition_embed_type="text_time",
                         addition_time_embed_dim=8, projection_class_embeddings_input_dim=16 + 6 * 8,
                         transformer_layers_per_block=1).save_pretrained(path / "unet", safe_serialization=True)
    tiny_vae(seed).save_pretrained(path / "vae", safe_serialization=True)
    _tiny_clip((path / "tokenizer", path / "text_encoder"), seed)
    _tiny_clip((path / "tokenizer_2", path / "text_encoder_2"), seed + 1, projection_dim=16)
    DDIMScheduler(**_sd_scheduler_config()).save_pretrained(path / "scheduler")
    (path / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionXLPipeline",
                                                       "force_zeros_for_empty_prompt": True}))
    return path


def save_tiny_dit_model(path: str | Path, sample_size: int = 8, seed: int = 0, num_classes: int = 10) -> Path:
    """A tiny class-conditional `DiTTransformer2DModel` (learned variance: 8 output channels) + VAE + DDIM."""
    from diffusers import DDIMScheduler, DiTTransformer2DModel

    path = Path(path)
    torch.manual_seed(seed)
    DiTTransformer2DModel(num_attention_heads=2, attention_head_dim=8, in_channels=4, out_channels=8, num_layers=3,
                          sample_size=sample_size, patch_size=2, num_embeds_ada_norm=num_classes
                          ).save_pretrained(path / "transformer", safe_serialization=True)
    tiny_vae(seed).save_pretrained(path / "vae", safe_serialization=True)
    DDIMScheduler(**default_scheduler_config()).save_pretrained(path / "scheduler")
    return path


def save_tiny_pixart_model(path: str | Path, sample_size: int = 8, seed: int = 0) -> Path:
    """A tiny `PixArtTransformer2DModel` with a tiny T5 encoder (tokenizer/: the byte-level character
    tokenizer the other tiny models use) + VAE + DDIM."""
    from diffusers import DDIMScheduler, PixArtTransformer2DModel
    from transformers import CLIPTokenizer, T5Config, T5EncoderModel

    path = Path(path)
    torch.manual_seed(seed)
    PixArtTransformer2DModel(num_attention_heads=2, attention_head_dim=8, in_channels=4, out_channels=8, num_layers=2,
                             cross_attention_dim=16, caption_channels=32, sample_size=sample_size, patch_size=2,
                             norm_type="ada_norm_single", use_additional_conditions=False, norm_num_groups=4
                             ).save_pretrained(path / "transformer", safe_serialization=True)
    tiny_vae(seed).save_pretrained(path / "vae", safe_serialization=True)
    _write_tiny_clip_tokenizer(path / "tokenizer")
    vocab_size = len(CLIPTokenizer.from_pretrained(path / "tokenizer"))
    torch.manual_seed(seed)
    T5EncoderModel(T5Config(vocab_size=vocab_size, d_model=32, d_kv=8, d_ff=64, num_layers=1, num_heads=2,
                            pad_token_id=vocab_size - 1, eos_token_id=vocab_size - 1)
                   ).save_pretrained(path / "text_encoder", safe_serialization=True)
    DDIMScheduler(**default_scheduler_config()).save_pretrained(path / "scheduler")
    return path


def save_tiny_sd3_model(path: str | Path, sample_size: int = 8, seed: int = 0, with_t5: bool = True) -> Path:
    """A tiny `SD3Transformer2DModel` (flow matching, FlowMatchEulerDiscreteScheduler with shift 3), two CLIP
    text encoders with projection and, `with_t5`, a tiny T5 (text_encoder_3/, tokenizer_3/: 16 tokens);
    without it the SD3 pipelines use 256 zero tokens in its place."""
    from diffusers import FlowMatchEulerDiscreteScheduler, SD3Transformer2DModel

    path = Path(path)
    torch.manual_seed(seed)
    SD3Transformer2DModel(sample_size=sample_size, patch_size=2, in_channels=4, out_channels=4, num_layers=3,
                          attention_head_dim=8, num_attention_heads=2, joint_attention_dim=64, caption_projection_dim=16,
                          pooled_projection_dim=32, pos_embed_max_size=16
                          ).save_pretrained(path / "transformer", safe_serialization=True)
    tiny_vae(seed).save_pretrained(path / "vae", safe_serialization=True)
    _tiny_clip((path / "tokenizer", path / "text_encoder"), seed, projection_dim=16)
    _tiny_clip((path / "tokenizer_2", path / "text_encoder_2"), seed + 1, projection_dim=16)
    if with_t5:
        from transformers import CLIPTokenizer, T5Config, T5EncoderModel

        _write_tiny_clip_tokenizer(path / "tokenizer_3")
        vocab_size = len(CLIPTokenizer.from_pretrained(path / "tokenizer_3"))
        torch.manual_seed(seed + 2)
        T5EncoderModel(T5Config(vocab_size=vocab_size, d_model=64, d_kv=8, d_ff=64, num_layers=1, num_heads=2,
                                pad_token_id=vocab_size - 1, eos_token_id=vocab_size - 1)
                       ).save_pretrained(path / "text_encoder_3", safe_serialization=True)
    FlowMatchEulerDiscreteScheduler(shift=3.0).save_pretrained(path / "scheduler")
    return path
