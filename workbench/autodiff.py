"""Make a diffusers U-Net differentiable in forward mode (JVPs), reversibly.

Two obstacles, measured on these machines:
- `AttnProcessor2_0` calls `scaled_dot_product_attention`, whose flash / memory-efficient kernels
  have no forward-AD formula. Fix: the SDPA *math* backend (a composite of matmuls and softmax,
  which forward AD and `vmap` handle) for the duration of the context.
- `GroupNorm` views its input as (B, G, -1); under `jvp`/`vmap` the tangent can be
  non-contiguous and the `view` fails. Fix: a forward pre-hook that makes GroupNorm inputs
  contiguous (numerically the identity).
Both are undone on exit, so the model is left exactly as it was.
"""
from __future__ import annotations

import contextlib
from typing import Iterator

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

__all__ = ["forward_ad_safe"]


def _contiguous_input(module: torch.nn.Module, args: tuple) -> tuple:
    return (args[0].contiguous(),) + tuple(args[1:])


@contextlib.contextmanager
def forward_ad_safe(model: torch.nn.Module) -> Iterator[torch.nn.Module]:
    """Context in which `torch.func.jvp` / `vmap` / second-order AD run through `model`.

    Re-entrant: a nested use on the same model adds nothing and removes nothing.
    """
    if getattr(model, "_wb_forward_ad_depth", 0) > 0:
        model._wb_forward_ad_depth += 1
        try:
            yield model
        finally:
            model._wb_forward_ad_depth -= 1
        return
    handles = [m.register_forward_pre_hook(_contiguous_input)
               for m in model.modules() if isinstance(m, torch.nn.GroupNorm)]
    model._wb_forward_ad_depth = 1
    try:
        with sdpa_kernel([SDPBackend.MATH]):
            yield model
    finally:
        for h in handles:
            h.remove()
        model._wb_forward_ad_depth = 0
