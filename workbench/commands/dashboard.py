"""`workbench dashboard [--store PATH] [--dataset DIR] [--model DIR] [--port N]`: the Panel dashboards.

Loopback by default. `--address A --allow-remote` requires a login (the password from
$WORKBENCH_DASHBOARD_PASSWORD, `--password-file FILE`, a prompt with `--basic-auth`, or a random one
printed once; never from the command line, where `ps` shows it to every user) and accepts websocket connections
only from the bound host's names and `--allow-origin` hosts (dashboards.app.serve)."""
from __future__ import annotations

import argparse
import getpass
import os
import sys
from pathlib import Path

import torch

from ..errors import WorkbenchError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("dashboard", help="serve the Explore / Saliency / Edit dashboards in the browser",
                       description="Serve the dashboards over a cube store on http://127.0.0.1:PORT (this machine "
                                   "only, unless --address and --allow-remote say otherwise). Every browser tab "
                                   "gets its own state.")
    p.add_argument("--store", default="cubes", help="cube store folder (created when missing; default ./cubes)")
    p.add_argument("--dataset", default=None, help="saliency data set folder (OSIE, MIT/CAT2000 or image+map pairs)")
    p.add_argument("--model", default=None, help="model folder or HF-cache repo id for new cubes and edits "
                                                 "(default: the shipped model)")
    p.add_argument("--device", default=None, help="cpu, cuda, ... (default: cuda if available)")
    p.add_argument("--port", type=int, default=5006, help="port (default 5006; 0 = any free port)")
    p.add_argument("--address", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--allow-remote", action="store_true",
                   help="allow a non-loopback --address; a login is then required (see --basic-auth)")
    p.add_argument("--basic-auth", nargs="?", const=True, default=None, metavar="",
                   help="require the login page (any user name), also on loopback; its password comes from "
                        "$WORKBENCH_DASHBOARD_PASSWORD, else --password-file, else a prompt; never from the command "
                        "line (visible in ps). Remote serving always requires a login (default password: random, "
                        "printed once)")
    p.add_argument("--password-file", default=None, metavar="FILE",
                   help="file whose first line is the login password (keep it readable by you only)")
    p.add_argument("--allow-origin", action="append", default=[], metavar="HOST[:PORT]",
                   help="also accept websocket connections from pages of this host (e.g. a proxy's name); by "
                        "default only the bound host's names (repeatable)")
    p.add_argument("--show", action="store_true", help="open a browser tab")
    p.set_defaults(func=run)


def _password(args, env: str) -> str | None:
    """The login password: --password-file, else $env, else a prompt when --basic-auth asks for a login;
    None: none chosen (serve() makes a random one for remote serving)."""
    if isinstance(args.basic_auth, str):
        raise WorkbenchError(f"--basic-auth no longer takes the password on the command line (every user of this "
                             f"machine sees it in `ps`): export {env}=..., or pass --password-file FILE, or "
                             "--basic-auth alone to be prompted")
    if args.password_file:
        path = Path(args.password_file).expanduser()
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise WorkbenchError(f"--password-file {path}: cannot read it ({getattr(exc, 'strerror', None) or exc}): "
                                 "pass a readable text file whose first line is the password") from None
        if not lines or not lines[0]:
            raise WorkbenchError(f"--password-file {path}: its first line is empty: write the password there")
        return lines[0]
    if os.environ.get(env):
        return os.environ[env]
    if args.basic_auth:
        if not sys.stdin.isatty():
            raise WorkbenchError(f"--basic-auth needs a password and there is no terminal to ask for it: export {env}"
                                 "=... or pass --password-file FILE")
        password = getpass.getpass("workbench dashboard: login password: ")
        if not password:
            raise WorkbenchError("--basic-auth: the password is empty: type one, or drop --basic-auth")
        return password
    return None


def run(args) -> int:
    from dashboards.app import PASSWORD_ENV, check_port_free, is_loopback, serve
    from dashboards.context import AppContext

    password = _password(args, PASSWORD_ENV)  # before anything else: an old `--basic-auth PASSWORD` is refused

    if not 0 <= args.port <= 65535:
        raise WorkbenchError(f"--port {args.port} is not a port number: use 0..65535")
    if not is_loopback(args.address) and not args.allow_remote:
        raise WorkbenchError(f"--address {args.address} would expose the dashboard beyond this machine: add "
                             "--allow-remote to do so on purpose")
    check_port_free(args.address, args.port)  # before the store and the model are loaded
    if args.dataset and not Path(args.dataset).is_dir():
        raise WorkbenchError(f"no such data set folder: {args.dataset} (check --dataset)")
    store = Path(args.store)
    if store.exists() and not store.is_dir():
        raise WorkbenchError(f"--store {store} is a file, not a cube store folder")
    if args.device and args.device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise WorkbenchError(f"--device {args.device} asked for, but no CUDA device is available: use --device cpu")
    ctx = AppContext.from_paths(store, dataset=args.dataset, model=args.model, device=args.device)
    server = serve(ctx, port=args.port, address=args.address, threaded=False, show=args.show,
                   allow_remote=args.allow_remote, allow_origin=args.allow_origin, password=password,
                   start=False)
    if server.workbench_password and password is None:
        print(f"workbench dashboard: login with any user name and the password {server.workbench_password} "
              f"(shown once; set ${PASSWORD_ENV} or --password-file to choose it)", file=sys.stderr, flush=True)
    port = server.port
    print(f"workbench dashboard: serving {store} on http://{args.address}:{port}/ (Ctrl-C stops)", flush=True)
    try:
        server.start()
        server.io_loop.start()
    except KeyboardInterrupt:  # Ctrl-C: stop serving and exit 130 like every other command
        server.stop()
        print("\nworkbench dashboard: stopped (Ctrl-C)", file=sys.stderr, flush=True)
        return 130
    return 0
