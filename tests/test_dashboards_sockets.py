"""dashboards.sockets: hostile websocket handshakes are refused with one log line, no traceback."""
from __future__ import annotations

def test_hostile_websocket_handshakes_leave_no_traceback_in_the_log():
    import base64
    import logging
    import os
    import socket
    import time

    from dashboards.app import free_port, serve
    from test_dashboard_security import _up

    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record)

    keep = Keep(level=logging.DEBUG)
    loggers = [logging.getLogger(n) for n in ("tornado.application", "tornado.general", "bokeh", "dashboards")]
    for lg in loggers:
        lg.addHandler(keep)
    port = free_port()
    srv = serve(None, port=port, address="127.0.0.1")  # no session is opened: the context is never used
    try:
        _up(port)
        for protocol in ("", "Sec-WebSocket-Protocol: chat\r\n", "Sec-WebSocket-Protocol: bokeh, gAAAA.bad!!\r\n",
                         "Sec-WebSocket-Protocol: bokeh, " + "x" * 300 + "\r\n"):
            key = base64.b64encode(os.urandom(16)).decode()
            with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
                s.sendall((f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade"
                           f"\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nOrigin: "
                           f"http://127.0.0.1:{port}\r\n{protocol}\r\n").encode())
                s.recv(4096)
            time.sleep(0.3)
    finally:
        srv.stop()
        for lg in loggers:
            lg.removeHandler(keep)
    assert not [r for r in records if r.exc_info or "Uncaught exception" in r.getMessage()], \
        [r.getMessage() for r in records]  # each was "Uncaught exception GET /ws" with a traceback
    assert sum("refused a websocket handshake" in r.getMessage() for r in records) == 4
