"""`workbench dashboard [--store PATH] [--dataset DIR] [--model DIR] [--port N]`: the Panel dashboards.

Loopback by default. `--address A --allow-remote` requires a login (`--basic-auth PASSWORD`,
$WORKBENCH_DASHBOARD_PASSWORD, or a random password printed once) and accepts websocket connections
only from the bound host's names and `--allow-origin` hosts (dashboards.app.serve)."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

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
    p.add_argument("--basic-auth", default=None, metavar="PASSWORD",
                   help="password of the login page (any user name); default: $WORKBENCH_DASHBOARD_PASSWORD, else a "
                        "random one printed at start. Required for remote serving, optional on loopback")
    p.add_argument("--allow-origin", action="append", default=[], metavar="HOST[:PORT]",
                   help="also accept websocket connections from pages of this host (e.g. a proxy's name); by "
                        "default only the bound host's names (repeatable)")
    p.add_argument("--show", action="store_true", help="open a browser tab")
    p.set_defaults(func=run)


def run(args) -> int:
    from dashboards.app import PASSWORD_ENV, check_port_free, is_loopback, serve
    from dashboards.context import AppContext

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
        import torch

        if not torch.cuda.is_available():
            raise WorkbenchError(f"--device {args.device} asked for, but no CUDA device is available: use --device cpu")
    ctx = AppContext.from_paths(store, dataset=args.dataset, model=args.model, device=args.device)
    server = serve(ctx, port=args.port, address=args.address, threaded=False, show=args.show,
                   allow_remote=args.allow_remote, allow_origin=args.allow_origin, password=args.basic_auth,
                   start=False)
    if server.workbench_password and not args.basic_auth and not os.environ.get(PASSWORD_ENV):
        print(f"workbench dashboard: login with any user name and the password {server.workbench_password} "
              f"(shown once; set --basic-auth or ${PASSWORD_ENV} to choose it)", file=sys.stderr, flush=True)
    port = server.port
    print(f"workbench dashboard: serving {store} on http://{args.address}:{port}/ (Ctrl-C stops)", flush=True)
    try:
        server.start()
        server.io_loop.start()
    except KeyboardInterrupt:
        server.stop()
    return 0
