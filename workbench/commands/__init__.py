"""Subcommands of `workbench`; each module exposes `register(subparsers)`."""
