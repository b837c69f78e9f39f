"""Content-addressed cube keys and the cube's attributes: the one place either is made.

A key is image bytes + model identity + parameters -> hex digest. It does not depend on the
file's name or location, on the package version, or on the order of dictionary entries: the
same picture (same bytes), the same weights in the same compute dtype and conditioning, and the
same `CubeParams` always give the same key, and any change to one of them gives another. Every
caller (commands, batches, the dashboards' catalog, experiments) gets keys from `cube_key` with
`model_identity(adapter)` and attributes from `model_attrs` / `cube_attrs`, so they cannot disagree.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from PIL import Image

import workbench
from workbench.errors import WorkbenchError

from . import schema
from .params import CubeParams

__all__ = ["KEY_VERSION", "cube_key", "image_bytes", "model_identity", "dtype_name", "conditioning_attrs",
           "package_version", "model_attrs", "cube_attrs", "same_model"]

#: bumped only if the key recipe itself changes (it invalidates every stored key)
KEY_VERSION = "cube-key-v1"


def image_bytes(image: str | Path | Image.Image | bytes) -> bytes:
    """The bytes a key hashes: a file's raw bytes (given as bytes, or read from a path), or for a PIL
    image its size, mode and RGB pixels."""
    if isinstance(image, bytes):
        return image
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


def package_version() -> str:
    """The installed workbench version (recorded in every cube)."""
    return str(getattr(workbench, "__version__", "unknown"))


def model_attrs(adapter, params: CubeParams) -> dict[str, Any]:
    """The attributes every cube of `adapter` and `params` shares (those of a multi-image group):
    model fingerprint and name, the parameters (`CubeParams.as_attrs`), scale, compute dtype and why
    it was chosen (`dtype_choice`: 'explicit', or what `--dtype auto` measured, workbench.precision), the
    conditioning (`conditioning_attrs`) and the package version."""
    return {"model_fingerprint": adapter.fingerprint(), "model_name": str(getattr(adapter, "name", "model")),
            **params.as_attrs(), "scale": int(adapter.scale), "dtype": dtype_name(adapter),
            "dtype_choice": str(getattr(adapter, "dtype_choice", "explicit")),
            **conditioning_attrs(adapter), "package_version": package_version()}


def cube_attrs(adapter, params: CubeParams, *, raw: bytes, source: str | Path | Image.Image | None,
               source_size, **extra) -> dict[str, Any]:
    """The attributes of a complete single-image cube (`cache.schema.ATTR_KEYS`): `model_attrs`, the
    source image (`source`: its path, or a PIL image whose `filename` is used; `source_size` (H0, W0)
    pixels), the schema version, the content `key` of `raw` (the image's bytes, `image_bytes`) and
    `complete` = 1; `extra` attributes (e.g. until_stable, stability) are added last."""
    if isinstance(source, Image.Image):
        source = getattr(source, "filename", "")
    elif source not in (None, ""):
        source = str(Path(source).resolve())
    return {**model_attrs(adapter, params), "source_image": str(source or ""),
            "source_size": [int(v) for v in source_size], "schema_version": schema.SCHEMA_VERSION,
            "key": cube_key(raw, model_identity(adapter), params), "complete": 1, **extra}


def same_model(attrs: dict, adapter) -> bool:
    """True when stored attributes `attrs` were written by `adapter`'s weights, compute dtype and
    conditioning (what `model_identity` distinguishes)."""
    mine = conditioning_attrs(adapter)
    return (attrs.get("model_fingerprint") == adapter.fingerprint()
            and attrs.get("dtype", "float32") == dtype_name(adapter)
            and str(attrs.get("prompt_fingerprint", "") or "") == str(mine.get("prompt_fingerprint", "") or ""))
