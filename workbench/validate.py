"""One validation of the numbers and names that every entry point takes.

The command line, the Python API (`CubeParams`, `EditConfig`, `RateSpec`, `make_schedule`,
`load_model`) and the dashboards call these functions, so one mistake reads the same wherever it
is made. Each `check_*` returns the value it was given, normalised (an `int`, a `float`, a device
string, a `torch.dtype`), or raises `WorkbenchError` with one line of the form

    "<name> must be <what is allowed>, got <value>[: <how to fix it>]"

where <name> is the quantity's plain name (steps, K, k, window, t_b, iterations, batch size,
resolution, device, dtype, channel, seed), never a command-line flag, so the message fits the
API and the command line alike.

Public API (all keyword options are optional bounds known only once a model is loaded):

    check_int(name, value, *, minimum=None, maximum=None, why="")   any whole number
    check_real(name, value, *, minimum=None, maximum=None, open_min=False)   a finite float
    check_steps(steps, *, num_train_timesteps=None, minimum=1)      DDIM steps, 1..T
    check_K(K)                                                      probes / rSVD rank, 1..MAX_K
    check_k(k, *, n=None)                                           tangent dimension, 1..n
    check_window(window, *, n_kept=None)                            fluctuation window L >= 2
    check_t_b(t_b, *, num_train_timesteps=None)                     fluctuation cut, 0 <= t_b < T
    check_iterations(n, *, minimum=0)                               optimisation iterations
    check_batch_size(n)                                             1..MAX_BATCH
    check_resolution(n, *, multiple=1)                              pixels, 8..MAX_RESOLUTION
    check_channel(channel, *, channels=None)                        None (mean) or 0..C-1
    check_seed(seed)                                                0..2**32-1
    check_device(device) -> str                                     cpu, cuda[:N], mps; must exist
    check_dtype(dtype) -> torch.dtype                               float32, float16, bfloat16
    check_scheduler_config(config, where) -> dict                   a model's scheduler config
    check_stability(R)                                              split-half stability target, 0 < R < 1
    check_probe_cap(cap, *, K)                                      --until-stable's probe cap, 2 blocks..MAX_K
    check_refine_to(K2, *, estimator, definition)                   refinement target of Hutchinson cubes
    check_scheduler_address(address)                                a dask scheduler, tcp://HOST:PORT
    check_memory_size(text) -> int | None                           a memory budget in bytes, MIN..MAX_MEMORY
    check_timestep(t)                                               a diffusion timestep, 0..MAX_TIMESTEP

Everything here runs before a model is loaded or anything is written: a command validates every
number it was given first, so a mistake costs no model load and leaves nothing on disk.
"""
from __future__ import annotations

import math
import numbers
import re
from typing import Any

import torch

from .errors import WorkbenchError
from .memory import parse_size

__all__ = ["MAX_K", "MAX_BATCH", "MAX_RESOLUTION", "MAX_FIXED_POINT", "DTYPES", "check_int", "check_real", "check_steps", "check_fixed_point", "check_K",
           "check_k", "check_window", "check_t_b", "check_iterations", "check_batch_size", "check_resolution",
           "check_channel", "check_seed", "check_device", "check_dtype", "check_scheduler_config", "check_stability",
           "check_probe_cap", "check_refine_to", "check_scheduler_address", "check_memory_size", "check_timestep",
           "MIN_MEMORY", "MAX_MEMORY", "MAX_TIMESTEP"]

