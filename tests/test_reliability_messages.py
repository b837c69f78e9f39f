"""What commands say and write when the input is unusual: --refine-to reports what it did, query's
CSV survives any file name, the dashboard's login never reads argv and Ctrl-C exits 130, a user's
folder that looks like an earlier output stays the user's."""
from __future__ import annotations

import csv
import io
import json
import shutil
import types
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from workbench.cli import main as cli

ARGS = ["--steps", "4", "--device", "cpu"]


# --- query: CSV by the csv module, one-line headers ---------------------------------------------
def test_list_csv_quotes_names_with_commas_quotes_and_newlines():
    from workbench.commands.query import _list_text

    rows = [{"name": "beach, sunset", "key": "k1", "K": 8, "source_image": "/x/beach, sunset.png"},
            {"name": 'say "hi"\nnext line', "key": "k2", "K": None, "source_image": "/x/odd.png"}]
    text = _list_text(rows, "csv")
    parsed = list(csv.reader(io.StringIO(text)))
    assert len(parsed) == 3 and all(len(r) == 10 for r in parsed)  # was 12 fields, and a row split in two
    assert parsed[1][0] == "beach, sunset" and parsed[2][0] == 'say "hi"\nnext line' and parsed[2][4] == ""


def test_curve_header_stays_one_line_for_any_name():
    from workbench.commands.query import _curve_text

    text = _curve_text([1, 2], [0.5, 0.25], {"image": "a\nb, c", "key": "k"}, "csv")
    lines = text.splitlines()
    assert lines[0].startswith("# image=") and lines[1].startswith("timestep,") and len(lines) == 4
    assert json.loads(lines[0][len("# image="):].rsplit(" key=", 1)[0]) == "a\nb, c"


# --- cubes --refine-to says what it did -----------------------------------------------------------
@pytest.fixture(scope="module")
def images(tmp_path_factory):
    d = tmp_path_factory.mktemp("refine") / "images"
    d.mkdir()
    rng = np.random.default_rng(3)
    for i in range(2):
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(d / f"r{i}.png")
    return d


def test_refine_to_reports_refined_and_new_cubes(images, tiny_pixel_dir, tmp_path, capsys):
    store = tmp_path / "store"
    base = ["cubes", str(images), "--store", str(store), "--model", str(tiny_pixel_dir), *ARGS]
    assert cli([*base, "--K", "2", "--refine-to", "2", "--refinable"]) == 0  # nothing stored yet: nothing to refine
    out = capsys.readouterr().out
    assert "no cube to refine: computed 2 new cubes" in out, out
    assert cli([*base, "--K", "2", "--refine-to", "4"]) == 0
    out = capsys.readouterr().out
    assert "refined 2 cubes from K=2 to K=4" in out, out
    capsys.readouterr()
    assert cli([*base, "--K", "2", "--refine-to", "1"]) == 2  # below every stored K: refused, nothing computed
    assert "below the K=2 probes" in capsys.readouterr().err
    bare = ["cubes", str(images), "--store", str(tmp_path / "bare"), "--model", str(tiny_pixel_dir), *ARGS]
    assert cli([*bare, "--K", "2"]) == 0  # without --refinable: no probe statistics to add to
    capsys.readouterr()
    assert cli([*bare, "--K", "2", "--refine-to", "4"]) == 0
    out = capsys.readouterr().out
    assert "no cube to refine: computed 2 new cubes (2 stored cubes with fewer probes keep no probe" in out, out


# --- the dashboard: password never from argv, Ctrl-C exits 130 --------------------------------------
class _FakeServer:
    workbench_password = None
    port = 5999

    def __init__(self, password):
        self.password = password
        self.stopped = False
        self.io_loop = types.SimpleNamespace(start=self._interrupt)

    def start(self):
        pass

    def _interrupt(self):
        raise KeyboardInterrupt

    def stop(self):
        self.stopped = True


