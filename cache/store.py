"""`CubeStore`: a folder of content-addressed curve cubes, written crash-safely, read as xarray.

Layout of a store folder:
  store.json                 {"format": "genrate-workbench cube store", "schema_version": ...}
  groups/<gid>.zarr          multi-image Zarr v3 groups with preallocated slots (cache.slots)
  groups/<gid>.zarr.lock     writer lock of a group
`b-<hash>` groups come from batches (`build`, `workbench cubes`; compacted into one shard per array
once finished, cache.compact), `c-<key>` groups from single cubes (`put`, `get_or_compute`). A cube
is served only when its slot's done flag is set. The index (`index`, `find`) is rebuilt only when a
group or a done flag changed.
"""
from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Iterable

import numpy as np
import xarray as xr
from PIL import Image

from workbench.errors import WorkbenchError
from workbench.progress import ProgressFn

from . import integrity, meaning, schema, slots
from .keys import cube_key, image_bytes, model_identity, package_version
from .params import CubeParams, FluctuationParams

__all__ = ["CubeStore", "STORE_FILE", "creation_interrupted"]

STORE_FILE = "store.json"
GROUPS = "groups"


class CubeStore:
    """A cube store folder (created when missing and `create`); a foreign or corrupt folder raises
    `WorkbenchError`. `refinable`: cubes computed by `build` keep their probe statistics. Cubes are
    keyed by `cache.keys.cube_key`; `open(key)` returns a lazily read
    single-image Dataset (t, y, x)."""

    def __init__(self, path: str | os.PathLike, *, create: bool = True, refinable: bool = False):
        self.path = Path(path).expanduser()
        #: batches keep the Hutchinson probe statistics (probe_sum_s/probe_sum_ss, ~9x the bytes of rate +
        #: rate_se) so that `refine` adds probes to them; without, a refinement recomputes all K2 probes
        #: (the same numbers, docs/cubes.md "Bytes per cube"). Refined cubes and `put` keep what they hold.
        self.refinable = bool(refinable)
        self._groups: dict[str, tuple[dict, np.ndarray]] = {}
        self._where: dict[str, tuple[str, int]] = {}
        self._opened: dict[str, tuple[tuple | None, xr.Dataset]] = {}
        self._attr_cache: dict[str, tuple] = {}
        self._token: list | None = None  # what refresh() saw: (group, metadata stamp, done flags) per group
        self._lookup: _Lookup | None = None  # the index and its name lookups, built once per token
        marker = self.path / STORE_FILE
        if not self.path.exists():
            if not create:
                raise WorkbenchError(f"no cube store at {self.path}: build one with `workbench cubes DIR --store "
                                     f"{self.path}`")
            self.path.mkdir(parents=True)
            self._write_marker()
        elif not self.path.is_dir():
            raise WorkbenchError(f"{self.path} is a file, not a cube store folder: pass a folder")
        elif marker.exists():
            self._check_marker(marker)
        elif create and not any(self.path.iterdir()):
            self._write_marker()
        elif creation_interrupted(self.path):  # a creation stopped (killed, disk full) before its marker landed
            if not create:
                raise WorkbenchError(f"the creation of the cube store {self.path} was interrupted ({STORE_FILE} was "
                                     f"never finished): run `workbench check {self.path} --repair` or the `workbench "
                                     "cubes` command again to finish it")
            self.finish_marker()
        else:
            raise WorkbenchError(f"{self.path} is not a cube store (no {STORE_FILE}): pass a store folder, or a new "
                                 "or empty folder to create one")
        self.groups_dir = self.path / GROUPS
        self.groups_dir.mkdir(exist_ok=True)

    def __repr__(self) -> str:
        return f"CubeStore({str(self.path)!r})"

    @staticmethod
    def check_path(path: str | os.PathLike) -> None:
        """Raise WorkbenchError unless `path` can be a store: absent, an empty folder, a store, or a
        store whose creation was interrupted (what `CubeStore(path)` accepts, without creating anything)."""
        p = Path(path).expanduser()
        if not p.exists() or (p.is_dir() and (creation_interrupted(p) or not any(p.iterdir()))):
            return
        CubeStore(p, create=False)

    # --- the store marker ---------------------------------------------------------------
    def finish_marker(self) -> None:
        """Finish a creation that was interrupted before its marker landed (store.json.partial-*)."""
        self._write_marker()
        for p in self.path.glob(f"{STORE_FILE}.partial*"):
            p.unlink(missing_ok=True)

    def _write_marker(self) -> None:
        tmp = self.path / f"{STORE_FILE}.partial-{os.getpid()}"
        try:
            tmp.write_text(json.dumps({"format": schema.STORE_FORMAT, "schema_version": schema.SCHEMA_VERSION,
                                       "package_version": package_version()}, indent=1))
            tmp.replace(self.path / STORE_FILE)
        except OSError as exc:  # a failed write() (disk full) carries no file name: name the marker
            if exc.filename is None:
                exc.filename = str(self.path / STORE_FILE)
            raise

    def _check_marker(self, marker: Path) -> None:
        try:
            meta = json.loads(marker.read_text())
        except (OSError, ValueError) as exc:
            raise WorkbenchError(f"{marker} is corrupt ({type(exc).__name__}): this is not a readable cube store; "
                                 "restore the file or use another --store folder") from None
        if not isinstance(meta, dict) or meta.get("format") != schema.STORE_FORMAT:
            raise WorkbenchError(f"{self.path} is not a cube store ({STORE_FILE} has another format): pass a store "
                                 "folder made by `workbench cubes`")
        if str(meta.get("schema_version")) not in schema.READABLE_VERSIONS:
            raise WorkbenchError(f"{self.path} has cube schema version {meta.get('schema_version')}, this workbench "
                                 f"reads versions {', '.join(schema.READABLE_VERSIONS)}: use a matching workbench or a "
                                 "new store")

    # --- scanning -----------------------------------------------------------------------
    def group_path(self, gid: str) -> Path:
        """Folder of group `gid`."""
        return self.groups_dir / f"{gid}.zarr"

    def refresh(self) -> None:
        """Re-read every group's slot list and done flags (cheap: two small reads per group, one file per
        slot's flag in a group not compacted). A done flag that is neither 0 nor 1 raises WorkbenchError
        naming its cube and `workbench check --repair` (its cube would otherwise vanish silently)."""
        groups, token = {}, []
        for p in sorted(self.groups_dir.glob("*.zarr")):
            if not p.is_dir():
                continue
            gid = p.name[: -len(".zarr")]
            attrs = self._attrs(gid, p)
            done = slots.read_done(p)
            self._refuse_garbage_flags(p, attrs, done)
            groups[gid] = (attrs, done)
            token.append((gid, self._attr_cache[gid][0], done.tobytes()))
        if token == self._token:  # nothing changed: keep the index and its lookups
            self._groups = groups
            return
        where = {}
        for gid, (attrs, done) in groups.items():
            for i, slot in enumerate(attrs["slots"]):
                if done[i] and slot["key"] not in where:
                    where[slot["key"]] = (gid, i)
        self._groups, self._where, self._token, self._lookup = groups, where, token, None

    def _attrs(self, gid: str, path: Path) -> dict:
        """A group's attributes (immutable once the group exists), cached by its metadata's mtime."""
        try:
            stamp = (path / "zarr.json").stat().st_mtime_ns
        except OSError:
            stamp = None
        hit = self._attr_cache.get(gid)
        if hit is None or hit[0] != stamp or stamp is None:
            hit = (stamp, slots.read_attrs(path))
            self._attr_cache[gid] = hit
        return hit[1]

    def keys(self) -> list[str]:
        """Keys of the complete cubes (in group order, then slot order)."""
        self.refresh()
        return list(self._where)

    def __contains__(self, key: str) -> bool:
        return self._locate(key) is not None

    def __len__(self) -> int:
        return len(self.keys())

    def _locate(self, key: str) -> tuple[str, int] | None:
        loc = self._where.get(key)
        if loc is not None and integrity.slot_done(self.group_path(loc[0]), loc[1]):
            return loc
        self.refresh()
        return self._where.get(key)

    def index(self) -> list[dict]:
        """One dict per complete cube: key, name, source_image, source_size, group, slot, the
        parameters (cache.schema.PARAM_ATTRS) and the model's fingerprint and name."""
        return [dict(r) for r in self._index().rows]

    def _index(self) -> _Lookup:
        """The index rows and their lookups, rebuilt only when a group or a done flag changed."""
        self.refresh()
        if self._lookup is None:
            rows = []
            for key, (gid, i) in self._where.items():
                attrs = self._groups[gid][0]
                slot = attrs["slots"][i]
                row = {"key": key, "name": slot.get("name") or Path(str(slot.get("source_image", key))).stem,
                       "source_image": slot.get("source_image", ""), "source_size": slot.get("source_size"),
                       "group": gid, "slot": i}
                row.update({k: attrs.get(k, schema.PARAM_DEFAULTS.get(k)) for k in (*schema.PARAM_ATTRS, "model_fingerprint",
                                                                                 "model_name")})
                rows.append(row)
            self._lookup = _Lookup(rows)
        return self._lookup

    def find_all(self, name_or_source: str, *, params: CubeParams | None = None,
                 model_fingerprint: str | None = None, **attrs) -> list[dict]:
        """Index rows of the complete cubes answering to `name_or_source`: the first of key (or a
        key prefix of 8+ digits), source path, file name or stem, `category/stem` that matches;
        optionally only those of `params`, of a model, or with attribute values `attrs` (e.g. K=32)."""
        q = str(name_or_source)
        want = {**(params.as_attrs() if params is not None else {}), **attrs}
        if model_fingerprint is not None:
            want["model_fingerprint"] = model_fingerprint
        look = self._index()
        for test in (look.by_key, look.by_path, look.by_name, look.by_suffix):
            hits = [dict(r) for r in test(q) if all(r.get(k) == v for k, v in want.items())]
            if hits:
                return hits
        return []

    def find(self, name_or_source: str, *, params: CubeParams | None = None,
             model_fingerprint: str | None = None, **attrs) -> str | None:
        """Key of the complete cube whose key, source path, file name or stem (or `category/stem`)
        is `name_or_source`, optionally of `params`/model/attributes (see `find_all`); None when
        absent; the first computed when one image has several cubes. Two different source images
        answering to the name raise WorkbenchError (pass the path or the key)."""
        hits = self.find_all(name_or_source, params=params, model_fingerprint=model_fingerprint, **attrs)
        if not hits:
            return None
        sources = sorted({str(r["source_image"]) for r in hits})
        if len(sources) > 1:
            raise WorkbenchError(f"{str(name_or_source)!r} names {len(sources)} images in {self.path} ("
                                 f"{', '.join(sources[:4])}{' ...' if len(sources) > 4 else ''}): pass the image path "
                                 "or the key")
        return hits[0]["key"]

    # --- reading ------------------------------------------------------------------------
    def _damaged(self, what: str, reason: str) -> WorkbenchError:
        return WorkbenchError(f"cube {what} is damaged ({reason}): run `workbench check {self.path} --repair`, then "
                              "`workbench cubes` again to recompute it")

    def _group(self, gid: str, i: int | None = None) -> xr.Dataset:
        """Group `gid` opened, once its metadata, shared arrays (and slot `i`'s attributes) mean what
        the schema says (cache.meaning): what `workbench check` would flag is refused here, for every reader."""
        attrs = self._groups.get(gid, ({},))[0] or slots.read_attrs(self.group_path(gid))
        if i is not None:
            problems = meaning.slot_problems(attrs, i)
            if problems:
                slot = attrs["slots"][i] if isinstance(attrs["slots"][i], dict) else {}
                raise self._damaged(f"{slot.get('key', i)}", problems[0])
        stamp = _stamp(self.group_path(gid) / "zarr.json")
        if gid in self._opened and self._opened[gid][0] != stamp:  # rewritten since (compacted): open it again
            del self._opened[gid]
        if gid not in self._opened:
            problems = meaning.group_problems(self.group_path(gid), attrs)
            if problems:
                slot = attrs["slots"][i] if i is not None else {}
                what = f"{slot.get('name') or '?'} ({slot.get('key')})" if slot else f"group {gid}"
                raise self._damaged(what, f"its group {gid}: {problems[0].line()}")
            self._opened[gid] = (stamp, slots.open_group(self.group_path(gid)))
        return self._opened[gid][1]

    def _refuse_garbage_flags(self, path: Path, attrs: dict, done: np.ndarray) -> None:
        """Raise when a flag file exists that read_done did not read as 1 and that is not a 0 (garbage)."""
        try:
            present = {int(n) for n in os.listdir(path / schema.VAR_DONE / "c") if n.isdigit()}
        except OSError:
            return
        suspects = [i for i in present if i < len(done) and not done[i]]
        if suspects:
            for i, reason in meaning.flag_problems(path, len(done)):
                slot = attrs["slots"][i] if isinstance(attrs["slots"][i], dict) else {}
                raise self._damaged(f"{slot.get('name') or '?'} ({slot.get('key')})", reason)

    def open(self, key: str) -> xr.Dataset:
        """The complete cube `key`: rate (t, y, x), image (iy, ix, rgb), timestep, alpha, attributes
        (cache.schema.ATTR_KEYS), read lazily. A missing or incomplete cube raises WorkbenchError;
        a damaged group or slot (cache.meaning) raises one naming the cube and `workbench check --repair`."""
        loc = self._locate(key)
        if loc is None:
            raise WorkbenchError(f"no complete cube {key} in {self.path}: it was never computed or its writer was "
                                 "stopped; run `workbench cubes` again to finish it")
        return slots.slot_dataset(self._group(loc[0], loc[1]), loc[1])

    def open_many(self, keys: Iterable[str] | None = None) -> xr.Dataset:
        """Several complete cubes (default: all) as one lazy Dataset (image_id, t, y, x) with
        coordinates `key`, `name` and `source_image` along image_id. They must share the grid."""
        keys = list(self.keys() if keys is None else keys)
        if not keys:
            raise WorkbenchError(f"{self.path} holds no complete cubes: compute some first (workbench cubes ...)")
        parts, by_group = [], {}
        for key in keys:
            loc = self._locate(key)
            if loc is None:
                raise WorkbenchError(f"no complete cube {key} in {self.path}")
            by_group.setdefault(loc[0], []).append((loc[1], key))
        D = schema.DIMS
        for gid, members in by_group.items():
            for i, _ in members:
                self._group(gid, i)
            g = self._group(gid)
            idx = [i for i, _ in members]
            meta = [g.attrs["slots"][i] for i in idx]
            part = g.isel({D["image"]: idx}).drop_vars(schema.VAR_DONE)
            part = part.assign_coords(key=(D["image"], [m["key"] for m in meta]),
                                      name=(D["image"], [m.get("name", "") for m in meta]),
                                      source_image=(D["image"], [m.get("source_image", "") for m in meta]))
            parts.append(part)
        first = parts[0]
        for p in parts[1:]:
            if p.sizes[D["t"]] != first.sizes[D["t"]] or p.sizes[D["y"]] != first.sizes[D["y"]] or \
                    p.sizes[D["x"]] != first.sizes[D["x"]] or \
                    not np.array_equal(p[schema.COORD_T].values, first[schema.COORD_T].values):
                raise WorkbenchError("these cubes have different grids (model or steps): open_many needs cubes of "
                                     "one model and one --steps; pass their keys")
        common = set.intersection(*(set(p.data_vars) for p in parts))  # e.g. rate_se absent from older groups
        parts = [p.drop_vars([v for v in p.data_vars if v not in common]) for p in parts]
        out = xr.concat(parts, dim=D["image"], data_vars="minimal", coords="minimal", compat="override",
                        combine_attrs="drop_conflicts") if len(parts) > 1 else parts[0]
        out.attrs = {k: v for k, v in out.attrs.items() if k not in ("slots", "format")}
        order = {k: i for i, k in enumerate(keys)}
        return out.isel({D["image"]: np.argsort([order[k] for k in out["key"].values], kind="stable")})

    # --- writing ------------------------------------------------------------------------
    def sweep(self) -> list[Path]:
        """Remove leftovers of killed writers (`*.partial-*`)."""
        return slots.sweep_partials(self.groups_dir)

    def put(self, ds: xr.Dataset) -> str:
        """Store an already computed single-image cube (cache.build.compute_cube); returns its key.
        A cube already complete under that key is kept (content addressing)."""
        schema.check_cube(ds)
        if int(ds.attrs.get("complete", 0)) != 1:
            raise WorkbenchError("this cube is marked incomplete (complete != 1): it cannot be stored")
        key = str(ds.attrs["key"])
        if self._locate(key) is not None:
            return key
        self.sweep()
        path = self.group_path(f"c-{key}")
        spec = group_spec_of(ds)
        with slots.group_lock(path, wait=True):  # another process writing this very cube: wait for it
            slots.create_group(path, spec)
            if not slots.read_done(path)[0]:
                slots.write_slot(path, 0, ds[schema.VAR_RATE].values, ds[schema.VAR_IMAGE].values,
                                 **slots.slot_extras(ds))
        self.refresh()
        return key

    def key_of(self, adapter, image: str | os.PathLike | Image.Image, params: CubeParams) -> str:
        """The content key of `image` under this model (weights and compute dtype) and parameters."""
        return cube_key(image_bytes(image), model_identity(adapter), params)

    def get_or_compute(self, adapter, image: str | os.PathLike | Image.Image, params: CubeParams = CubeParams(), *,
                       progress: ProgressFn | None = None) -> xr.Dataset:
        """The cube of `image` under `adapter` and `params`: from the store when complete, else
        computed (cache.build.compute_cube), stored, and returned."""
        from .build import compute_cube  # computing only: reading a store does not load the estimators

        key = self.key_of(adapter, image, params)
        if self._locate(key) is None:
            self.put(compute_cube(adapter, image, params, progress=progress))
        return self.open(key)

    def build(self, images: list, adapter, params: CubeParams = CubeParams(), *,
              progress: ProgressFn | None = None, scheduler=None, **kw) -> list[str]:
        """Compute the cubes of many images (resumable; see `cache.batch.build_batch`); returns their keys.
        `kw`: the `cache.batch.BatchOptions` (local_cluster, model, device, refine) and `plan`."""
        from .batch import BatchOptions, build_batch  # computing only: reading a store does not load the batch engine

        opts = {k: kw.pop(k) for k in ("local_cluster", "model", "device", "refine") if k in kw}
        return build_batch(self, images, adapter, params, options=BatchOptions(scheduler=scheduler, **opts),
                           progress=progress, **kw)

    def refine(self, images: list, adapter, params: CubeParams, K2: int, *,
               progress: ProgressFn | None = None, **kw) -> list[str]:
        """Bring the cubes of `images` (of `params`, any K below K2) to K2 probes: only the missing
        probes run, merged exactly with the stored ones (as if K2 had run at once, the same seed);
        crash-safe and resumable like `build`. Returns the K2 cubes' keys."""
        return self.build(images, adapter, dataclasses.replace(params, K=int(K2)), progress=progress, refine=True,
                          **kw)


    def until_stable(self, images: list, adapter, params: CubeParams, R: float, *, fluct: FluctuationParams,
                     block: int | None = None, cap: int | None = None,
                     progress: ProgressFn | None = None) -> list[dict]:
        """Cubes of `images` with as many probes as each fluctuation map needs to reach split-half
        stability R of the fluctuation map `fluct` (`cache.build.StopRule.until_stable`; probe blocks of
        `block`, at most `cap` probes),
        stored under the key of the probe count reached. An image that already has such a cube (R or
        more) is skipped. `progress`: the events of `cache.build.compute_cube` with `name` the image's
        stem (phase "block" after each probe block: K and stability so far).
        Returns one dict per image: key, name, K, stability, computed (bool)."""
        from .build import StopRule, compute_cube  # computing only: reading a store does not load the estimators

        if not params.refinable:
            raise WorkbenchError("--until-stable needs Hutchinson cubes (rate h, eps or step)")
        rule = StopRule.until_stable(R, int(block or max(2, params.K // 2)), int(cap or 8 * params.K))
        out = []
        ident = model_identity(adapter)
        for img in images:
            raw = image_bytes(img)
            done = None
            for k in sorted({int(r["K"]) for r in self.index() if r.get("K") is not None}):
                loc = self._locate(cube_key(raw, ident, dataclasses.replace(params, K=k)))
                attrs = self._groups[loc[0]][0] if loc else {}
                if loc and float(attrs.get("until_stable", 0)) >= R:
                    done = {"key": attrs["slots"][loc[1]]["key"], "K": k, "stability": attrs.get("stability"),
                            "computed": False}
                    break
            if done is None:
                ds = compute_cube(adapter, img, params, rule=rule, fluct=fluct,
                                  progress=None if progress is None else
                                  (lambda p, _n=Path(str(img)).stem: progress(dataclasses.replace(p, name=_n))))
                done = {"key": self.put(ds), "K": int(ds.attrs["K"]), "stability": float(ds.attrs["stability"]),
                        "computed": True}
            out.append({"name": Path(str(img)).stem, **done})
        return out


def group_spec_of(ds: xr.Dataset) -> slots.GroupSpec:
    """A one-slot GroupSpec for a single-image cube Dataset."""
    a = dict(ds.attrs)
    slot = {"key": str(a["key"]), "source_image": str(a.get("source_image", "")),
            "source_size": [int(v) for v in np.atleast_1d(a.get("source_size", [0, 0]))],
            "name": Path(str(a.get("source_image") or a["key"])).stem}
    shared = {k: _plain(v) for k, v in a.items() if k not in (*schema.SLOT_ATTRS, "complete", "slots", "format")}
    rate = ds[schema.VAR_RATE]
    C = int(ds.sizes[schema.DIMS["channel"]]) if schema.VAR_SUM_S in ds else 0
    return slots.GroupSpec(shape=tuple(int(s) for s in rate.shape),
                           image_shape=tuple(int(s) for s in ds[schema.VAR_IMAGE].shape[:2]),
                           timesteps=ds[schema.COORD_T].values, alphas=ds[schema.VAR_ALPHA].values,
                           attrs=shared, slots=[slot], stat_channels=C)


def _plain(v):
    """numpy scalars/arrays -> JSON-able Python values."""
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    return v


def _stamp(path: Path) -> tuple | None:
    """The identity of a file (inode, modification time, size): changes when it is rewritten or replaced."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


class _Lookup:
    """The index rows of a store and dictionaries that answer `find_all`'s four tests without a scan
    of every row (a store of 10,000 cubes: about 0.5 s per lookup by scanning, resolving every source path)."""

    def __init__(self, rows: list[dict]):
        self.rows = rows
        self._key: dict[str, list[int]] = {}
        self._source: dict[str, list[int]] = {}
        self._name: dict[str, list[int]] = {}
        self._resolved: dict[str, list[int]] | None = None
        for n, r in enumerate(rows):
            src = str(r["source_image"])
            self._key.setdefault(r["key"], []).append(n)
            if src:
                self._source.setdefault(src, []).append(n)
            for name in {Path(src).name, r["name"]}:
                self._name.setdefault(name, []).append(n)

    def _rows(self, positions) -> list[dict]:
        return [self.rows[n] for n in sorted(set(positions))]

    def by_key(self, q: str) -> list[dict]:
        """Rows whose key is `q` or starts with it (8+ hex digits)."""
        if len(q) >= 8 and all(c in "0123456789abcdef" for c in q):
            return [r for r in self.rows if r["key"].startswith(q)]
        return self._rows(self._key.get(q, []))

    def by_path(self, q: str) -> list[dict]:
        """Rows whose source path is `q`, or the same file (resolved paths; symbolic links)."""
        if not q:
            return []
        exact = self._source.get(q) or self._source.get(str(Path(q).resolve()))
        if exact or not os.path.exists(q):  # sources are stored resolved; a file that exists may be a link
            return self._rows(exact or [])
        if self._resolved is None:
            self._resolved = {}
            for src, positions in self._source.items():
                self._resolved.setdefault(str(Path(src).resolve()), []).extend(positions)
        return self._rows(self._resolved.get(str(Path(q).resolve()), []))

    def by_name(self, q: str) -> list[dict]:
        """Rows whose source file name or stem (the slot's name) is `q`."""
        return self._rows(self._name.get(q, []))

    def by_suffix(self, q: str) -> list[dict]:
        """Rows whose source path without its suffix ends with `/q` (`category/stem`)."""
        tail = "/" + q.strip("/")
        return [r for r in self.rows if str(Path(str(r["source_image"])).with_suffix("")).endswith(tail)]


def creation_interrupted(path: Path) -> bool:
    """True for a folder holding only an unfinished store marker (store.json.partial-*) and,
    perhaps, an empty `groups` folder: a store creation stopped before its marker landed."""
    entries = list(path.iterdir())
    partial = [p for p in entries if p.name.startswith(f"{STORE_FILE}.partial")]
    rest = [p for p in entries if p not in partial]
    return bool(partial) and all(p.name == GROUPS and p.is_dir() and not any(p.iterdir()) for p in rest)
