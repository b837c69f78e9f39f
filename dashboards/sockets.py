"""A closed browser tab must leave no noise behind on the server.

Panel writes a document patch as several websocket frames, each a tornado future. When the tab
closes between two frames the later futures fail with `WebSocketClosedError`, and when nothing
awaits them asyncio logs "Task exception was never retrieved" with a traceback. That is the
expected end of a connection, not an error: `quiet_closed_websockets()` installs a loop exception
handler that drops exactly these (and passes everything else to the default handler), and
`session_connections()` lets periodic callbacks notice a session whose tab is gone.

A hostile or broken client is no error either: a websocket handshake without the `bokeh`
subprotocol, without a token, with a forged or expired one made Bokeh raise `ProtocolError` from
the handler and tornado log "Uncaught exception" with a traceback for every such request.
`refuse_bad_handshakes()` installs a /ws handler that closes such a connection and logs one line.
"""
from __future__ import annotations

import asyncio
import logging

from tornado.iostream import StreamClosedError
from tornado.websocket import WebSocketClosedError

__all__ = ["quiet_closed_websockets", "session_connections", "is_closed_socket_error", "refuse_bad_handshakes"]

log = logging.getLogger(__name__)
_QUIET: dict = {}


def is_closed_socket_error(exc: BaseException | None) -> bool:
    """True for tornado's WebSocketClosedError / StreamClosedError (a peer that went away)."""
    return isinstance(exc, (WebSocketClosedError, StreamClosedError))


def _handler(loop: asyncio.AbstractEventLoop, context: dict) -> None:
    if is_closed_socket_error(context.get("exception")):
        return
    loop.default_exception_handler(context)


def quiet_closed_websockets(loop: asyncio.AbstractEventLoop | None = None) -> None:
    """On `loop` (default: the running/current one), drop unretrieved closed-websocket errors (once)."""
    try:
        loop = loop or asyncio.get_event_loop()
    except RuntimeError:
        return
    if loop.get_exception_handler() is not _handler:
        loop.set_exception_handler(_handler)


def session_connections(doc) -> int | None:
    """How many browser connections the served document `doc` has now (None when unknown). It is 0
    before the page's websocket has connected, as well as after the tab closed."""
    ctx = getattr(doc, "session_context", None)
    session = getattr(ctx, "_session", None)
    count = getattr(session, "connection_count", None)
    return None if count is None else int(count)


def refuse_bad_handshakes() -> type:
    """Make every app's /ws route answer a handshake Bokeh refuses (no `bokeh` subprotocol, no or a
    bad token, an expired session) by closing it with one warning line, without a traceback in the
    log; returns the handler class now in Bokeh's per-app routes (installed once)."""
    from bokeh.protocol.exceptions import ProtocolError
    from bokeh.server.urls import per_app_patterns
    from panel.io import server as panel_server  # Panel's import puts its WSHandler into per_app_patterns

    if "handler" not in _QUIET:
        class QuietWSHandler(panel_server.WSHandler):
            def open(self, *args, **kwargs):
                try:
                    return super().open(*args, **kwargs)
                except (ProtocolError, ValueError, KeyError, TypeError) as exc:  # a token that does not parse too
                    log.warning("refused a websocket handshake from %s: %s", self.request.remote_ip,
                                str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__)
                    self.close()
                    return None

        _QUIET["handler"] = QuietWSHandler
    for i, entry in enumerate(per_app_patterns):
        if entry[0] == r"/ws" and entry[1] is not _QUIET["handler"]:
            per_app_patterns[i] = (entry[0], _QUIET["handler"], *entry[2:])
    return _QUIET["handler"]
