"""Analysis: fluctuation maps, saliency data sets and metrics, baselines, experiments, export.

Imports point one way: dashboards -> analysis -> cache -> workbench. The cube accessor's
`ds.curves.fluctuation(window=, t_b=)` is registered here, so that `cache` never imports `analysis`.
"""
from __future__ import annotations

from cache.accessor import register_fluctuation

from .fluctuation import DEFAULT_NORMALISE, DEFAULT_T_B, DEFAULT_WINDOW, fluctuation, fluctuation_map

__all__ = ["fluctuation", "fluctuation_map", "DEFAULT_WINDOW", "DEFAULT_T_B", "DEFAULT_NORMALISE"]


def _register() -> None:
    def _fluct(rate, window: int = DEFAULT_WINDOW, t_b: float = DEFAULT_T_B, normalise: bool = DEFAULT_NORMALISE,
               **kw):
        return fluctuation_map(rate, window=window, t_b=t_b, normalise=normalise, **kw)

    register_fluctuation(_fluct)


_register()
