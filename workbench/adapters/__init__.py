"""One model contract over diffusers denoisers, one module per family.

- `contract`: `ModelAdapter`, what the engine needs of a model (`eps`, `h`, the noise schedule,
  `encode`/`decode`, the conditioning, the fingerprint, the memory budget), and `to_epsilon`;
- `pixel`: pixel-space `UNet2DModel`;
- `latent`: the VAE shared by latent models and the Stable Diffusion family (SD-1/2, SDXL);
- `transformer`: DiT, PixArt and SD3 denoisers (h-space in the middle of the block stack);
- `text`: prompts through a pipeline's own tokenizers and text encoders, cached on disk;
- `loading`: `load_model`, which looks at a folder and builds the adapter of its family.

Everything else in the workbench talks to a `ModelAdapter`; nothing else touches a network.
"""
from __future__ import annotations

from .contract import (HALF_DTYPES, PREDICTION_TYPES, ModelAdapter, batch_timesteps, cast_module, module_fingerprint,
                       tensor_fingerprint, to_epsilon)
from .latent import LatentVAE, StableDiffusionAdapter
from .loading import SD21_BASE, load_model, load_transformer_model
from .pixel import PixelAdapter
from .transformer import TRANSFORMER_FAMILIES, TransformerAdapter, first_blocks, tokens_to_grid

__all__ = ["PREDICTION_TYPES", "HALF_DTYPES", "ModelAdapter", "LatentVAE", "PixelAdapter", "StableDiffusionAdapter",
           "TransformerAdapter", "TRANSFORMER_FAMILIES", "to_epsilon", "load_model", "load_transformer_model",
           "tensor_fingerprint", "module_fingerprint", "batch_timesteps", "cast_module", "first_blocks",
           "tokens_to_grid", "SD21_BASE"]
