"""A closed browser tab must leave no noise behind on the server.

Panel writes a document patch as several websocket frames, each a tornado future. When the tab
closes between two frames the later futures fail with `WebSocketClosedError`, and when nothing
awaits them asyncio logs "Task exception was never retrieved" with a traceback. That is the
expected end of a connection, not an error: `quiet_closed_websockets()` installs a loop exception
handler that drops exactly these (and passes everything else to the default handler), and
`session_connections()` lets periodic callbacks notice a session whose tab is gone.
"""
from __future__ import annotations

import asyncio

__all__ = ["quiet_closed_websockets", "session_connections", "is_closed_socket_error"]


def is_closed_socket_error(exc: BaseException | None) -> bool:
    """True for tornado's WebSocketClosedError / StreamClosedError (a peer that went away)."""
    from tornado.iostream import StreamClosedError
    from tornado.websocket import WebSocketClosedError

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
