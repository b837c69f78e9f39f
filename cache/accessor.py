"""The `ds.curves` accessor: curves and maps out of a cube Dataset (single- or multi-image).

    ds.curves.pixel(y, x)          rate curve of one model-grid pixel       -> (t) [or (image_id, t)]
    ds.curves.region(mask)         mean curve over a (y, x) mask/weights     -> (t)
    ds.curves.at(t)                rate map at the nearest timestep          -> (y, x)
    ds.curves.se                   the cube's rate_se (None for cubes of schema < 3)
    ds.curves.accumulated()        the accumulated curve of every pixel      -> like rate
    ds.curves.select(image=...)    one image of a group (name, key, source path or key prefix) -> (t, y, x)
    tree.curves.select(image=...)  the same over every group of a store (cache.open_store)

`pixel`, `region` and `at` take `kind="rate"` (the per-step curve stored in the cube) or
`kind="accumulated"` (its running integral over the generation, workbench.curve_kinds).

The three queries carry the standard error as the coordinate `rate_se` (same dims as the result)
when the cube has one: `curve.rate_se`. A region's SE is the weighted sum of its pixels' SEs, an
upper bound (the pixels share the probes, so their errors are correlated).
    ds.curves.source_pixel(x, y)   source-image pixel -> model-grid (y, x)
    ds.curves.fluctuation(**kw)    fluctuation map, registered by `analysis` (cache never imports it)

The accessor reads only what plain xarray shows (variables, coordinates, attributes): it is a
convenience, never the only way to a value (docs/format.md has a reader without this package).
"""
from __future__ import annotations

from pathlib import PurePath
from typing import Callable

import numpy as np
import xarray as xr

from workbench.curve_kinds import accumulated, accumulated_se, check_kind
from workbench.errors import WorkbenchError
from workbench.pipeline import source_to_model_pixel

from . import schema

__all__ = ["CurvesAccessor", "TreeCurvesAccessor", "register_fluctuation", "CubeGrid", "select_image"]

_FLUCTUATION: list[Callable] = []


def register_fluctuation(fn: Callable[..., xr.DataArray]) -> None:
    """Register `fn(rate: DataArray (..., t, y, x), **kw) -> DataArray` as `ds.curves.fluctuation`."""
    _FLUCTUATION[:] = [fn]


