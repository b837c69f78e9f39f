"""Panel dashboards over the cube store and the analysis: Explore, Saliency and Edit.

`workbench dashboard --store PATH` serves them (dashboards.app.serve); every browser session
gets its own `WorkbenchApp` (dashboards.app), whose views are `pn.viewable.Viewer` classes:
`ExploreView` (dashboards.explore), `SaliencyView` (dashboards.saliency), `EditView`
(dashboards.edit). Their logic is parameters and methods, testable without a browser; the
figures are pure functions (dashboards.figures, dashboards.selection); long work runs in
`dashboards.jobs.Job` threads. Imports point one way: dashboards -> analysis -> cache -> workbench.
"""
from __future__ import annotations

__all__: list[str] = []
