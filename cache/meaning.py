"""What a cube group's files mean, checked against the schema and the group's own record.

Checksums (cache.integrity) prove that a chunk holds the bytes once written; they do not prove
that those bytes belong where they lie. This module checks the rest:

- `layout_record(...)`: what a group records about itself when it is created (attribute
  `layout`: the cube shape, image shape, chunks, probe-statistics channels, and the model's
  DDIM timesteps and alphas_cumprod), so that its metadata and shared arrays can be checked and
  rewritten later;
- `group_problems(path, attrs)`: every array's metadata against the schema (names, dtypes, shapes,
  dimension names), the shared `timestep` and `alpha` against the recorded schedule, the slots'
  attributes (a key, a plain file name, a positive source size);
- `flag_problems(path, n)`: done flags that are neither 0 nor 1 (a garbage flag used to make its
  cube vanish silently);
- `value_problem(var, values)` (defined in `cache.schema`, beside the arrays it constrains): values no cube can hold (rates NaN, infinite or negative; standard
  errors infinite or negative; probe statistics not finite).

Each returns plain-language reasons; `cache.check` reports and repairs them, and `cache.store`
refuses to read a group or slot that has any.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import zarr

from . import schema
from .integrity import CheckedStore, read_flags
from .schema import value_problem

__all__ = ["LAYOUT_ATTR", "Problem", "layout_record", "expected_arrays", "group_problems", "slot_problems",
           "flag_problems", "value_problem", "shared_values"]

#: the group attribute holding what the group records about itself (layout_record)
LAYOUT_ATTR = "layout"
_KEY = re.compile(r"^[0-9a-f]{8,128}$")
_SHARED = (schema.COORD_T, schema.VAR_ALPHA)


@dataclass(frozen=True)
class Problem:
    """One problem of a group: `var` the array (or "slots", "zarr.json"), `reason` in plain words."""

    var: str
    reason: str

    def line(self) -> str:
        return f"{self.var}: {self.reason}"


def layout_record(shape, image_shape, chunks, stat_channels: int, timesteps, alphas) -> dict:
    """The `layout` attribute of a new group (JSON): what its metadata and shared arrays must be."""
    return {"shape": [int(v) for v in shape], "image_shape": [int(v) for v in image_shape],
            "chunks": [int(v) for v in chunks], "stat_channels": int(stat_channels),
            "timesteps": [int(v) for v in np.asarray(timesteps).ravel()],
            "alphas": [float(v) for v in np.asarray(alphas, dtype=np.float64).ravel()]}


def _meta(path: Path, var: str) -> dict | None:
    try:
        meta = json.loads((Path(path) / var / "zarr.json").read_text())
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


def expected_arrays(attrs: dict, n: int, rate_meta: dict | None = None) -> dict[str, tuple] | None:
    """{var: (dtype, dims, shape)} of a group with `n` slots: from its `layout` record, else (older
    groups) from the rate array's metadata `rate_meta`; None when neither says the cube's shape."""
    D = schema.DIMS
    lay = attrs.get(LAYOUT_ATTR)
    try:
        if isinstance(lay, dict):
            N, H, W = (int(v) for v in lay["shape"])
            iy, ix = (int(v) for v in lay["image_shape"])
            C = int(lay["stat_channels"])
        else:
            _, N, H, W = (int(v) for v in rate_meta["shape"])
            iy = ix = C = None
    except (KeyError, TypeError, ValueError):
        return None
    rate = ("float32", (D["image"], D["t"], D["y"], D["x"]), (n, N, H, W))
    out = {schema.VAR_RATE: rate, schema.VAR_DONE: ("uint8", (D["image"],), (n,)),
           schema.VAR_ALPHA: ("float64", (D["t"],), (N,)), schema.COORD_T: ("int64", (D["t"],), (N,)),
           schema.VAR_IMAGE: ("uint8", (D["image"], D["image_y"], D["image_x"], D["rgb"]),
                              None if iy is None else (n, iy, ix, 3))}
    if str(attrs.get("schema_version", "1")) not in ("1", "2"):
        out[schema.VAR_RATE_SE] = rate
    if C:
        P = C * (C + 1) // 2
        out[schema.VAR_SUM_S] = ("float64", (D["image"], D["t"], D["channel"], D["y"], D["x"]), (n, N, C, H, W))
        out[schema.VAR_SUM_SS] = ("float64", (D["image"], D["t"], D["pair"], D["y"], D["x"]), (n, N, P, H, W))
    return out


def shared_values(path: Path, var: str) -> np.ndarray:
    """The values of a shared array (timestep, alpha), read through the checksum-verifying store
    (raises integrity.DamagedChunk or another exception when unreadable)."""
    arr = zarr.open_array(CheckedStore(Path(path), read_only=True), path=var, mode="r", zarr_format=3)
    return np.asarray(arr[...])


def group_problems(path: Path, attrs: dict) -> list[Problem]:
    """Everything wrong with a group's own metadata, shared arrays and slot attributes (see module doc)."""
    path = Path(path)
    n = len(attrs.get("slots", []))
    problems: list[Problem] = []
    rate_meta = _meta(path, schema.VAR_RATE)
    expected = expected_arrays(attrs, n, rate_meta)
    if expected is None:
        return [Problem(schema.VAR_RATE, "metadata missing or unreadable (zarr.json), and the group records no "
                                         "layout to rewrite it from")]
    for var, (dtype, dims, shape) in expected.items():
        meta = _meta(path, var)
        if meta is None:
            problems.append(Problem(var, "metadata missing or unreadable (zarr.json)"))
            continue
        if meta.get("node_type") != "array":
            problems.append(Problem(var, f"metadata is not an array's (node_type {meta.get('node_type')!r})"))
            continue
        got_shape = tuple(meta.get("shape") or ())
        if meta.get("data_type") != dtype:
            problems.append(Problem(var, f"data type {meta.get('data_type')!r}, the schema says {dtype}"))
        if tuple(meta.get("dimension_names") or ()) != dims:
            problems.append(Problem(var, f"dimensions {meta.get('dimension_names')}, the schema says {list(dims)}"))
        if shape is not None and got_shape != shape:
            problems.append(Problem(var, f"shape {list(got_shape)}, the group needs {list(shape)}"))
        elif shape is None and got_shape[:1] != (n,):
            problems.append(Problem(var, f"shape {list(got_shape)}, the group has {n} slots"))
        chunks = meta.get("chunk_grid", {}).get("configuration", {}).get("chunk_shape") \
            if isinstance(meta.get("chunk_grid"), dict) else None
        if not isinstance(chunks, list) or len(chunks) != len(got_shape) or \
                not all(isinstance(c, int) and c > 0 for c in chunks):
            problems.append(Problem(var, f"chunk shape {chunks!r} does not fit its shape {list(got_shape)}"))
    problems += _consolidated_problems(path)
    problems += _shared_problems(path, attrs, {p.var for p in problems}, expected)
    problems += [Problem("slots", r) for i in range(n) for r in slot_problems(attrs, i)]
    return problems


