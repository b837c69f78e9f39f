"""The one error type that the command line turns into a one-line message."""
from __future__ import annotations

__all__ = ["WorkbenchError"]


class WorkbenchError(Exception):
    """A user mistake or a missing resource: the message names the problem and the fix."""
