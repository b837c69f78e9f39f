"""Curve-matching edits (the paper's Algorithm 1 and its four tasks), pure compute.

`run_edit(adapter, image, mask, EditConfig(task=...), ref_xy=..., callback=..., should_stop=...)`
returns an `EditResult` with the edited image, the region's curves before/after, metrics and the
classical baselines' outputs.
"""
from __future__ import annotations

from .config import TASKS, EditConfig
from .loop import EditResult, run_edit, timestep_distribution

__all__ = ["TASKS", "EditConfig", "EditResult", "run_edit", "timestep_distribution"]
