"""The `ds.curves` accessor: curves and maps out of a cube Dataset (single- or multi-image).

    ds.curves.pixel(y, x)          rate curve of one model-grid pixel       -> (t) [or (image_id, t)]
    ds.curves.region(mask)         mean curve over a (y, x) mask/weights     -> (t)
    ds.curves.at(t)                rate map at the nearest timestep          -> (y, x)
    ds.curves.se                   the cube's rate_se (None for cubes of schema < 3)

The three queries carry the standard error as the coordinate `rate_se` (same dims as the result)
when the cube has one: `curve.rate_se`. A region's SE is the weighted sum of its pixels' SEs, an
upper bound (the pixels share the probes, so their errors are correlated).
    ds.curves.source_pixel(x, y)   source-image pixel -> model-grid (y, x)
    ds.curves.fluctuation(**kw)    fluctuation map, registered by `analysis` (cache never imports it)
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import xarray as xr

from workbench.errors import WorkbenchError

from . import schema

__all__ = ["CurvesAccessor", "register_fluctuation", "CubeGrid"]

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

    def pixel(self, y: int, x: int) -> xr.DataArray:
        """Rate curve of model-grid pixel (y, x): DataArray over t (coordinate `timestep`; coordinate
        `rate_se`, its standard error, when the cube has one)."""
        D = schema.DIMS
        H, W = self.rate.sizes[D["y"]], self.rate.sizes[D["x"]]
        if not (0 <= int(y) < H and 0 <= int(x) < W):
            raise WorkbenchError(f"pixel (y={y}, x={x}) is outside the {H}x{W} model grid")
        at = {D["y"]: int(y), D["x"]: int(x)}
        se = self.se
        return self._with_se(self.rate.isel(at).load(), None if se is None else se.isel(at))

    def region(self, mask) -> xr.DataArray:
        """Mean rate curve over a (y, x) region: `mask` bool or non-negative weights on the model grid."""
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
        return self._with_se(curve, None if se is None else (se.isel(box).load() * w.isel(box)).sum((D["y"], D["x"])))

    def at(self, t: int) -> xr.DataArray:
        """Rate map (y, x) at the timestep nearest to `t` (its `timestep` coordinate says which; the
        coordinate `rate_se` holds the map's standard errors when the cube has them)."""
        ts = self._ds[schema.COORD_T].values
        i = int(np.argmin(np.abs(ts.astype(np.int64) - int(t))))
        se = self.se
        at = {schema.DIMS["t"]: i}
        return self._with_se(self.rate.isel(at).load(), None if se is None else se.isel(at))

    def source_pixel(self, x: int, y: int) -> tuple[int, int]:
        """Pixel (x, y) of the source image -> model-grid (y, x) (workbench.pipeline.source_to_model_pixel)."""
        from workbench.pipeline import source_to_model_pixel

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
