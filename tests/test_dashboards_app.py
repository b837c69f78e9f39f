"""dashboards.app: sessions apart, loopback only unless allowed, the three tabs."""
from __future__ import annotations

import pytest

from workbench.errors import WorkbenchError


def test_two_sessions_do_not_share_state(ctx):
    from dashboards.app import WorkbenchApp

    a, b = WorkbenchApp(ctx), WorkbenchApp(ctx)
    a.explore.click(1, 2)
    b.explore.t_index = 5
    assert a.explore.pixels == [(1, 2)] and b.explore.pixels == []
    assert a.explore.t_index == 0 and b.explore.t_index == 5
    a.__panel__(), b.__panel__()


def test_serve_refuses_remote_and_app_builds(ctx):
    from dashboards.app import WorkbenchApp, is_loopback, serve

    assert is_loopback("127.0.0.1") and is_loopback("::1") and not is_loopback("0.0.0.0")
    with pytest.raises(WorkbenchError, match="allow"):
        serve(ctx, address="0.0.0.0", port=0)
    app = WorkbenchApp(ctx)
    header, tabs = app.__panel__().objects
    assert list(tabs._names) == ["Explore", "Saliency", "Edit"] and str(ctx.catalog.path) in header.object
    tabs.active = 2  # the tabs and the app's `active` parameter follow each other
    assert app.active == 2
