"""Content-addressed cube keys: image bytes + model fingerprint + parameters -> hex digest.

The key does not depend on the file's name or location, on the package version, or on the
order of dictionary entries: the same picture (same bytes), the same weights and the same
`CubeParams` always give the same key, and any change to one of them gives another.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from PIL import Image

from workbench.errors import WorkbenchError

from .params import CubeParams

__all__ = ["KEY_VERSION", "cube_key", "image_bytes", "model_identity", "dtype_name", "conditioning_attrs"]

#: bumped only if the key recipe itself changes (it invalidates every stored key)
KEY_VERSION = "cube-key-v1"


def image_bytes(image: str | Path | Image.Image) -> bytes:
    """The bytes a key hashes: a file's raw bytes, or for a PIL image its size, mode and RGB pixels."""
    if isinstance(image, Image.Image):
        rgb = image.convert("RGB")
        return b"PIL-RGB:%dx%d:" % rgb.size + rgb.tobytes()
    path = Path(image)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise WorkbenchError(f"no such image: {path} (check the path)") from None
    except IsADirectoryError:
        raise WorkbenchError(f"{path} is a directory, not an image file") from None


def cube_key(image_bytes: bytes, model_fingerprint: str, params: CubeParams) -> str:
    """Stable hex key (32 hex digits, 128 bits of SHA-256) of one cube."""
    h = hashlib.sha256()
    h.update(KEY_VERSION.encode())
    h.update(b"\0image\0")
    h.update(hashlib.sha256(image_bytes).digest())
    h.update(b"\0model\0" + str(model_fingerprint).encode())
    h.update(b"\0params\0" + json.dumps(params.as_dict(), sort_keys=True, separators=(",", ":")).encode())
    return h.hexdigest()[:32]


def dtype_name(adapter) -> str:
    """The adapter's compute dtype as a short string ('float32', 'float16', ...)."""
    return str(getattr(adapter, "dtype", "torch.float32")).replace("torch.", "")


def model_identity(adapter) -> str:
    """What a key hashes of the model: its weight fingerprint, plus the compute dtype unless float32
    (a float16 cube is not a float32 cube), plus the conditioning's fingerprint (over the whole prompt
    embedding, the negative prompt's and the guidance scale) unless it is the default empty prompt."""
    fp, dt = str(adapter.fingerprint()), dtype_name(adapter)
    ident = fp if dt == "float32" else f"{fp}@{dt}"
    if not getattr(adapter, "default_conditioning", True):
        ident += f"+prompt:{adapter.conditioning_fingerprint()}"
    return ident


def conditioning_attrs(adapter) -> dict:
    """The cube attributes of the model's conditioning: prompt, negative_prompt, guidance_scale and
    prompt_fingerprint ('' / 1.0 for models without a prompt)."""
    if hasattr(adapter, "conditioning"):
        return dict(adapter.conditioning())
    return {"prompt": "", "negative_prompt": "", "guidance_scale": 1.0, "prompt_fingerprint": ""}
