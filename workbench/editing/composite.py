"""An edit at the source image's resolution: the model-resolution change, upsampled and composited.

The model edits a resized copy of the image (its grid, e.g. 64x64). `composite_change` takes the
change the edit made there (edited - original, both at the model's size), upsamples it to the
source size and adds it to the untouched source image, weighted by a feathered mask: weight 1
inside the region, falling linearly to 0 over `feather` source pixels outside it, and exactly 0
beyond. Outside that band the output equals the input, bit for bit; inside, the source's own
detail survives under the model's (coarse) change. Without a mask the change applies everywhere.
"""
from __future__ import annotations

import numpy as np
from PIL import Image
from scipy.ndimage import distance_transform_edt

__all__ = ["feather_weights", "composite_change", "default_feather"]


def default_feather(source_size: tuple[int, int], model_size: tuple[int, int]) -> float:
    """Feather width (source pixels): two model cells' worth, at least 2 pixels."""
    (H0, W0), (h, w) = source_size, model_size
    return max(2.0, 2.0 * max(H0 / h, W0 / w))


def feather_weights(mask: np.ndarray, feather: float) -> np.ndarray:
    """float32 (H0, W0) weights: 1 inside `mask` (bool (H0, W0)), 1 - d / feather at distance d px outside
    it, 0 from distance `feather` on (exactly)."""
    m = np.asarray(mask, dtype=bool)
    if feather <= 0:
        return m.astype(np.float32)
    d = distance_transform_edt(~m)  # distance to the nearest masked pixel (0 inside)
    return np.clip(1.0 - d / float(feather), 0.0, 1.0).astype(np.float32)


def _upsample(delta: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """float (h, w, 3) -> float32 (H0, W0, 3), bicubic per channel."""
    H0, W0 = size
    chans = [np.asarray(Image.fromarray(np.ascontiguousarray(delta[..., c], dtype=np.float32), mode="F")
                        .resize((W0, H0), Image.Resampling.BICUBIC)) for c in range(delta.shape[-1])]
    return np.stack(chans, -1)


def composite_change(source: np.ndarray | Image.Image, original_model: np.ndarray | Image.Image,
                     edited_model: np.ndarray | Image.Image, mask: np.ndarray | None = None, *,
                     feather: float | None = None) -> np.ndarray:
    """The edit at the source's resolution, uint8 (H0, W0, 3).

    source: the original image (H0, W0, 3); original_model / edited_model: the model's input and
    output (h, w, 3) uint8; mask: bool (H0, W0), the edited region (None: change everywhere);
    feather: width of the band outside the mask where the change fades out (source pixels; default
    `default_feather`). Outside mask + band the result equals `source` exactly.
    """
    src = np.asarray(source.convert("RGB") if isinstance(source, Image.Image) else source)
    orig = np.asarray(original_model.convert("RGB") if isinstance(original_model, Image.Image) else original_model)
    edit = np.asarray(edited_model.convert("RGB") if isinstance(edited_model, Image.Image) else edited_model)
    if orig.shape != edit.shape:
        raise ValueError(f"original {orig.shape} and edited {edit.shape} differ in shape")
    H0, W0 = src.shape[:2]
    delta = _upsample(edit.astype(np.float32) - orig.astype(np.float32), (H0, W0))
    if mask is None:
        w = np.ones((H0, W0), np.float32)
    else:
        if np.shape(mask) != (H0, W0):
            raise ValueError(f"the mask is {np.shape(mask)} but the source is {(H0, W0)}")
        f = default_feather((H0, W0), orig.shape[:2]) if feather is None else float(feather)
        w = feather_weights(mask, f)
    out = src.astype(np.float32) + w[..., None] * delta
    out = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    outside = w == 0
    out[outside] = src[outside]  # bit-exact, whatever the float arithmetic did
    return out
