"""What all browser sessions of one `workbench dashboard` server share (read-only or locked).

`AppContext` holds the cube catalog, the saliency data set folder (if any), the model
specification and, once first needed, the loaded model adapter. Per-session state (the
selected cube, clicked pixels, the edit in progress) lives in the views, never here.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from workbench.adapters import load_model

from .catalog import CubeCatalog
from .jobs import ComputeQueue

__all__ = ["AppContext"]


@dataclass
class AppContext:
    """Shared server state: `catalog`, `dataset` folder, `model` spec, `device`, display `max_side`,
    lazy `adapter()`, and the one `queue` that every session's model computations go through."""

    catalog: CubeCatalog
    dataset: Path | None = None
    model: str | None = None
    device: str = "cpu"
    steps: int = 50
    max_side: int = 256  # maps are block-averaged to at most this many cells per side for display
    queue: ComputeQueue = field(default_factory=ComputeQueue, repr=False)
    _adapter: Any = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _memo: dict = field(default_factory=dict, repr=False)
    #: step rates measured on this server ("edit": seconds per optimisation iteration per DDIM step), so
    #: a view can say what a job will take before it is launched
    timings: dict = field(default_factory=dict, repr=False)

    @classmethod
    def from_paths(cls, store: str | Path, *, dataset: str | Path | None = None, model: str | None = None,
                   device: str | None = None, adapter=None) -> "AppContext":
        """Open (or create) the store at `store`; `adapter` short-circuits loading (tests)."""
        dev = device or ("cuda" if torch.cuda.is_available() else "cpu")
        ctx = cls(CubeCatalog(store), Path(dataset) if dataset else None, model, dev)
        ctx._adapter = adapter
        return ctx

    def adapter(self):
        """The model adapter, loaded on first use (shared by every session)."""
        with self._lock:
            if self._adapter is None:
                self._adapter = load_model(self.model, device=self.device)
            return self._adapter

    def forget(self, prefix) -> None:
        """Drop the memoised values whose key starts with `prefix` (e.g. after the store changed)."""
        with self._lock:
            for k in [k for k in self._memo if isinstance(k, tuple) and k[:1] == (prefix,)]:
                del self._memo[k]

    def memo(self, key, compute):
        """A value computed once per server for `key` (e.g. a data set's metrics table)."""
        with self._lock:
            if key in self._memo:
                return self._memo[key]
        value = compute()
        with self._lock:
            self._memo[key] = value
        return value
