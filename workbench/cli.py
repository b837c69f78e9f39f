"""The `workbench` command: builds a run description from arguments and calls the library.

Subcommands live in `workbench.commands.<name>` modules, each with `register(subparsers)`
that adds its parser and sets `func`. A `WorkbenchError` (user mistake), a bad argument and an
operating-system error (disk full, permission, read-only, link loop ...: `errors.os_error_line`)
each print one line `workbench <cmd>: error: ...` and exit 2; Ctrl-C exits 130.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import warnings

from .errors import WorkbenchError, os_error_line

__all__ = ["main", "COMMAND_MODULES"]

COMMAND_MODULES = ("run", "curve", "train", "cubes", "query", "export", "experiment", "edit", "dashboard", "check", "doctor")


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


class _OneLineParser(argparse.ArgumentParser):
    """argparse that reports a bad argument in one line (no usage block) and exits 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(prog="workbench", description="Generation rates and curves of diffusion models.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(f"workbench.commands.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args, extra = parser.parse_known_args(argv)
    except SystemExit as exc:  # --help (0) or a bad argument (2, one line already printed)
        return int(exc.code or 0)
    if extra:
        print(f"workbench {args.command}: error: unrecognized arguments: {' '.join(extra)} (see workbench "
              f"{args.command} --help)", file=sys.stderr)
        return 2
    _quiet_libraries()
    try:
        rc = int(args.func(args) or 0)
        sys.stdout.flush()  # a full disk behind stdout shows here, not as an ignored exception at exit
        return rc
    except WorkbenchError as exc:
        _close_bars()
        print(f"workbench {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
    except OSError as exc:
        _drop_stdout()
        _close_bars()
        print(f"workbench {args.command}: error: {os_error_line(exc)}", file=sys.stderr)
        return 2
    except MemoryError:
        _close_bars()
        print(f"workbench {args.command}: error: out of memory: use smaller settings (fewer steps, a smaller K, "
              "a smaller batch) or a machine with more memory", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"workbench {args.command}: interrupted", file=sys.stderr)
        return 130


def _close_bars() -> None:
    """Close the progress bars still open, so that an error line starts on a clean line of its own."""
    tqdm = sys.modules.get("tqdm")
    for bar in list(getattr(getattr(tqdm, "tqdm", None), "_instances", None) or []):
        try:
            bar.leave = False
            bar.close()
        except Exception:  # a bar that cannot close must not hide the error
            pass


def _drop_stdout() -> None:
    """After stdout failed (disk full, closed pipe), send what is left of it nowhere."""
    try:
        sys.stdout.flush()
    except OSError:
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass


if __name__ == "__main__":
    sys.exit(main())
