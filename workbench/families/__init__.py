"""Model families beyond the pixel and SD-1/2 U-Nets: text encoders for prompts, SDXL's added
conditioning, and transformer denoisers (DiT, PixArt, SD3 with flow matching)."""
