"""The memory budget: how many samples (probes, timesteps, tangents) one autodiff pass may carry.

A budget is the peak memory a run may reach: the resident set of the process on the CPU, the
allocated device memory on CUDA. It comes from `--max-memory` or, automatically, from the device's
free memory (CUDA: `torch.cuda.mem_get_info`; CPU: `AUTO_FRACTION` of the available RAM).

The cost of one sample is measured once per (model, resolution, dtype, mode) by a probe run at
batch 1: the peak memory above what was in use before it (CUDA: `max_memory_allocated`; CPU: the
resident set sampled every millisecond while the probe runs, and the process's `VmHWM` when the
probe raised it; VmHWM is never reset, so a benchmark's own peak figure stays whole). A chunk is then
`floor(SAFETY * (budget - in use) / cost)`: the whole sample cost, fixed parts included, counts
once per sample, so the estimate errs on the side of smaller chunks (slower rather than larger).
Where one sample does not fit, a one-line `WorkbenchError` names the smallest budget that does.
"""
from __future__ import annotations

import ctypes
import gc
import math
import os
import re
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Hashable
import threading

import torch

from .errors import WorkbenchError

__all__ = ["MemoryBudget", "AUTO_FRACTION", "SAFETY", "parse_size", "format_size", "auto_budget", "given_budget", "budget_from",
           "budget_of", "in_use", "measure_peak", "sample_cost", "chunk_for", "autodiff_chunk", "default_cap"]

#: share of the RAM the OS reports as available that an automatic CPU budget may use
AUTO_FRACTION = 0.5
#: share of the free CUDA memory that an automatic GPU budget may use
AUTO_CUDA_FRACTION = 0.9
#: share of the headroom that chunks may fill (allocator slack, fragmentation, small temporaries)
SAFETY = 0.8