#: Largest K (Hutchinson probes, rSVD rank): beyond it the probes alone outgrow memory on any model
#: this workbench runs, and the estimate is already exact to far better than 1 % (error ~ sqrt(2/K)).
MAX_K = 4096
MAX_BATCH = 65536
MAX_RESOLUTION = 8192
#: compute dtypes; float64 is for precise library work (the command line offers the first three)
DTYPES = ("float32", "float16", "bfloat16", "float64")
#: memory budgets: below 16 MiB no model runs (the process alone is larger); above 1 PiB is a typo
MIN_MEMORY = 16 * 2**20
MAX_MEMORY = 2**50
#: the largest diffusion timestep of any model (the scheduler configs' num_train_timesteps <= 1000000)
MAX_TIMESTEP = 1_000_000


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _range_text(minimum, maximum) -> str:
    if minimum is not None and maximum is not None:
        return f"from {minimum} to {maximum}"
    if minimum is not None:
        return f">= {minimum}"
    return f"<= {maximum}" if maximum is not None else "any value"


def check_int(name: str, value: Any, *, minimum: int | None = None, maximum: int | None = None,
              why: str = "") -> int:
    """A whole number within [minimum, maximum] -> int; `why` explains the bounds (after the range)."""
    ok = _is_int(value) and (minimum is None or value >= minimum) and (maximum is None or value <= maximum)
    if not ok:
        reason = f" ({why})" if why else ""
        raise WorkbenchError(f"{name} must be a whole number {_range_text(minimum, maximum)}{reason}, got {value!r}")
    return int(value)


