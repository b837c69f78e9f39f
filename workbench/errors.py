"""The one error type that the command line turns into a one-line message, and the one line that
an operating-system error (disk full, permission, read-only, exists, link loop ...) becomes."""
from __future__ import annotations

import errno

__all__ = ["WorkbenchError", "os_error_line"]


class WorkbenchError(Exception):
    """A user mistake or a missing resource: the message names the problem and the fix."""


_FIXES = {
    errno.ENOSPC: "the disk is full: free some space or write to another disk",
    errno.EDQUOT: "the disk quota is used up: free some space or write elsewhere",
    errno.EFBIG: "the file grew past the size limit (ulimit -f): raise the limit or write elsewhere",
    errno.EACCES: "permission denied: check the permissions of the path or choose another one",
    errno.EPERM: "operation not permitted: check the permissions of the path or choose another one",
    errno.EROFS: "the file system is read-only: choose a writable folder",
    errno.EEXIST: "it already exists: choose another path",
    errno.ELOOP: "too many levels of symbolic links (a link loop?): fix or remove the link",
    errno.ENOENT: "no such file or folder: check the path",
    errno.ENOTDIR: "a part of the path is a file, not a folder: check the path",
    errno.EISDIR: "it is a folder, not a file: pass a file path",
    errno.ENAMETOOLONG: "the file name is too long: choose a shorter path",
    errno.EMFILE: "too many open files: raise the limit (ulimit -n) or close other programs",
    errno.ENOMEM: "out of memory: close other programs or use smaller settings",
    errno.EIO: "input/output error: the disk may be failing; check it and retry",
    errno.EADDRINUSE: "the address is already in use: pick another --port or stop the other server",
    errno.EADDRNOTAVAIL: "the address is not available on this machine: pick another --address",
    errno.EXDEV: "cannot move files across disks: keep the output on one disk",
}


def os_error_line(exc: OSError, verb: str = "") -> str:
    """One line for an OSError: what failed, on which path, and the fix for its errno.

    `verb` (e.g. "could not write") is put in front of the path when given."""
    paths = [p for p in (getattr(exc, "filename", None), getattr(exc, "filename2", None)) if p not in (None, "")]
    where = " -> ".join(str(p) for p in paths)
    fix = _FIXES.get(exc.errno or -1)
    what = exc.strerror or (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    head = f"{verb} {where}".strip() if verb else where
    parts = [f"{head}: {what}" if head else what]
    if fix:
        parts.append(f"({fix})")
    return " ".join(parts)
