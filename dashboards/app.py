"""The dashboard application: three views in tabs, one fresh set of views per browser session.

`WorkbenchApp(context)` is the per-session root (Explore, Saliency, Edit); `serve(context,
...)` starts a Bokeh/Panel server whose app factory builds a new `WorkbenchApp` for every
session, so two tabs never share a selection, a clicked pixel or an edit. What sessions do
share is the read-only `AppContext` (the cube catalog, the data set, the loaded model).
"""
from __future__ import annotations

import ipaddress
import logging
import socket
import warnings

import panel as pn
import param

from .context import AppContext

__all__ = ["WorkbenchApp", "serve", "is_loopback", "free_port", "EXTENSIONS"]

EXTENSIONS = ("plotly", "tabulator")
TITLE = "genrate workbench"


class WorkbenchApp(pn.viewable.Viewer):
    """One session's dashboard: the Explore, Saliency and Edit views in tabs."""

    active = param.Integer(default=0, bounds=(0, 2), doc="index of the shown tab")

    def __init__(self, context: AppContext, **params):
        super().__init__(**params)
        from .edit import EditView
        from .explore import ExploreView
        from .saliency import SaliencyView

        self.context = context
        self.explore = ExploreView(context)
        self.saliency = SaliencyView(context)
        self.edit = EditView(context)

    def __panel__(self):
        tabs = pn.Tabs(("Explore", self.explore), ("Saliency", self.saliency), ("Edit", self.edit),
                       dynamic=True, sizing_mode="stretch_width")
        tabs.link(self, active="active", bidirectional=True)
        store = f"store `{self.context.catalog.path}`"
        header = pn.pane.Markdown(f"## {TITLE} &nbsp; <small>{store}</small>", margin=(0, 10))
        return pn.Column(header, tabs, sizing_mode="stretch_width")


def is_loopback(address: str) -> bool:
    """True for 127.0.0.0/8, ::1 and 'localhost'."""
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def free_port(address: str = "127.0.0.1") -> int:
    """A TCP port that is free on `address` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((address, 0))
        return int(s.getsockname()[1])


def serve(context: AppContext, *, port: int = 5006, address: str = "127.0.0.1", threaded: bool = True,
          show: bool = False, allow_remote: bool = False, **kw):
    """Start the server (a new `WorkbenchApp` per session) and return it (a StoppableThread when threaded).

    Binding to anything but a loopback address needs `allow_remote=True` and prints a warning:
    the dashboard has no authentication and can read the store and run the model.
    """
    if not is_loopback(address):
        if not allow_remote:
            from workbench.errors import WorkbenchError

            raise WorkbenchError(f"--address {address} would expose the dashboard beyond this machine: add "
                                 "--allow-remote to do so on purpose")
        warnings.warn(f"serving on {address}: anyone who can reach this port can read the store and run the model "
                      "(no authentication)", stacklevel=2)
    logging.getLogger("bokeh").setLevel(logging.WARNING)
    port = port or free_port(address if address != "localhost" else "127.0.0.1")
    origins = [f"{h}:{port}" for h in ("localhost", "127.0.0.1", address)]

    def session():
        pn.extension(*EXTENSIONS, notifications=True)
        return WorkbenchApp(context).__panel__()

    pn.extension(*EXTENSIONS, notifications=True)
    return pn.serve({"/": session}, port=port, address=address, show=show, threaded=threaded,
                    websocket_origin=origins if not allow_remote else "*", title=TITLE, **kw)
