"""Prompts through a pipeline's own tokenizers and text encoders, as diffusers' pipelines encode them,
cached on disk as safetensors (keyed by the model and the text). Each function returns the
conditioning tensors (batch 1, float32) under the denoiser's argument names.

  SD-1/2  encoder_hidden_states = CLIP last hidden state (1, L, D)
  SDXL    encoder_hidden_states = [CLIP-L penultimate, CLIP-G penultimate] (1, L, D1 + D2),
          text_embeds = CLIP-G projected pooled output, time_ids = (H, W, 0, 0, H, W)
  SD3     encoder_hidden_states = [[CLIP-L | CLIP-G] penultimate zero-padded to the T5 width ; T5] along
          the sequence (T5: min(256, tokenizer_3's model_max_length) tokens; 256 zeros without
          text_encoder_3/), pooled_projections = [pooled L, pooled G]
  PixArt  encoder_hidden_states = T5 last hidden state, encoder_attention_mask
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Callable

import torch
from safetensors.torch import load_file, save_file

__all__ = ["encode_sd_prompt", "encode_sdxl_prompt", "encode_sd3_prompt", "encode_t5_prompt", "cached_condition"]


def _cache_dir() -> Path:
    return Path(os.environ.get("WORKBENCH_CACHE", Path.home() / ".cache" / "genrate-workbench")) / "prompts"


def cached_condition(key_src: str, compute: Callable[[], dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """`compute()` once per `key_src`, then read back from the prompt cache (written to a temporary name
    and renamed)."""
    key = hashlib.sha256(key_src.encode()).hexdigest()[:24]
    path = _cache_dir() / f"cond-{key}.safetensors"
    if path.exists():
        return load_file(path)
    out = {k: v.float().contiguous() for k, v in compute().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.partial")
    save_file(out, tmp)
    tmp.replace(path)
    return out


def _tokenizer(root: Path, sub: str):
    from transformers import AutoTokenizer  # heavy: only text-conditioned models need it

    return AutoTokenizer.from_pretrained(root / sub, local_files_only=True)


def _ids(tok, text: str, max_length: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    enc = tok([text], padding="max_length", max_length=max_length or tok.model_max_length, truncation=True,
              return_tensors="pt")
    return enc.input_ids, enc.attention_mask


def encode_sd_prompt(root: Path, text: str, model_key: str) -> dict[str, torch.Tensor]:
    """SD-1/2: the CLIP text encoder's last hidden state."""
    def compute():
        from transformers import CLIPTextModel  # heavy: only text-conditioned models need it

        tok = _tokenizer(root, "tokenizer")
        enc = CLIPTextModel.from_pretrained(root / "text_encoder", local_files_only=True, use_safetensors=True)
        with torch.no_grad():
            return {"encoder_hidden_states": enc(_ids(tok, text)[0])[0]}

    return cached_condition(f"sd|{model_key}|{text}", compute)


def _clip_penultimate(root: Path, tok_sub: str, enc_sub: str, text: str, with_projection: bool):
    from transformers import CLIPTextModel, CLIPTextModelWithProjection  # heavy: only text-conditioned models need it

    cls = CLIPTextModelWithProjection if with_projection else CLIPTextModel
    tok = _tokenizer(root, tok_sub)
    enc = cls.from_pretrained(root / enc_sub, local_files_only=True, use_safetensors=True)
    with torch.no_grad():
        out = enc(_ids(tok, text)[0], output_hidden_states=True)
    return out.hidden_states[-2], out[0]


def encode_sdxl_prompt(root: Path, text: str, model_key: str, *, size: tuple[int, int],
                       zeros: bool = False) -> dict[str, torch.Tensor]:
    """SDXL: both CLIP encoders' penultimate states concatenated, the second one's projected pooled
    output, and the size/crop time ids of an uncropped image of `size` (H, W). `zeros`: all-zero
    embeddings (the pipelines' negative for the empty negative prompt)."""
    def compute():
        h1, _ = _clip_penultimate(root, "tokenizer", "text_encoder", text, False)
        h2, pooled = _clip_penultimate(root, "tokenizer_2", "text_encoder_2", text, True)
        ehs, pooled = torch.cat([h1, h2], dim=-1), pooled
        if zeros:
            ehs, pooled = torch.zeros_like(ehs), torch.zeros_like(pooled)
        H, W = size
        return {"encoder_hidden_states": ehs, "text_embeds": pooled,
                "time_ids": torch.tensor([[H, W, 0, 0, H, W]], dtype=torch.float32)}

    return cached_condition(f"sdxl|{model_key}|{size}|{zeros}|{text}", compute)


def encode_t5_prompt(root: Path, text: str, model_key: str, *, max_length: int,
                     tok_sub: str = "tokenizer", enc_sub: str = "text_encoder") -> dict[str, torch.Tensor]:
    """A T5 encoder's last hidden state (1, max_length, D) and the attention mask (1, max_length)."""
    def compute():
        from transformers import T5EncoderModel  # heavy: only text-conditioned models need it

        tok = _tokenizer(root, tok_sub)
        enc = T5EncoderModel.from_pretrained(root / enc_sub, local_files_only=True, use_safetensors=True)
        ids, mask = _ids(tok, text, max_length)
        with torch.no_grad():
            return {"encoder_hidden_states": enc(ids, attention_mask=mask)[0], "encoder_attention_mask": mask.float()}

    return cached_condition(f"t5|{model_key}|{max_length}|{enc_sub}|{text}", compute)


def encode_sd3_prompt(root: Path, text: str, model_key: str, *, joint_attention_dim: int,
                      max_sequence_length: int = 256, zeros: bool = False) -> dict[str, torch.Tensor]:
    """SD3: CLIP-L and CLIP-G penultimate states side by side, zero-padded to the T5 width, then the T5
    states (zeros when the model folder has no text_encoder_3/) along the sequence; pooled outputs
    concatenated. `zeros`: all-zero embeddings (the pipelines' negative for the empty negative prompt)."""
    def compute():
        h1, p1 = _clip_penultimate(root, "tokenizer", "text_encoder", text, True)
        h2, p2 = _clip_penultimate(root, "tokenizer_2", "text_encoder_2", text, True)
        clip = torch.cat([h1, h2], dim=-1)
        clip = torch.nn.functional.pad(clip, (0, joint_attention_dim - clip.shape[-1]))
        if (root / "text_encoder_3").exists():
            L = min(max_sequence_length, int(_tokenizer(root, "tokenizer_3").model_max_length))
            t5 = encode_t5_prompt(root, text, model_key, max_length=L, tok_sub="tokenizer_3",
                                  enc_sub="text_encoder_3")["encoder_hidden_states"]
        else:
            t5 = torch.zeros(1, max_sequence_length, joint_attention_dim)
        ehs, pooled = torch.cat([clip, t5], dim=-2), torch.cat([p1, p2], dim=-1)
        if zeros:
            ehs, pooled = torch.zeros_like(ehs), torch.zeros_like(pooled)
        return {"encoder_hidden_states": ehs, "pooled_projections": pooled}

    return cached_condition(f"sd3|{model_key}|{max_sequence_length}|{zeros}|{text}", compute)
