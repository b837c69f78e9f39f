"""Export fluctuation maps (and rate-at-t maps) for saliency benchmarks' tools.

For every cube, each requested map is brought to the source image's original resolution with
`analysis.datasets.resize_map` and written as
  OUT/<kind>/<image stem>.png   8-bit grey, min-max scaled per map (what benchmark tools read)
  OUT/<kind>/<image stem>.npy   float32 at the same resolution, unscaled (model units)
with <kind> = `fluctuation` (of the per-step curve), `fluctuation-accumulated` (of the accumulated
curve, workbench.curve_kinds), `rate_t<T>` or `accumulated_t<T>` (T the nearest cube timestep), and OUT/manifest.json
recording the parameters (window, t_b, timesteps, cube attributes) and every map's min/max.
The folder is a `workbench.outputs.OutputDir`: it must be new, empty or an earlier export (its
marker file), unless `overwrite`; every map is staged under a temporary name and all of them are
renamed into place only once every map is computed and written, so a failure (a full disk, a
damaged cube) leaves the folder as it was and says so.

The format `pysaliency` writes, for the field's evaluation library,
  OUT/pysaliency/<kind>/<image stem>.npy               float64 maps at the source resolution: what
      `pysaliency.SaliencyMapModelFromDirectory(stimuli, folder)` loads as a saliency map model
      (matched to the stimuli by file stem)
  OUT/pysaliency/<kind>_log_density/<image stem>.npy   the map as a log density (`as_log_density`): what
      `pysaliency.ModelFromDirectory(stimuli, folder)` loads as a probabilistic model (information gain)
"""
from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import Iterable

import numpy as np
import xarray as xr
from PIL import Image

from cache.params import FluctuationParams
from workbench.curve_kinds import accumulated
from workbench.errors import WorkbenchError
from workbench.outputs import OutputDir, OutputOptions, Staging
from workbench.progress import ProgressFn, emit
from workbench.validate import MAX_TIMESTEP, check_timestep

from .cubes import open_cubes
from .datasets import resize_map
from .fluctuation import DEFAULT_NORMALISE, DEFAULT_T_B, DEFAULT_WINDOW, fluctuation, significance_arrays

__all__ = ["parse_what", "cube_maps", "export_maps", "to_uint8", "as_log_density"]


def parse_what(what: str | Iterable[str]) -> list[tuple[str, int | None]]:
    """'fluctuation,rate@500,accumulated@500' -> [('fluctuation', None), ('rate', 500), ('accumulated', 500)];
    'fluctuation-accumulated' is the fluctuation of the accumulated curve."""
    items = [w.strip() for w in (what.split(",") if isinstance(what, str) else what) if w.strip()]
    out = []
    for w in items:
        if w in ("fluctuation", "fluctuation-accumulated"):
            out.append((w, None))
        elif w.startswith(("rate@", "accumulated@")):
            kind, _, tv = w.partition("@")
            try:
                t = float(tv)
                out.append((kind, check_timestep(int(t) if math.isfinite(t) and t.is_integer() else t)))
            except (ValueError, WorkbenchError):
                raise WorkbenchError(f"--what {w!r}: write {kind}@T with a whole timestep from 0 to {MAX_TIMESTEP}, "
                                     f"e.g. {kind}@500") from None
        else:
            raise WorkbenchError(f"--what {w!r}: choose fluctuation, fluctuation-accumulated, rate@T or accumulated@T "
                                 "(comma-separated)")
    if not out:
        raise WorkbenchError("--what is empty: ask for fluctuation and/or rate@T")
    return out


def to_uint8(m: np.ndarray) -> np.ndarray:
    """Min-max scale a map to 0..255 uint8 (a flat map becomes all zeros)."""
    m = np.asarray(m, dtype=np.float64)
    lo, hi = float(m.min()), float(m.max())
    return np.zeros(m.shape, np.uint8) if not hi > lo else np.round(255 * (m - lo) / (hi - lo)).astype(np.uint8)


def _source_size(ds: xr.Dataset) -> tuple[int, int]:
    s = ds.attrs.get("source_size")
    if s is None or len(np.atleast_1d(s)) != 2:
        H, W = ds["rate"].shape[-2:]
        return int(H), int(W)
    H0, W0 = (int(v) for v in np.atleast_1d(s))
    return H0, W0


def cube_maps(ds: xr.Dataset, what, *, window: int = DEFAULT_WINDOW, t_b: float = DEFAULT_T_B,
              normalise: bool = DEFAULT_NORMALISE) -> dict[str, tuple]:
    """kind -> (map at the original resolution float32, info dict) for one cube."""
    rate = ds["rate"].values
    ts = ds["timestep"].values
    size = _source_size(ds)
    out = {}
    for kind, t in parse_what(what):
        if kind in ("fluctuation", "fluctuation-accumulated"):
            curve = "rate" if kind == "fluctuation" else "accumulated"
            m = fluctuation(rate, ts, window=window, t_b=t_b, axis=0, normalise=normalise, curve=curve)
            out[kind] = (resize_map(m, size), {"window": int(window), "t_b": float(t_b),
                                               "normalise": bool(normalise), "curve": curve})
            if "rate_se" in ds and curve == "rate":  # with standard errors, a map's significance can stand beside it
                sig = significance_arrays(rate, ds["rate_se"].values, ts, window=window, t_b=t_b, normalise=normalise)
                z = np.clip(np.nan_to_num(sig["z"], nan=0.0), -50, 50)  # K < 2 has no SE: z 0
                out["fluctuation_z"] = (resize_map(z, size),
                                        {"window": int(window), "t_b": float(t_b), "normalise": bool(normalise),
                                         "z": "(F - median F) / se(F), delta method from rate_se; |z| > 2 significant"})
        else:
            if not np.isfinite(rate).all():
                raise WorkbenchError("the cube contains NaN or inf: recompute it")
            i = int(np.argmin(np.abs(ts - t)))
            curves = rate if kind == "rate" else accumulated(rate, ts, axis=0)
            out[f"{kind}_t{int(ts[i]):04d}"] = (resize_map(curves[i], size),
                                                {"asked_t": t, "timestep": int(ts[i]), "curve": kind})
    return out


