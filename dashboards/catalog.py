"""What the dashboards read: the cubes of a store, shared by every browser session.

`CubeCatalog` wraps a `cache.store.CubeStore` folder (or, before the store existed, a
folder of `*.zarr` cubes written by `analysis.cubes.save_cube`). Opened cubes are loaded
into memory once and kept in a small LRU shared by all sessions; they are never mutated.
Adding an image (a dropped file) writes the file under `<store>/uploads/` (the folder the
user pointed the dashboard at) and computes its cube through the store, so it is cached.
"""
from __future__ import annotations

import hashlib
import io
import threading
from collections import OrderedDict
from pathlib import Path

import xarray as xr
from PIL import Image, UnidentifiedImageError

from cache import anytime
from cache.build import compute_cube
from cache.params import CubeParams
from cache.store import CubeStore
from workbench.errors import WorkbenchError
from workbench.progress import ProgressFn, emit

__all__ = ["CubeCatalog", "cube_label", "cube_labels", "cube_variant"]


def cube_variant(entry: dict) -> str:
    """What a cube was computed with, without its image: 'rate h · hutchinson · K 64 · 50 steps'
    (and the prompt of a text model's cube)."""
    parts = []
    if entry.get("rate_definition"):
        parts.append(f"rate {entry['rate_definition']}")
    if entry.get("estimator"):
        parts.append(str(entry["estimator"]))
    if entry.get("K") not in (None, ""):
        parts.append(f"K {entry['K']}")
    if entry.get("steps") not in (None, ""):
        parts.append(f"{entry['steps']} steps")
    if entry.get("prompt"):
        parts.append(f"“{entry['prompt']}”")
    return " · ".join(parts) or "cube"


def cube_label(entry: dict) -> str:
    """A human label naming a catalog entry fully: 'image · rate h · hutchinson · K 64 · 50 steps'."""
    return f"{entry.get('name') or entry['key'][:10]} · {cube_variant(entry)}"


def cube_labels(entries: list[dict]) -> dict[str, str]:
    """label -> key for the entries; labels shared by several cubes (same image and parameters, another
    seed or model) end with the start of their key so that each names one cube."""
    labels = [cube_label(e) for e in entries]
    out = {}
    for label, e in zip(labels, entries):
        out[label if labels.count(label) == 1 else f"{label} · key {e['key'][:6]}"] = e["key"]
    return out


class CubeCatalog:
    """The cubes under `path` (a CubeStore folder), opened lazily and cached in memory.

    `entries()` lists one dict per complete cube (key, name, source_image, params attrs);
    `open(key)` returns the loaded Dataset; `add_image(adapter, path, params, progress=)`
    computes (or finds) the cube of a new image and returns its key.
    """

    def __init__(self, path: str | Path, *, create: bool = True, max_open: int = 8):
        self.path = Path(path)
        self._lock = threading.RLock()
        self._open: OrderedDict[str, xr.Dataset] = OrderedDict()
        self._max_open = max_open
        self._store = CubeStore(self.path, create=create)

    # -- listing -----------------------------------------------------------------------------
    def entries(self) -> list[dict]:
        """One dict per complete cube: key, name (image stem), source_image and the params attrs."""
        with self._lock:
            rows = [dict(r) for r in self._store.index()]
        for r in rows:
            r.setdefault("name", Path(str(r.get("source_image") or r["key"])).stem)
        return sorted(rows, key=lambda r: (str(r["name"]), r["key"]))

    def keys(self) -> list[str]:
        """Keys of the complete cubes."""
        return [e["key"] for e in self.entries()]

    def find(self, name: str) -> str | None:
        """The key of the cube whose image is called `name` (stem or source path), or None."""
        for e in self.entries():
            if name in (e["key"], e.get("name"), e.get("source_image")):
                return e["key"]
        return None

    # -- reading -----------------------------------------------------------------------------
    def open(self, key: str) -> xr.Dataset:
        """The cube `key`, loaded into memory (shared, read-only: do not modify it)."""
        with self._lock:
            if key in self._open:
                self._open.move_to_end(key)
                return self._open[key]
        with self._lock:
            ds = self._store.open(key).load()
        if "rate" not in ds or "timestep" not in ds.coords:
            raise WorkbenchError(f"cube {key} has no rate/timestep: it is not a curve cube (recompute it)")
        with self._lock:
            self._open[key] = ds
            while len(self._open) > self._max_open:
                self._open.popitem(last=False)
        return ds

    # -- adding ------------------------------------------------------------------------------
    def save_upload(self, data: bytes, filename: str) -> Path:
        """Write dropped image bytes to `<store>/uploads/<hash>-<name>` (idempotent) and return the path."""
        try:
            with Image.open(io.BytesIO(data)) as im:
                im.verify()
        except (UnidentifiedImageError, OSError, SyntaxError):
            raise WorkbenchError(f"{filename} is not a readable image: drop a PNG or JPEG") from None
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in Path(filename).name) or "image.png"
        folder = self.path / "uploads"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{hashlib.sha256(data).hexdigest()[:12]}-{safe}"
        if not path.exists():
            tmp = path.with_name(path.name + ".partial")
            tmp.write_bytes(data)
            tmp.rename(path)
        return path

    def add_image(self, adapter, image: str | Path, params=None, *,
                  progress: ProgressFn | None = None, live: bool = False, **batch_options) -> str:
        """Compute (or find cached) the cube of `image` with `params` (a CubeParams); returns its key.

        progress: the `Progress` events of the computation (phase "cube": the work done). live: refine
        the cube batch by batch (`cache.anytime.cube_batches`) and, after each batch, send a `Progress`
        of phase "batch" (done = K probes so far of total = params.K, `stability`, `result` the
        `cache.anytime.CubeBatch` with the in-memory cube, the last one complete); only the last is
        stored. batch_options: `cache.anytime.cube_batches` options (until_stable, window, t_b)."""
        params = params or CubeParams()
        key = self._store.key_of(adapter, image, params)
        with self._lock:
            if key in self._store:
                return key
        if not live:
            ds = compute_cube(adapter, image, params, progress=progress)  # long: outside the lock
        else:
            for step in anytime.cube_batches(adapter, image, params, progress=progress, **batch_options):
                emit(progress, "batch", step.K, step.K_final, K=step.K, stability=float(step.stability), result=step)
                ds = step.ds
        with self._lock:
            return self._store.put(ds)