_UNITS = {"": 1, "b": 1, "k": 1e3, "kb": 1e3, "m": 1e6, "mb": 1e6, "g": 1e9, "gb": 1e9, "t": 1e12, "tb": 1e12,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


@dataclass(frozen=True)
class MemoryBudget:
    """Peak memory allowed: `bytes` (process RSS on CPU, allocated device memory on CUDA) and where
    the figure came from (`source`, for messages)."""

    bytes: int
    source: str = "--max-memory"


def parse_size(text: str | int | float) -> int:
    """'6GB', '512MB', '1.5GiB', '6g' or a plain byte count -> bytes (decimal units; *iB binary)."""
    if isinstance(text, (int, float)):
        value = int(text)
    else:
        m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", str(text))
        unit = m.group(2).lower() if m else None
        if m is None or unit not in _UNITS:
            raise WorkbenchError(f"memory size must be a number and a unit such as 6GB, 512MB or 1.5GiB, got {text!r}")
        value = int(float(m.group(1)) * _UNITS[unit])
    if value <= 0:
        raise WorkbenchError(f"memory size must be positive, got {text!r}: write e.g. 6GB")
    return value


def format_size(n: float) -> str:
    """Bytes as a short human figure ('5.9 GB', '640 MB')."""
    return f"{n / 1e9:.1f} GB" if abs(n) >= 1e9 else f"{n / 1e6:.0f} MB"


def _proc_bytes(path: str, field: str) -> int | None:
    """A '<field>: N kB' line of a /proc file, in bytes (None where it cannot be read)."""
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _meminfo_available() -> int | None:
    return _proc_bytes("/proc/meminfo", "MemAvailable")


def _rss() -> int:
    """Current resident set of this process in bytes (0 where /proc is missing)."""
    try:
        return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _hwm() -> int | None:
    return _proc_bytes("/proc/self/status", "VmHWM")


def _trim_heap() -> None:
    """Give glibc's retained free heap back to the OS, so that the RSS shows what is live."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _release_freed() -> None:
    """Collect Python garbage and trim the heap (before a measurement)."""
    gc.collect()
    _trim_heap()


def in_use(device: torch.device | str) -> int:
    """Memory the budget counts as already used now: allocated CUDA memory, or the process RSS."""
    device = torch.device(device)
    if device.type == "cuda":
        return int(torch.cuda.memory_allocated(device))
    if device.type == "meta":
        return 0
    return _rss()


def auto_budget(device: torch.device | str) -> MemoryBudget:
    """The budget when none is given: what is in use plus a share of the free memory."""
    device = torch.device(device)
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        cached = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
        return MemoryBudget(int(in_use(device) + AUTO_CUDA_FRACTION * (free + cached)),
                            f"automatic ({AUTO_CUDA_FRACTION:.0%} of the free CUDA memory)")
    avail = _meminfo_available()
    if avail is None:
        return MemoryBudget(2**62, "automatic (free memory unknown: unbounded)")
    return MemoryBudget(int(in_use(device) + AUTO_FRACTION * avail),
                        f"automatic ({AUTO_FRACTION:.0%} of the available RAM)")


def given_budget(text: str | None) -> MemoryBudget | None:
    """`--max-memory` text -> MemoryBudget; None for an automatic budget (None, '' or 'auto')."""
    if text is None or str(text).lower() in ("", "auto"):
        return None
    return MemoryBudget(parse_size(text), f"--max-memory {text}")


def budget_from(text: str | None, device: torch.device | str) -> MemoryBudget:
    """`--max-memory` text (None: automatic, from the free memory of `device` now) -> MemoryBudget."""
    return given_budget(text) or auto_budget(device)


def budget_of(adapter, budget: MemoryBudget | None = None) -> MemoryBudget:
    """The budget in force: the one passed, else the adapter's `memory_budget` field, else automatic."""
    return budget or getattr(adapter, "memory_budget", None) or auto_budget(adapter.device)


def measure_peak(fn: Callable[[], object], device: torch.device | str) -> int:
    """Run fn() and return its peak memory in bytes above what was in use before it."""
    device = torch.device(device)
    _release_freed()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        fn()
        torch.cuda.synchronize(device)
        return max(0, int(torch.cuda.max_memory_allocated(device)) - base)
    base, hwm0 = _rss(), _hwm()
    if not base or hwm0 is None:
        return _hook_estimate(fn)
    top = _sampled_peak(fn)
    hwm1 = _hwm() or 0
    return max(0, max(top, hwm1 if hwm1 > hwm0 else 0) - base)


def _sampled_peak(fn: Callable[[], object], every: float = 0.001) -> int:
    """Run fn() while a thread samples the RSS every `every` seconds; the largest sample. (The
    process's VmHWM is not reset: a benchmark measuring its own peak around us keeps its figure.)"""
    top, done = [_rss()], threading.Event()

    def sample() -> None:
        while not done.wait(every):
            top[0] = max(top[0], _rss())

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    try:
        fn()
    finally:
        done.set()
        th.join()
    return max(top[0], _rss())


def _hook_estimate(fn: Callable[[], object]) -> int:
    """Where the peak RSS cannot be read: 3x the bytes of every tensor created while fn() runs."""
    total = 0

    class _Count(torch.overrides.TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            nonlocal total
            out = func(*args, **(kwargs or {}))
            for t in (out if isinstance(out, (tuple, list)) else (out,)):
                if isinstance(t, torch.Tensor):
                    total += t.numel() * t.element_size()
            return out

    with _Count():
        fn()
    return 3 * total


_COSTS: "weakref.WeakKeyDictionary[object, dict]" = weakref.WeakKeyDictionary()


def sample_cost(adapter, mode: Hashable, probe: Callable[[], object]) -> int:
    """Bytes one sample of `mode` costs on this adapter, measured by `probe()` (a batch-1 run) the
    first time and cached per (model shape, dtype, device, mode)."""
    costs = _COSTS.setdefault(adapter, {})
    key = (tuple(adapter.model_shape), str(adapter.dtype), str(adapter.device), mode)
    if key not in costs:
        costs[key] = max(1, measure_peak(probe, adapter.device))
    return costs[key]


def chunk_for(adapter, mode: Hashable, probe: Callable[[], object], *, cap: int,
              budget: MemoryBudget | None = None, what: str = "sample") -> int:
    """Samples per pass (1..cap) that keep the peak under the budget; raises a one-line
    WorkbenchError when not even one fits."""
    budget = budget_of(adapter, budget)
    cost = sample_cost(adapter, mode, probe)
    _trim_heap()
    used = in_use(adapter.device)
    room = SAFETY * (budget.bytes - used)
    n = int(room // cost) if room > 0 else 0
    if n < 1:
        need = used + math.ceil(cost / SAFETY)
        raise WorkbenchError(f"the memory budget ({format_size(budget.bytes)}, {budget.source}) is below what one "
                             f"{what} needs ({format_size(used)} in use + {format_size(cost)} per {what}): pass "
                             f"--max-memory {math.ceil(need / 1e8) / 10:g}GB or more, or a smaller --dtype")
    return max(1, min(int(cap), n))


# --- probes of one autodiff sample ----------------------------------------------------------------
KINDS = ("jvp", "vjp", "chain")


def _probe(adapter, f: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, kind: str) -> None:
    """One sample of `kind` through f at x (1, *in): a JVP, a VJP (forward kept for the reverse pass),
    or `chain`: a forward with gradients and its backward (one step of a differentiable DDIM chain)."""
    with adapter.autodiff():
        if kind == "jvp":
            torch.func.jvp(f, (x,), (torch.ones_like(x),))
        elif kind == "vjp":
            out, pull = torch.func.vjp(f, x)
            pull(torch.ones_like(out))
        elif kind == "chain":
            with torch.enable_grad():
                xx = x.detach().clone().requires_grad_(True)
                f(xx).float().square().sum().backward()
        else:
            raise ValueError(f"unknown probe kind {kind!r}: choose one of {', '.join(KINDS)}")


def autodiff_chunk(adapter, f: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, *, kinds: tuple[str, ...],
                   key: Hashable, cap: int, budget: MemoryBudget | None = None, what: str = "sample") -> int:
    """Samples per pass (1..cap) for the autodiff passes `kinds` of f (rows independent: (B, *in) ->
    (B, ...)) at one row x (1, *in), under the budget. `key` names f's kind for the cost cache
    (e.g. the rate definition). Each sample is charged a whole batch-1 probe: its forward included."""
    x = x.to(adapter.device, adapter.dtype)
    n = max(1, int(cap))
    for kind in kinds:
        n = min(n, chunk_for(adapter, (kind, key), lambda kind=kind: _probe(adapter, f, x, kind), cap=cap,
                             budget=budget, what=what))
    return n


def default_cap(adapter, work: int) -> int:
    """Largest chunk worth taking: all the work on CUDA (memory, not speed, is the limit there), 64 on
    the CPU (larger vmap batches measured no faster there)."""
    return max(1, int(work)) if torch.device(adapter.device).type == "cuda" else max(1, min(64, int(work)))
