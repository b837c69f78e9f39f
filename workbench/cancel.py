"""Cancellation between network evaluations: a check run before the denoiser's modules are called.

`checked_calls(adapter, check)` hooks `check()` (a forward pre-hook) onto each top-level module of
the adapter's denoiser for the duration of a `with` block, so every eps, h or feature evaluation of
any loop (inversion, generation, JVPs, the editing optimisation) passes through it, however the loop
is written. `check` raises to stop the work (the exception propagates out of the model call); it is
called at most every `every` seconds. The hooks are always removed.
"""
from __future__ import annotations

import contextlib
import time
from typing import Callable, Iterator

__all__ = ["checked_calls"]


@contextlib.contextmanager
def checked_calls(adapter, check: Callable[[], None], *, every: float = 0.1) -> Iterator[None]:
    """Run `check()` before the denoiser's module calls, at most every `every` seconds, inside the block."""
    last = [time.perf_counter()]

    def hook(*_args) -> None:
        now = time.perf_counter()
        if now - last[0] >= every:
            last[0] = now
            check()

    modules = list(adapter.unet.children()) or [adapter.unet]
    handles = [m.register_forward_pre_hook(hook) for m in modules]
    try:
        yield
    finally:
        for h in handles:
            h.remove()