class CubeGrid:
    """The image-to-model geometry of a cube (what `workbench.pipeline.source_to_model_pixel` needs of
    an adapter): `image_size` (H, W) in pixels and `scale` image pixels per model pixel."""

    def __init__(self, image_size: tuple[int, int], scale: int):
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.scale = int(scale)

    def image_to_model(self, y: int, x: int) -> tuple[int, int]:
        return (y // self.scale, x // self.scale)


@xr.register_dataset_accessor("curves")
class CurvesAccessor:
    """Thin queries over a cube's `rate` variable; see the module docstring."""

    def __init__(self, ds: xr.Dataset):
        self._ds = ds

    @property
    def rate(self) -> xr.DataArray:
        if schema.VAR_RATE not in self._ds:
            raise WorkbenchError("this Dataset has no 'rate' variable: open a cube (cache.store.CubeStore.open)")
        return self._ds[schema.VAR_RATE]

    @property
    def se(self) -> xr.DataArray | None:
        """The cube's `rate_se` (same dims as rate), or None for a cube written before standard errors."""
        return self._ds[schema.VAR_RATE_SE] if schema.VAR_RATE_SE in self._ds else None

    def _with_se(self, out: xr.DataArray, se: xr.DataArray | None) -> xr.DataArray:
        return out if se is None else out.assign_coords({schema.VAR_RATE_SE: se.load().variable})

    def _kind(self, kind: str) -> tuple[xr.DataArray, xr.DataArray | None]:
        """(curve, se) of `kind` over the whole cube: the rate, or its accumulated curve (loaded)."""
        if check_kind(kind) == "rate":
            return self.rate, self.se
        return self.accumulated(), self.accumulated_se()

    def accumulated(self) -> xr.DataArray:
        """The accumulated curve of every pixel (same dims and coordinates as rate, float64, units rate x
        timesteps): the running integral of the rate over the generation in step order with the DDIM step
        widths (workbench.curve_kinds)."""
        r = self.rate
        ax = r.dims.index(schema.DIMS["t"])
        out = r.copy(data=accumulated(r.values, self._ds[schema.COORD_T].values, axis=ax))
        out.name = "accumulated"
        out.attrs = {"units": "1", "long_name": "accumulated generation rate",
                     "description": "rate x DDIM timesteps: the running integral of rate over the generation in step order (largest timestep "
                                    "first) with the DDIM step widths: A(t_i) = sum_{t_j >= t_i} rate(t_j) dt_j"}
        return out

    def accumulated_se(self) -> xr.DataArray | None:
        """Standard error of `accumulated` (fully correlated bound, workbench.curve_kinds), or None."""
        se = self.se
        if se is None:
            return None
        ax = se.dims.index(schema.DIMS["t"])
        return se.copy(data=accumulated_se(se.values, self._ds[schema.COORD_T].values, axis=ax))

    def select(self, image: str) -> xr.Dataset:
        """One complete image of a multi-image group as a single-image cube (t, y, x): `image` is its
        name (the `image_id` coordinate), cube key (or a key prefix of 8+ digits) or source path. A slot
        whose `done` flag is 0 is absent."""
        return select_image(self._ds, image)

    def pixel(self, y: int, x: int, *, kind: str = "rate") -> xr.DataArray:
        """Curve of `kind` ('rate' or 'accumulated') of model-grid pixel (y, x): DataArray over t
        (coordinate `timestep`; coordinate `rate_se`, its standard error, when the cube has one)."""
        D = schema.DIMS
        H, W = self.rate.sizes[D["y"]], self.rate.sizes[D["x"]]
        if not (0 <= int(y) < H and 0 <= int(x) < W):
            raise WorkbenchError(f"pixel (y={y}, x={x}) is outside the {H}x{W} model grid")
        at = {D["y"]: int(y), D["x"]: int(x)}
        if check_kind(kind) != "rate":
            curve = self.pixel(y, x)
            return self._accumulate(curve)
        se = self.se
        return self._with_se(self.rate.isel(at).load(), None if se is None else se.isel(at))

    def _accumulate(self, curve: xr.DataArray) -> xr.DataArray:
        """A per-step curve over t (with its `rate_se` coordinate, if any) -> its accumulated curve."""
        ts = self._ds[schema.COORD_T].values
        ax = curve.dims.index(schema.DIMS["t"])
        out = curve.copy(data=accumulated(curve.values, ts, axis=ax))
        if schema.VAR_RATE_SE in out.coords:
            se = curve.coords[schema.VAR_RATE_SE]
            out = out.assign_coords({schema.VAR_RATE_SE: se.copy(data=accumulated_se(se.values, ts, axis=ax))})
        out.name = "accumulated"
        return out

    def region(self, mask, *, kind: str = "rate") -> xr.DataArray:
        """Mean curve of `kind` ('rate' or 'accumulated') over a (y, x) region: `mask` bool or non-negative
        weights on the model grid."""
        D = schema.DIMS
        m = np.asarray(mask.values if isinstance(mask, xr.DataArray) else mask, dtype=np.float64)
        shape = (self.rate.sizes[D["y"]], self.rate.sizes[D["x"]])
        if m.shape != shape:
            raise WorkbenchError(f"the mask is {m.shape[0]}x{m.shape[1] if m.ndim > 1 else '?'} but the model grid is "
                                 f"{shape[0]}x{shape[1]}: resize it (adapter.mask_to_model) first")
        if (m < 0).any() or m.sum() <= 0:
            raise WorkbenchError("the region mask is empty (or has negative weights): select at least one pixel")
        w = xr.DataArray(m / m.sum(), dims=(D["y"], D["x"]))
        ys, xs = np.nonzero(m)
        box = {D["y"]: slice(ys.min(), ys.max() + 1), D["x"]: slice(xs.min(), xs.max() + 1)}
        sub = self.rate.isel(box).load()
        curve = (sub * w.isel(box)).sum((D["y"], D["x"]))
        se = self.se
        out = self._with_se(curve, None if se is None else (se.isel(box).load() * w.isel(box)).sum((D["y"], D["x"])))
        return out if check_kind(kind) == "rate" else self._accumulate(out)

    def at(self, t: int, *, kind: str = "rate") -> xr.DataArray:
        """Map (y, x) of `kind` ('rate' or 'accumulated') at the timestep nearest to `t` (its `timestep`
        coordinate says which; the coordinate `rate_se` holds the map's standard errors when the cube has
        them)."""
        ts = self._ds[schema.COORD_T].values
        i = int(np.argmin(np.abs(ts.astype(np.int64) - int(t))))
        curve, se = self._kind(kind)
        at = {schema.DIMS["t"]: i}
        return self._with_se(curve.isel(at).load(), None if se is None else se.isel(at))

    def source_pixel(self, x: int, y: int) -> tuple[int, int]:
        """Pixel (x, y) of the source image -> model-grid (y, x) (workbench.pipeline.source_to_model_pixel)."""
        a = self._ds.attrs
        if "source_size" not in a:
            raise WorkbenchError("this cube has no source_size attribute: pass model-grid coordinates instead")
        D = schema.DIMS
        grid = CubeGrid((self._ds.sizes[D["image_y"]], self._ds.sizes[D["image_x"]]), int(a.get("scale", 1)))
        H0, W0 = (int(v) for v in np.atleast_1d(a["source_size"])[:2])
        return source_to_model_pixel(grid, int(x), int(y), (H0, W0))

    def fluctuation(self, **kw) -> xr.DataArray:
        """Fluctuation map of the cube, by the function `analysis` registers (import analysis first)."""
        if not _FLUCTUATION:
            raise WorkbenchError("no fluctuation function registered: `import analysis` first")
        return _FLUCTUATION[0](self.rate, **kw)


def _matches(values, image: str) -> np.ndarray:
    v = np.asarray([str(x) for x in np.atleast_1d(values)])
    return v == image


def select_image(ds: xr.Dataset, image: str) -> xr.Dataset:
    """The complete slot of a labelled group Dataset answering to `image` (see `CurvesAccessor.select`),
    as a single-image cube; a one-line WorkbenchError when none or several do."""
    from .slots import slot_dataset

    D = schema.DIMS
    q = str(image)
    if D["image"] not in ds.dims:  # a single-image cube already
        names = [str(ds.coords[c].values) for c in (D["image"], schema.COORD_KEY, schema.COORD_SOURCE) if c in ds.coords]
        names += [str(ds.attrs.get(k, "")) for k in ("name", "key", "source_image")]
        if q in names or (len(q) >= 8 and str(ds.attrs.get("key", "")).startswith(q)):
            return ds
        raise WorkbenchError(f"this cube is {ds.attrs.get('name', '?')} ({ds.attrs.get('key', '?')}), not {q!r}")
    if schema.COORD_KEY not in ds.coords:
        ds = schema.label_group(ds)
    keys = np.asarray([str(k) for k in ds[schema.COORD_KEY].values])
    hit = _matches(ds[D["image"]].values, q) | (keys == q) | _matches(ds[schema.COORD_SOURCE].values, q)
    if not hit.any() and len(q) >= 8:
        hit = np.char.startswith(keys, q)
    if not hit.any():
        hit = np.asarray([PurePath(str(s)).name == q for s in ds[schema.COORD_SOURCE].values])
    if schema.VAR_DONE in ds.variables:
        hit &= np.asarray(ds[schema.VAR_DONE].values).astype(bool)
    idx = np.nonzero(hit)[0]
    if len(idx) == 0:
        names = [str(v) for v in ds[D["image"]].values][:6]
        raise WorkbenchError(f"no complete cube of {q!r} in this group (it has {', '.join(names)}"
                             f"{' ...' if ds.sizes[D['image']] > 6 else ''}): pass an image name, key or source path")
    if len(idx) > 1:
        raise WorkbenchError(f"{q!r} names {len(idx)} cubes of this group ({', '.join(keys[idx][:4])}): pass the key")
    return slot_dataset(ds, int(idx[0]))


@xr.register_datatree_accessor("curves")
class TreeCurvesAccessor:
    """`tree.curves.select(image=...)` over a store's DataTree (cache.open_store): the one complete cube
    of that name, key or source among all groups."""

    def __init__(self, tree: xr.DataTree):
        self._tree = tree

    def select(self, image: str, **attrs) -> xr.Dataset:
        """The complete cube answering to `image` (name, key, key prefix or source) in any group, optionally
        only groups whose attributes equal `attrs` (e.g. K=32, rate_definition="eps"); one-line
        WorkbenchError when none or several (several parameter sets: pass attributes or the key)."""
        found = []
        for node in self._tree.subtree:
            ds = node.dataset
            if schema.VAR_RATE not in ds or any(ds.attrs.get(k) != v for k, v in attrs.items()):
                continue
            try:
                found.append(select_image(ds, image))
            except WorkbenchError:
                continue
        if not found:
            raise WorkbenchError(f"no complete cube of {str(image)!r} in this store{' with ' + str(attrs) if attrs else ''}"
                                 ": pass an image name, key or source path")
        if len({str(d.attrs.get("key")) for d in found}) > 1:
            raise WorkbenchError(f"{str(image)!r} has {len(found)} cubes in this store (other parameters): pass "
                                 "attributes, e.g. select(image, K=32), or the key")
        return found[0]