def check_real(name: str, value: Any, *, minimum: float | None = None, maximum: float | None = None,
               open_min: bool = False, why: str = "") -> float:
    """A finite real number within the bounds (`open_min`: strictly above minimum) -> float."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(float(value))
    if ok and minimum is not None:
        ok = value > minimum if open_min else value >= minimum
    if ok and maximum is not None:
        ok = value <= maximum
    if not ok:
        lo = None if minimum is None else (f"> {minimum}" if open_min else f">= {minimum}")
        rng = " and ".join(x for x in (lo, None if maximum is None else f"<= {maximum}") if x) or "finite"
        reason = f" ({why})" if why else ""
        raise WorkbenchError(f"{name} must be a finite number {rng}{reason}, got {value!r}")
    return float(value)


def check_steps(steps: Any, *, num_train_timesteps: int | None = None, minimum: int = 1) -> int:
    """DDIM steps: minimum..T (T = the model's training timesteps, when known)."""
    why = "the model's training timesteps" if num_train_timesteps is not None else ""
    return check_int("steps", steps, minimum=minimum, maximum=num_train_timesteps, why=why)


#: more fixed-point refinements than this per inversion step gain nothing measurable (docs/model.md)
MAX_FIXED_POINT = 8


def check_fixed_point(fixed_point: Any) -> int:
    """Fixed-point refinements per DDIM inversion step: 0 (plain inversion)..MAX_FIXED_POINT."""
    return check_int("fixed-point iterations", fixed_point, minimum=0, maximum=MAX_FIXED_POINT,
                     why="each costs one network evaluation per inversion step")


def check_K(K: Any) -> int:
    """Hutchinson probes or rSVD rank: 1..MAX_K."""
    return check_int("K", K, minimum=1, maximum=MAX_K)


def check_k(k: Any, *, n: int | None = None) -> int:
    """Tangent-space dimension of the projected rate: 1..n (n = input elements of the model, when known)."""
    maximum = MAX_K if n is None else min(n, MAX_K)
    return check_int("k", k, minimum=1, maximum=maximum, why="the projected rate's tangent dimension; "
                     "0 would project every variation to zero")


def check_window(window: Any, *, n_kept: int | None = None) -> int:
    """Fluctuation window L: >= 2 (a variance needs two samples) and <= the timesteps above t_b."""
    if n_kept is not None and n_kept < 2:
        check_int("window", window, minimum=2)
        raise WorkbenchError(f"only {n_kept} timesteps lie above t_b, fewer than the window L={window}: lower t_b or "
                             "use more DDIM steps")
    why = "a variance needs 2 samples" + (f"; only {n_kept} timesteps lie above t_b" if n_kept is not None else "")
    return check_int("window", window, minimum=2, maximum=n_kept, why=why)


def check_t_b(t_b: Any, *, num_train_timesteps: int | None = None) -> float:
    """Fluctuation cut t_b (timesteps t <= t_b are left out): 0 <= t_b < T."""
    maximum = None if num_train_timesteps is None else num_train_timesteps - 1
    return check_real("t_b", t_b, minimum=0, maximum=maximum, why="a timestep; only t > t_b is used")


def check_iterations(n: Any, *, minimum: int = 0) -> int:
    """Optimisation iterations: >= minimum (0 allowed by default: no optimisation)."""
    return check_int("iterations", n, minimum=minimum, maximum=10_000_000)


def check_batch_size(n: Any) -> int:
    """Batch size: 1..MAX_BATCH."""
    return check_int("batch size", n, minimum=1, maximum=MAX_BATCH)


def check_resolution(n: Any, *, multiple: int = 1) -> int:
    """Image resolution in pixels: 8..MAX_RESOLUTION and a multiple of `multiple` (the U-Net's
    total downsampling factor)."""
    n = check_int("resolution", n, minimum=8, maximum=MAX_RESOLUTION)
    if n % multiple:
        raise WorkbenchError(f"resolution must be a multiple of {multiple} (the U-Net halves it "
                             f"{int(math.log2(multiple))} times), got {n}")
    return n


def check_channel(channel: Any, *, channels: int | None = None) -> int | None:
    """A model channel index (None = the mean over channels): 0..C-1."""
    if channel is None:
        return None
    return check_int("channel", channel, minimum=0, maximum=None if channels is None else channels - 1,
                     why=f"the model has {channels} channels" if channels is not None else "")


def check_seed(seed: Any) -> int:
    """A random seed: 0..2**32-1."""
    return check_int("seed", seed, minimum=0, maximum=2**32 - 1)


def check_dtype(dtype: Any):
    """'float32' | 'float16' | 'bfloat16' | 'float64' or the torch dtype -> torch.dtype."""
    name = str(dtype).removeprefix("torch.")
    if name not in DTYPES:
        raise WorkbenchError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    return getattr(torch, name)


def check_device(device: Any) -> str:
    """A device that exists here: None (cuda if available, else cpu), 'cpu', 'cuda', 'cuda:N', 'mps'."""
    if device is None or device == "":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(str(device))
    except (RuntimeError, ValueError, TypeError):
        raise WorkbenchError(f"device must be cpu, cuda, cuda:N or mps, got {device!r}") from None
    if dev.type == "cpu":
        return "cpu"
    if dev.type == "cuda":
        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if n == 0:
            raise WorkbenchError(f"device {device!r} asked for, but no CUDA device is available: use device cpu")
        if dev.index is not None and dev.index >= n:
            raise WorkbenchError(f"device {device!r} does not exist: this machine has {n} CUDA device(s), "
                                 f"cuda:0..cuda:{n - 1}")
        return str(dev)
    if dev.type == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise WorkbenchError(f"device {device!r} asked for, but MPS is not available here: use device cpu")
        return "mps"
    raise WorkbenchError(f"device must be cpu, cuda, cuda:N or mps, got {device!r}")


def check_scheduler_config(config: Any, where: str) -> dict:
    """A model's scheduler config (the parsed scheduler_config.json; `where` names the file):
    num_train_timesteps a whole number >= 2, betas (when given) 0 < beta_start <= beta_end < 1."""
    if not isinstance(config, dict):
        raise WorkbenchError(f"{where} must hold a JSON object (the scheduler's config), got "
                             f"{type(config).__name__}: copy the model's scheduler folder again")
    T = config.get("num_train_timesteps", 1000)
    if not _is_int(T) or not 2 <= T <= 1_000_000:
        raise WorkbenchError(f"{where}: num_train_timesteps must be a whole number from 2 to 1000000, got {T!r}: "
                             "fix the file or copy the model's scheduler folder again")
    if config.get("trained_betas") is None:
        b0, b1 = config.get("beta_start", 1e-4), config.get("beta_end", 0.02)
        ok = all(isinstance(b, numbers.Real) and not isinstance(b, bool) and math.isfinite(b) for b in (b0, b1))
        if not ok or not 0 < b0 <= b1 < 1:
            raise WorkbenchError(f"{where}: beta_start and beta_end must satisfy 0 < beta_start <= beta_end < 1, "
                                 f"got {b0!r} and {b1!r}: fix the file or copy the model's scheduler folder again")
    return config


def check_stability(R: Any) -> float:
    """Split-half stability target R of --until-stable (Spearman-Brown): a finite number, 0 < R < 1."""
    ok = isinstance(R, numbers.Real) and not isinstance(R, bool) and math.isfinite(float(R)) and 0 < R < 1
    if not ok:
        raise WorkbenchError(f"stability target R must be a finite number > 0 and < 1 (a split-half correlation; 1 is "
                             f"never reached), got {R!r}: e.g. 0.98")
    return float(R)


def check_probe_cap(cap: Any, *, K: int) -> int | None:
    """Probe cap of --until-stable (None: 8 K): at least one pair of probe blocks of K/2 (>= 2 each), at most MAX_K."""
    if cap is None:
        return None
    block = max(2, int(K) // 2)
    return check_int("probe cap (max K)", cap, minimum=2 * block, maximum=MAX_K,
                     why=f"one pair of probe blocks of {block} is the least --until-stable runs")


def check_refine_to(K2: Any, *, estimator: str, definition: str) -> int:
    """Refinement target K2: 1..MAX_K probes, of Hutchinson cubes (the only ones with probe statistics)."""
    K2 = check_int("refinement target K2", K2, minimum=1, maximum=MAX_K)
    if estimator != "hutchinson" or definition == "projected":
        raise WorkbenchError(f"refinement needs Hutchinson cubes with probe statistics, not estimator {estimator} with "
                             f"rate {definition}: use --estimator hutchinson (rate h, eps or step), or compute the "
                             f"cubes anew with --K {K2}")
    return K2


def check_scheduler_address(address: Any) -> str | None:
    """A dask.distributed scheduler address: tcp://HOST:PORT or tls://HOST:PORT, port 1..65535 (None: none)."""
    if address is None:
        return None
    m = re.fullmatch(r"(tcp|tls)://([A-Za-z0-9.\-]+|\[[0-9A-Fa-f:.]+\]):([0-9]{1,5})", str(address))
    if m is None or not 1 <= int(m.group(3)) <= 65535:
        raise WorkbenchError(f"scheduler must be a dask scheduler address tcp://HOST:PORT (port 1..65535), got "
                             f"{address!r}: e.g. tcp://10.0.0.5:8786")
    return str(address)


def check_memory_size(text: Any) -> int | None:
    """A memory budget ('6GB', '512MiB', a byte count) -> bytes, MIN_MEMORY..MAX_MEMORY; None for
    automatic (None, '' or 'auto')."""
    if text is None or str(text).strip().lower() in ("", "auto"):
        return None
    try:
        n = parse_size(text)
    except (OverflowError, ValueError):  # a number too large for a float or an int
        n = None
    if n is None or not MIN_MEMORY <= n <= MAX_MEMORY:
        shown = str(text) if len(str(text)) <= 40 else str(text)[:20] + "..." + str(text)[-8:]
        raise WorkbenchError(f"memory size must be from 16MiB to 1PiB, got {shown!r}: write e.g. 6GB")
    return n


def check_timestep(t: Any) -> int:
    """A diffusion timestep: a whole number 0..MAX_TIMESTEP (the nearest stored one is used)."""
    if isinstance(t, float) and t.is_integer():
        t = int(t)
    return check_int("timestep", t, minimum=0, maximum=MAX_TIMESTEP)
