"""The `workbench` command: builds a run description from arguments and calls the library.

Subcommands live in `workbench.commands.<name>` modules, each with `register(subparsers)`
that adds its parser and sets `func`. A `WorkbenchError` (user mistake) prints one line and
exits 2; Ctrl-C exits 130.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import warnings

from .errors import WorkbenchError

__all__ = ["main", "COMMAND_MODULES"]

COMMAND_MODULES = ("run", "curve", "train", "cubes", "query", "export", "experiment", "edit", "dashboard")


def _quiet_libraries() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    warnings.filterwarnings("ignore", category=UserWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    try:
        import diffusers

        diffusers.utils.logging.set_verbosity_error()
        diffusers.utils.logging.disable_progress_bar()
    except Exception:  # diffusers is a hard dependency; this only trims its chatter
        pass
    logging.getLogger("distributed").setLevel(logging.ERROR)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="workbench", description="Generation rates and curves of diffusion models.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        try:
            mod = importlib.import_module(f"workbench.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"workbench.commands.{name}":
                continue
            raise
        mod.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _quiet_libraries()
    try:
        return int(args.func(args) or 0)
    except WorkbenchError as exc:
        print(f"workbench {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        print(f"workbench {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
