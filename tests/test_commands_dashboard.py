"""`workbench dashboard` (workbench.commands.dashboard): refusals before anything is served, the password
never from argv, Ctrl-C exits 130."""
from __future__ import annotations

import types

import pytest

from workbench.cli import main as cli


def test_dashboard_command_refuses_remote_binding_without_the_flag(tmp_path, capsys):
    from workbench.cli import main

    assert main(["dashboard", "--store", str(tmp_path / "s"), "--address", "0.0.0.0"]) == 2
    err = capsys.readouterr().err
    assert "--allow-remote" in err and "Traceback" not in err
    assert main(["dashboard", "--store", str(tmp_path / "s"), "--dataset", str(tmp_path / "nope")]) == 2
    assert "no such data set folder" in capsys.readouterr().err


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