@pytest.fixture()
def fake_serve(monkeypatch):
    import dashboards.app as app
    import dashboards.context as context

    seen = {}

    def serve(ctx, **kw):
        seen["server"] = _FakeServer(kw.get("password"))
        return seen["server"]
    monkeypatch.setattr(app, "serve", serve)
    monkeypatch.setattr(app, "check_port_free", lambda *a: None)
    monkeypatch.setattr(context.AppContext, "from_paths", classmethod(lambda cls, *a, **kw: object()))
    monkeypatch.delenv(app.PASSWORD_ENV, raising=False)
    return seen


def test_dashboard_ctrl_c_exits_130(fake_serve, tmp_path, capsys):
    assert cli(["dashboard", "--store", str(tmp_path / "st"), "--port", "0"]) == 130  # was 0
    assert fake_serve["server"].stopped
    assert "Traceback" not in capsys.readouterr().err


def test_dashboard_password_from_file_environment_or_prompt(fake_serve, tmp_path, monkeypatch):
    import getpass
    import sys

    from dashboards.app import PASSWORD_ENV

    pw = tmp_path / "pw"
    pw.write_text("s3cret\nignored\n")
    assert cli(["dashboard", "--store", str(tmp_path / "st"), "--password-file", str(pw)]) == 130
    assert fake_serve["server"].password == "s3cret"
    monkeypatch.setenv(PASSWORD_ENV, "from-env")
    assert cli(["dashboard", "--store", str(tmp_path / "st"), "--basic-auth"]) == 130
    assert fake_serve["server"].password == "from-env"
    monkeypatch.delenv(PASSWORD_ENV)
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True, raising=False)
    monkeypatch.setattr(getpass, "getpass", lambda prompt="": "typed")
    assert cli(["dashboard", "--store", str(tmp_path / "st"), "--basic-auth"]) == 130
    assert fake_serve["server"].password == "typed"


# --- outputs: only the marker makes a folder an earlier output ------------------------------------
def test_overwrite_into_a_users_folder_keeps_files_it_does_not_write(tmp_path):
    from workbench.outputs import MARKER, OutputDir

    from workbench.errors import WorkbenchError

    folder = tmp_path / "paper"
    folder.mkdir()
    (folder / "results.json").write_text("mine")
    (folder / "notes.txt").write_text("mine too")
    with pytest.raises(WorkbenchError, match="--overwrite"):
        OutputDir(folder, "experiment")
    out = OutputDir(folder, "experiment", overwrite=True)
    with out.staging() as st:
        st.write_text("report.html", "<p>new</p>")
    assert (folder / "results.json").read_text() == "mine" and (folder / "notes.txt").read_text() == "mine too"
    marker = json.loads((folder / MARKER).read_text())
    assert list(marker["files"]) == ["report.html"]
    again = OutputDir(folder, "experiment")  # an earlier output now, by its marker
    with pytest.raises(WorkbenchError, match="results.json"):
        again.check_names(["results.json"])  # still the user's
    shutil.rmtree(folder)


def test_train_export_is_an_output_folder_with_a_marker(tmp_path, monkeypatch):
    import workbench.train as train_mod
    from workbench.commands.train import EXPORT_FILES, _export, _export_dir
    from workbench.errors import WorkbenchError
    from workbench.outputs import MARKER

    def fake_export(checkpoint, out_dir, **kw):
        for rel in EXPORT_FILES:
            f = Path(out_dir) / rel
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_text(f"{rel} of {checkpoint}")
    monkeypatch.setattr(train_mod, "export_model", fake_export)
    user = tmp_path / "mine"
    user.mkdir()
    (user / "model_card.json").write_text("{}")  # looked like an earlier export before: it is the user's
    (user / "notes.txt").write_text("mine")
    with pytest.raises(WorkbenchError, match="--overwrite"):
        _export_dir(str(user), False)
    out = tmp_path / "model"
    _export("ck1", _export_dir(str(out), False))
    assert sorted(json.loads((out / MARKER).read_text())["files"]) == sorted(EXPORT_FILES)
    _export("ck2", _export_dir(str(out), False))  # an earlier export: replaced
    assert (out / "model_card.json").read_text() == "model_card.json of ck2"
    (out / "model_card.json").write_text("edited by hand")
    with pytest.raises(WorkbenchError, match="model_card.json"):
        _export_dir(str(out), False)


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
