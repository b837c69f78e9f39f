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

__all__ = ["KEY_VERSION", "cube_key", "image_bytes", "model_identity", "dtype_name"]

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
    (a float16 cube is not a float32 cube)."""
    fp, dt = str(adapter.fingerprint()), dtype_name(adapter)
    return fp if dt == "float32" else f"{fp}@{dt}"
