"""Dashboard serving: websocket origins, the login of a remote server, the /components route, ports in use.

Real servers on free ports, driven with raw HTTP and a raw websocket handshake (no browser).
"""
from __future__ import annotations

import base64
import os
import socket
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from dashboards.app import free_port, serve
from workbench.cli import main as cli


def _get(port: int, path: str, *, data: dict | None = None, cookie: str | None = None):
    """(status, body, Set-Cookie) of one request, redirects not followed."""
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *a, **k):
            return None

    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}",
                                 data=urllib.parse.urlencode(data).encode() if data else None,
                                 headers={"Cookie": cookie} if cookie else {})
    try:
        r = urllib.request.build_opener(NoRedirect).open(req, timeout=30)
        return r.status, r.read(), r.headers.get_all("Set-Cookie") or []
    except urllib.error.HTTPError as e:
        return e.code, b"", e.headers.get_all("Set-Cookie") or []


def _ws_status(port: int, origin: str, cookie: str | None = None) -> str:
    """Status line of a raw websocket handshake on /ws with this Origin header."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        key = base64.b64encode(os.urandom(16)).decode()
        extra = f"Cookie: {cookie}\r\n" if cookie else ""
        s.sendall((f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nOrigin: {origin}\r\n{extra}\r\n"
                   ).encode())
        return s.recv(4096).decode(errors="replace").split("\r\n")[0]


def _up(port: int) -> None:
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)


@pytest.fixture()
def loopback_server():
    port = free_port()
    srv = serve(None, port=port, address="127.0.0.1")  # no session is opened: the context is never used
    _up(port)
    yield port
    srv.stop()


def test_foreign_origin_websocket_is_refused(loopback_server):
    port = loopback_server
    assert " 101 " not in _ws_status(port, "http://evil.example") + " "
    assert _ws_status(port, "http://evil.example").split()[1] == "403"
    assert _ws_status(port, f"http://127.0.0.1:{port}").split()[1] == "101"  # control: the page's own origin


def test_components_route_imports_no_module(loopback_server, tmp_path, monkeypatch):
    port = loopback_server
    marker = tmp_path / "imported"
    (tmp_path / "wb_sidefx_mod.py").write_text(f"open({str(marker)!r}, 'w').write('x')\nclass X:\n"
                                              "    __css__ = ['x.css']\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    had_this = "this" in sys.modules
    assert _get(port, "/components/wb_sidefx_mod/X/__css__/x.css")[0] == 404
    assert _get(port, "/components/this/X/__css__/x")[0] == 404
    assert not marker.exists() and "wb_sidefx_mod" not in sys.modules and ("this" in sys.modules) == had_this
    # Panel's own (imported) modules still resolve: the handler gets past the module check
    status, _, _ = _get(port, "/components/panel.layout.base/Column/__css__/x")
    assert status in (403, 404)


def test_remote_server_requires_login_and_bound_origin(monkeypatch):
    monkeypatch.delenv("WORKBENCH_DASHBOARD_PASSWORD", raising=False)
    port = free_port("0.0.0.0")
    srv = serve(None, port=port, address="0.0.0.0", allow_remote=True)
    try:
        _up(port)
        password = srv.workbench_password
        assert password and len(password) >= 12
        status, body, _ = _get(port, "/")
        assert status in (302, 401, 403) and b"Panel" not in body  # no page without a login
        assert _ws_status(port, f"http://127.0.0.1:{port}").split()[1] != "101"
        status, _, cookies = _get(port, "/login", data={"username": "u", "password": "wrong"})
        assert not any(c.startswith("user=") for c in cookies)  # a wrong password gets no session cookie
        status, _, cookies = _get(port, "/login", data={"username": "u", "password": password})
        assert status == 302 and any(c.startswith("user=") for c in cookies)
        cookie = "; ".join(c.split(";")[0] for c in cookies)
        assert _get(port, "/", cookie=cookie)[0] == 200
        assert _ws_status(port, f"http://127.0.0.1:{port}", cookie=cookie).split()[1] == "101"  # control
        assert _ws_status(port, "http://evil.example", cookie=cookie).split()[1] == "403"
    finally:
        srv.stop()


def test_port_in_use_is_one_line(tmp_path, capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        assert cli(["dashboard", "--store", str(tmp_path / "st"), "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"port {port}" in err and "--port" in err and "Traceback" not in err
    assert not (tmp_path / "st").exists()
