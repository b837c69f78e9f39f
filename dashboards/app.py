"""The dashboard application: three views in tabs, one fresh set of views per browser session.

`WorkbenchApp(context)` is the per-session root (Explore, Saliency, Edit); `serve(context,
...)` starts a Bokeh/Panel server whose app factory builds a new `WorkbenchApp` for every
session, so two tabs never share a selection, a clicked pixel or an edit. What sessions do
share is the read-only `AppContext` (the cube catalog, the data set, the loaded model).
"""
from __future__ import annotations

import errno
import ipaddress
import logging
import os
import secrets
import socket
import sys

import panel as pn
import param
from tornado.web import HTTPError

from workbench.errors import WorkbenchError

from .context import AppContext
from .edit import EditView
from .explore import ExploreView
from .saliency import SaliencyView
from .sockets import quiet_closed_websockets, refuse_bad_handshakes

__all__ = ["WorkbenchApp", "serve", "is_loopback", "free_port", "bound_hosts", "check_port_free",
           "allowed_component_module", "EXTENSIONS", "PASSWORD_ENV"]

EXTENSIONS = ("plotly", "tabulator")
TITLE = "genrate workbench"


class WorkbenchApp(pn.viewable.Viewer):
    """One session's dashboard: the Explore, Saliency and Edit views in tabs."""

    active = param.Integer(default=0, bounds=(0, 2), doc="index of the shown tab")

    def __init__(self, context: AppContext, **params):
        super().__init__(**params)
        self.context = context
        self.explore = ExploreView(context)
        self.saliency = SaliencyView(context)
        self.edit = EditView(context)
        # one "Re-read the store" (in Explore or Saliency) updates every view of the session
        self.explore.refresh_all = self.saliency.refresh_all = self.refresh

    def refresh(self) -> None:
        """Re-read the store in every view: Explore's cube list, Saliency's images and scores, Edit's images."""
        self.explore.refresh_cubes()
        self.saliency.refresh()
        self.edit.refresh_images()

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


#: top-level packages whose (already imported) modules the /components route may serve resources of
COMPONENT_PACKAGES = ("panel", "bokeh", "dashboards")
#: the environment variable that can hold the password of a remote dashboard
PASSWORD_ENV = "WORKBENCH_DASHBOARD_PASSWORD"


def allowed_component_module(name: str) -> bool:
    """True when the /components route may touch module `name`: already imported (so the request
    imports nothing) and part of Panel, Bokeh or the dashboards."""
    return name in sys.modules and name.split(".")[0] in COMPONENT_PACKAGES


def _component_handler():
    """Panel's /components/<module>/... handler, restricted to `allowed_component_module` (Panel's
    own imports any module named in the URL: `GET /components/this/X/__css__/x` ran `import this`)."""
    from panel.io.server import ComponentResourceHandler

    class RestrictedComponentHandler(ComponentResourceHandler):
        def parse_url_path(self, path: str) -> str:
            if not allowed_component_module(path.split("/")[0]):
                raise HTTPError(404, "Module not found")
            return super().parse_url_path(path)

    return RestrictedComponentHandler


def bound_hosts(address: str) -> list[str]:
    """Host names a browser may use to reach a server bound to `address` (the allowed websocket
    origins): loopback names for loopback, the address itself, and for a wildcard address (0.0.0.0,
    ::) this machine's host name, FQDN and addresses."""
    hosts = ["localhost", "127.0.0.1"] if is_loopback(address) or address in ("0.0.0.0", "::", "") else []
    if address not in ("0.0.0.0", "::", ""):
        return hosts + [address]
    names = {socket.gethostname(), socket.getfqdn()}
    for n in list(names):
        try:
            names.update(socket.gethostbyname_ex(n)[2])
        except OSError:
            pass
    return hosts + sorted(n for n in names if n)


def check_port_free(address: str, port: int) -> None:
    """Raise WorkbenchError (one line, naming the port and the fix) when `port` is taken on `address`."""
    if not port:
        return
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # what tornado sets: only a live listener conflicts
        try:
            s.bind((address if address != "localhost" else "127.0.0.1", port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise WorkbenchError(f"port {port} on {address} is already in use (another dashboard or server?): "
                                     "stop that process or pass another --port (0 = any free port)") from None
            if exc.errno == errno.EADDRNOTAVAIL:
                raise WorkbenchError(f"--address {address} is not an address of this machine: pass one of its "
                                     "addresses, 127.0.0.1 or 0.0.0.0") from None
            if exc.errno == errno.EACCES:
                raise WorkbenchError(f"port {port} needs extra privileges: pass a --port above 1023") from None
            raise


def serve(context: AppContext, *, port: int = 5006, address: str = "127.0.0.1", threaded: bool = True,
          show: bool = False, allow_remote: bool = False, allow_origin=(), password: str | None = None, **kw):
    """Start the server (a new `WorkbenchApp` per session) and return it (a StoppableThread when threaded).

    Every server: websocket connections only from pages served by this host (`bound_hosts`, plus
    `allow_origin` entries "host[:port]"), and the /components route limited to modules already
    imported from Panel, Bokeh and the dashboards. Binding to anything but a loopback address needs
    `allow_remote=True` and a password (`password`, else $WORKBENCH_DASHBOARD_PASSWORD, else a random
    one): the login page then guards every page and the websocket. The server's `workbench_password`
    attribute holds it (None on loopback without a password). A port in use is a one-line WorkbenchError.
    """
    remote = not is_loopback(address)
    if remote and not allow_remote:
        raise WorkbenchError(f"--address {address} would expose the dashboard beyond this machine: add "
                             "--allow-remote to do so on purpose")
    logging.getLogger("bokeh").setLevel(logging.WARNING)
    check_port_free(address, port)
    port = port or free_port(address if address != "localhost" else "127.0.0.1")
    origins = [h if ":" in h.rsplit("]", 1)[-1] else f"{h}:{port}" for h in (*bound_hosts(address), *allow_origin)]
    password = password or os.environ.get(PASSWORD_ENV) or (secrets.token_urlsafe(12) if remote else None)
    if password and os.path.exists(password):  # Panel would read a file of that name as a user table
        raise WorkbenchError("the dashboard password names an existing file: choose another password")
    auth = {"basic_auth": password, "cookie_secret": secrets.token_urlsafe(32)} if password else {}

    def session():
        quiet_closed_websockets()  # a tab closed mid-update is no error (dashboards/sockets.py)
        pn.extension(*EXTENSIONS, notifications=True)
        return WorkbenchApp(context).__panel__()

    pn.extension(*EXTENSIONS, notifications=True)
    refuse_bad_handshakes()  # a forged or broken websocket handshake: one log line, not a traceback
    patterns = [(r"/components/(.*)", _component_handler(), {}), *kw.pop("extra_patterns", [])]
    server = pn.serve({"/": session}, port=port, address=address, show=show, threaded=threaded,
                      websocket_origin=origins, title=TITLE, extra_patterns=patterns, **auth, **kw)
    server.workbench_password = password
    server.workbench_port = port
    return server