def _png_bytes(m: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(to_uint8(m)).save(buf, format="PNG")
    return buf.getvalue()


def as_log_density(m: np.ndarray) -> np.ndarray:
    """A map (H, W) as a natural-log density over its pixels (float64, logsumexp 0): the map shifted
    to a minimum of 1e-6 of its range (every pixel stays possible; a flat map becomes uniform) and
    normalised to sum 1."""
    m = np.asarray(m, dtype=np.float64)
    lo, hi = float(m.min()), float(m.max())
    p = m - lo + (1e-6 * (hi - lo) if hi > lo else 1.0)
    return np.log(p) - np.log(p.sum())


def _npy_bytes(m: np.ndarray, dtype=np.float32) -> bytes:
    buf = io.BytesIO()  # serialised first: the file write then fails loudly on a short write
    np.save(buf, np.asarray(m).astype(dtype))
    return buf.getvalue()


def export_maps(source, out_dir: str | Path | OutputOptions | OutputDir | Staging, *, what="fluctuation",
                fluct: FluctuationParams = FluctuationParams(), formats=("png", "npy"),
                progress: ProgressFn | None = None) -> dict:
    """Export maps of every cube in `source` (a store/cube path, or an iterable of (name, Dataset)).

    `fluct`: the fluctuation's window, t_b and normalise (`cache.params.FluctuationParams`, checked
    when it is made; the defaults are the analysis defaults).

    `out_dir`: a folder path or the command's `OutputOptions` (path and `--overwrite`; opened as an
    `OutputDir` of the `export` command), an `OutputDir`, or a `Staging` of a larger output (`workbench run`), into which
    the files are staged and committed by the caller. Returns the manifest (also OUT/manifest.json).
    Two cubes of one image name are an error (export one parameter set at a time). `progress`: a
    `Progress` of phase "export" (cubes exported so far, total unknown; `name` the image) after each cube.
    """
    formats = tuple(formats)
    if not formats or any(f not in ("png", "npy", "pysaliency") for f in formats):
        raise WorkbenchError(f"--format {','.join(formats)}: choose png, npy and/or pysaliency")
    parse_what(what)
    if isinstance(out_dir, Staging):
        return _export_into(source, out_dir, what, fluct, formats, progress)
    if not isinstance(out_dir, (OutputOptions, OutputDir)):
        out_dir = OutputOptions(out_dir)
    out = out_dir if isinstance(out_dir, OutputDir) else out_dir.folder("export")
    with out.staging() as st:
        return _export_into(source, st, what, fluct, formats, progress)


def _export_into(source, st: Staging, what, fluct: FluctuationParams, formats, progress) -> dict:
    window, t_b, normalise = fluct.window, fluct.t_b, fluct.normalise
    cubes = open_cubes(source) if isinstance(source, (str, Path)) else source
    manifest = {"window": int(window), "t_b": float(t_b), "normalise": bool(normalise),
                "what": what if isinstance(what, str) else ",".join(what),
                "formats": list(formats), "png_scaling": "min-max per map to 0..255", "maps": {}}
    if "pysaliency" in formats:
        manifest["pysaliency"] = ("pysaliency.SaliencyMapModelFromDirectory(stimuli, 'OUT/pysaliency/<kind>') is a saliency "
                                  "map model, pysaliency.ModelFromDirectory(stimuli, 'OUT/pysaliency/<kind>_log_density') "
                                  "a probabilistic one; stimuli named <image stem>.<ext> at the source resolution")
    seen = set()
    n = 0
    for name, ds in cubes:
        if name in seen:
            raise WorkbenchError(f"two cubes are named {name!r} (different parameters?): export one parameter set "
                                 "at a time")
        seen.add(name)
        entry = {"cube": {k: (v.tolist() if hasattr(v, "tolist") else v) for k, v in ds.attrs.items()
                          if k in ("rate_definition", "estimator", "K", "seed", "steps", "model_name",
                                   "model_fingerprint", "source_image", "source_size")}}
        for kind, (m, info) in cube_maps(ds, what, window=window, t_b=t_b, normalise=normalise).items():
            if "png" in formats:
                st.write_bytes(f"{kind}/{name}.png", _png_bytes(m))
            if "npy" in formats:
                st.write_bytes(f"{kind}/{name}.npy", _npy_bytes(m))
            if "pysaliency" in formats:  # folders of their own: pysaliency matches files to stimuli by stem
                st.write_bytes(f"pysaliency/{kind}/{name}.npy", _npy_bytes(m, np.float64))
                st.write_bytes(f"pysaliency/{kind}_log_density/{name}.npy", _npy_bytes(as_log_density(m), np.float64))
            entry[kind] = info | {"min": float(m.min()), "max": float(m.max()), "shape": list(m.shape)}
        manifest["maps"][name] = entry
        n += 1
        emit(progress, "export", n, None, name=name)
    if n == 0:
        raise WorkbenchError(f"{source} holds no cubes to export")
    st.write_text("manifest.json", json.dumps(manifest, indent=1))
    return manifest
