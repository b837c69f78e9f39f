"""What every benchmark records beside its timings: peak memory and the machine's load."""
from __future__ import annotations

import os
from pathlib import Path

import torch

__all__ = ["reset_peak", "peak_mb", "load_average"]


def reset_peak(device: torch.device) -> None:
    """Start a new peak-memory measurement (CUDA allocator stats; the process's VmHWM on Linux)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass


def peak_mb(device: torch.device) -> dict:
    """Peak memory since `reset_peak` in MiB: {"peak_cuda_mb", "peak_rss_mb"} as available."""
    out = {}
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        out["peak_cuda_mb"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    try:
        line = [ln for ln in Path("/proc/self/status").read_text().splitlines() if ln.startswith("VmHWM")][0]
        out["peak_rss_mb"] = round(int(line.split()[1]) / 1024, 1)
    except (OSError, IndexError):
        import resource

        out["peak_rss_mb_since_start"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return out


def load_average() -> list[float] | None:
    """The 1/5/15-minute load averages (what else ran while a figure was measured)."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None