def _consolidated_problems(path: Path) -> list[Problem]:
    """The group's inlined copy of its arrays' metadata (consolidated metadata) must equal theirs."""
    try:
        root = json.loads((path / "zarr.json").read_text())
    except (OSError, ValueError):
        return [Problem("zarr.json", "the group's metadata is unreadable")]
    cons = root.get("consolidated_metadata") if isinstance(root, dict) else None
    if not isinstance(cons, dict):
        return []
    inline = cons.get("metadata") if isinstance(cons.get("metadata"), dict) else {}
    out = []
    for child in sorted(p for p in path.iterdir() if (p / "zarr.json").is_file()):
        own = _meta(path, child.name)
        if own is not None:
            own.pop("consolidated_metadata", None)
        if inline.get(child.name) != own:
            out.append(Problem("zarr.json", f"its consolidated copy of {child.name}'s metadata differs from "
                                            f"{child.name}/zarr.json"))
    return out


def _shared_problems(path: Path, attrs: dict, bad: set, expected: dict) -> list[Problem]:
    lay = attrs.get(LAYOUT_ATTR) if isinstance(attrs.get(LAYOUT_ATTR), dict) else {}
    want = {schema.COORD_T: lay.get("timesteps"), schema.VAR_ALPHA: lay.get("alphas")}
    out = []
    for var in _SHARED:
        if var in bad:
            continue
        try:
            values = shared_values(path, var)
        except Exception as exc:  # a checksum mismatch, a missing chunk, an undecodable one: all damage
            reason = str(exc).split(" is ", 1)[-1].split(": run `workbench check")[0] if \
                type(exc).__name__ == "DamagedChunk" else type(exc).__name__
            out.append(Problem(var, f"unreadable ({reason})"))
            continue
        if want[var] is not None:
            if values.shape != (len(want[var]),) or not np.array_equal(values, np.asarray(want[var], values.dtype)):
                out.append(Problem(var, "values differ from the model's schedule recorded in the group"))
        elif var == schema.COORD_T and (values.size < 1 or np.any(values < 0) or len(set(values.tolist())) != values.size):
            out.append(Problem(var, "values are not distinct timesteps >= 0"))
        elif var == schema.VAR_ALPHA and not (np.all(np.isfinite(values)) and np.all((values > 0) & (values <= 1))):
            out.append(Problem(var, "values are not alphas_cumprod in (0, 1]"))
    return out


def slot_problems(attrs: dict, i: int) -> list[str]:
    """What is wrong with slot `i`'s attributes: its key, name (a plain file name) and source size."""
    try:
        slot = attrs["slots"][i]
    except (KeyError, IndexError, TypeError):
        return [f"slot {i} has no attributes"]
    if not isinstance(slot, dict):
        return [f"slot {i}'s attributes are not an object"]
    out = []
    key, name = slot.get("key"), slot.get("name", "")
    if not isinstance(key, str) or not _KEY.match(key):
        out.append(f"slot {i}'s key {key!r} is not a cube key")
    if not isinstance(name, str) or name in (".", "..") or any(c in name for c in "/\\\0") or \
            len(name.encode("utf-8", "replace")) > 255:
        out.append(f"slot {i}'s name {name!r} is not a plain file name")
    size = slot.get("source_size")
    if size is not None and not (isinstance(size, list) and len(size) == 2 and
                                 all(isinstance(v, int) and not isinstance(v, bool) and 0 < v < 10**7 for v in size)):
        out.append(f"slot {i}'s source size {size!r} is not two positive pixel counts")
    return out


def flag_problems(path: Path, n: int) -> list[tuple[int, str]]:
    """(slot, reason) of every done flag that is neither 0 nor 1 (absent = 0), in either layout
    (cache.integrity.read_flags)."""
    return read_flags(Path(path), n)[1]
