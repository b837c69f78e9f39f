"""workbench.errors: the one line an operating-system error becomes."""
from __future__ import annotations

import errno

from workbench.errors import os_error_line


def test_os_error_line_names_the_path_the_failure_and_the_fix():
    exc = OSError(errno.ENOSPC, "No space left on device", "out/cube.zarr")
    assert os_error_line(exc, "could not write") == (
        "could not write out/cube.zarr: No space left on device "
        "(the disk is full: free some space or write to another disk)")
    moved = OSError(errno.EXDEV, "Invalid cross-device link", "a", None, "b")
    assert os_error_line(moved) == "a -> b: Invalid cross-device link (cannot move files across disks: keep the output on one disk)"


def test_os_error_line_without_errno_or_path_is_the_message_alone():
    assert os_error_line(OSError("something odd\nsecond line")) == "something odd"
    assert os_error_line(OSError(), "could not read") == "could not read: OSError"
