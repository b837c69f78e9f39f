"""The compute dtype by measurement: bfloat16 only where it is faster for this model on this machine.

bfloat16 halves memory traffic, but a CPU without bf16 instructions (AVX-512 BF16 or AMX) runs it
through emulated kernels: on an AMD EPYC with AVX2 only, the shipped model's rate function takes
2-5x longer in bfloat16 than in float32 (docs/install.md, "Throughput"). So `--dtype auto` (the
default) times a one-off micro-benchmark of the rate function -- one Hutchinson VJP per probe, the
inner loop of every cube -- in float32 and bfloat16, interleaved, and picks bfloat16 only when it
takes at most `MARGIN` of float32's time. The measurement is cached per machine (CPU model and
flags, torch version and CPU capability, oneDNN's ISA limit, the accelerator's name) and model
(weight fingerprint) in the user cache folder ($XDG_CACHE_HOME or ~/.cache, then
genrate-workbench/dtype.json, written atomically), so later runs pay nothing.

The decision is a pure function of a `Measurement` (`Measurement.choice`), so it is tested with
injected measurements and never with timings; `measure_dtypes` is the only code that times.
The same rule decides bfloat16 autocast in training (`train_autocast`).
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Mapping

import torch

from .ddim import make_schedule
from .errors import WorkbenchError
from .estimators import hutchinson_probes, hutchinson_stats_batched
from .rates import batched_rate_function

__all__ = ["DTYPE_CHOICES", "MARGIN", "Measurement", "machine_info", "machine_key", "native_bf16", "cache_file",
           "load_measurement", "save_measurement", "measure_dtypes", "time_probe_step", "time_model_step",
           "choose_dtype", "resolve_model", "train_autocast", "AUTO_ENV", "REPORT_FLAGS"]

#: what --dtype accepts
DTYPE_CHOICES = ("auto", "float32", "float16", "bfloat16")
#: bfloat16 is chosen only when it takes at most this fraction of float32's time (measurement noise on a
#: loaded machine is ~5 %; a tie keeps float32, the exact reference dtype)
MARGIN = 0.9
#: set to a dtype name to make `auto` that dtype without measuring (e.g. a test suite that pins float32)
AUTO_ENV = "WORKBENCH_AUTO_DTYPE"
#: CPU flags that give native bfloat16 arithmetic
_BF16_FLAGS = ("avx512_bf16", "amx_bf16")
#: CPU flags shown in the machine report
REPORT_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16")
#: at most this many measurements stay in the cache file (oldest dropped)
_CACHE_ENTRIES = 64


@dataclass(frozen=True)
class Measurement:
    """Seconds per unit of work (`what`: 'probe-step', one Hutchinson VJP of the rate function at one
    timestep; or 'train-step', one forward+backward of a training batch) per dtype name, measured on
    `machine` (machine_key) for `model` at `when` (UTC, ISO 8601), with the CPU's name `cpu`."""

    seconds: Mapping[str, float]
    machine: str
    model: str
    what: str = "probe-step"
    cpu: str = ""
    when: str = ""

    def ratio(self, dtype: str = "bfloat16") -> float:
        """`dtype`'s seconds over float32's (NaN when either is missing)."""
        a, b = self.seconds.get(dtype), self.seconds.get("float32")
        return float(a) / float(b) if a and b else float("nan")

    def choice(self, margin: float = MARGIN) -> str:
        """'bfloat16' when it takes at most `margin` of float32's time, else 'float32'."""
        return "bfloat16" if self.ratio("bfloat16") <= margin else "float32"

    def describe(self) -> str:
        """One line: the seconds per unit in each dtype, the ratio, the choice, the CPU."""
        s = ", ".join(f"{k} {v:.3g} s" for k, v in sorted(self.seconds.items()))
        return (f"{s} per {self.what} (bfloat16/float32 {self.ratio():.2f}x) on {self.cpu or 'this machine'}: "
                f"auto picks {self.choice()}")


def _cpu_fields() -> dict[str, str]:
    """'model name' and 'flags' of the first processor in /proc/cpuinfo ({} where there is none)."""
    out: dict[str, str] = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            k, _, v = line.partition(":")
            k = k.strip()
            if k in ("model name", "flags") and k not in out:
                out[k] = v.strip()
            if len(out) == 2:
                break
    return out


def machine_info(device: str | torch.device = "cpu") -> dict:
    """What the speed of a dtype depends on here: CPU name and flags, torch version and CPU capability
    (ATEN_CPU_CAPABILITY limits it), oneDNN's ISA limit (ONEDNN_MAX_CPU_ISA), the device and, for CUDA,
    its name; plus the thread count (shown, not part of the key)."""
    f = _cpu_fields()
    dev = torch.device(device)
    info = {"cpu": f.get("model name") or platform.processor() or platform.machine(),
            "flags": sorted(f.get("flags", "").split()),
            "torch": torch.__version__, "cpu_capability": str(torch.backends.cpu.get_cpu_capability()),
            "onednn_max_cpu_isa": os.environ.get("ONEDNN_MAX_CPU_ISA", ""), "device": dev.type,
            "threads": torch.get_num_threads()}
    if dev.type == "cuda":
        info["accelerator"] = torch.cuda.get_device_name(dev)
    return info


def machine_key(info: Mapping) -> str:
    """A short hash of `machine_info` without the thread count."""
    keep = {k: v for k, v in info.items() if k != "threads"}
    return hashlib.sha256(json.dumps(keep, sort_keys=True).encode()).hexdigest()[:16]


def native_bf16(info: Mapping) -> bool:
    """True where bfloat16 runs on native instructions: a CUDA device, or a CPU with AVX-512 BF16 or
    AMX whose kernels are not limited below AVX-512 (ATEN_CPU_CAPABILITY / ONEDNN_MAX_CPU_ISA)."""
    if info.get("device") == "cuda":
        return True
    if info.get("device") != "cpu":
        return False
    limited = str(info.get("cpu_capability", "")).upper() in ("DEFAULT", "AVX2") or \
        str(info.get("onednn_max_cpu_isa", "")).upper().startswith(("AVX2", "SSE"))
    return not limited and any(f in info.get("flags", ()) for f in _BF16_FLAGS)


def cache_file() -> Path:
    """The measurement cache: $XDG_CACHE_HOME (else ~/.cache) / genrate-workbench / dtype.json."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "genrate-workbench" / "dtype.json"


def _entry_key(machine: str, model: str, what: str) -> str:
    return f"{machine}:{what}:{model}"


def _read_cache(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}  # absent or damaged: measure again (the cache is only a shortcut)
    return data if isinstance(data, dict) else {}


def load_measurement(machine: str, model: str, what: str = "probe-step", *, path: Path | None = None
                     ) -> Measurement | None:
    """The cached measurement of `model` on `machine`, or None."""
    e = _read_cache(path or cache_file()).get(_entry_key(machine, model, what))
    try:
        return Measurement(**e) if isinstance(e, dict) else None
    except TypeError:
        return None


def save_measurement(m: Measurement, *, path: Path | None = None) -> None:
    """Add `m` to the cache file, atomically (a temporary file renamed over it); an unwritable cache
    folder only costs a measurement next time."""
    path = path or cache_file()
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        data = _read_cache(path)
        data[_entry_key(m.machine, m.model, m.what)] = asdict(m) | {"seconds": dict(m.seconds)}
        data = dict(list(data.items())[-_CACHE_ENTRIES:])
        tmp = path.with_name(f"{path.name}.partial-{os.getpid()}")
        tmp.write_text(json.dumps(data, indent=1))
        os.replace(tmp, path)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_probe_step(adapter, *, probes: int = 4, rows: int = 1, definition: str = "h") -> Callable[[], float]:
    """A timer of the rate function's inner loop on `adapter`: each call runs `probes` Hutchinson VJPs
    of the `definition` rate at `rows` mid-trajectory timesteps of random states (model_shape), all in
    one batch as a cube computes them (a cube keeps about 64 = probes x rows in flight), and returns
    the seconds per probe-step."""
    schedule = make_schedule(adapter, 10)
    idx = torch.arange(rows) % len(schedule)
    x = torch.randn((rows, *adapter.model_shape), generator=torch.Generator().manual_seed(0))
    x = x.to(adapter.device, adapter.dtype)
    fb = batched_rate_function(adapter, schedule, idx, definition)
    with torch.no_grad():
        out_shape = tuple(fb(x).shape[1:])
    u = hutchinson_probes(out_shape, probes, 0, device=adapter.device, dtype=adapter.dtype)

    def once() -> float:
        t0 = time.perf_counter()
        with adapter.autodiff():
            hutchinson_stats_batched(fb, x, u, first=0, chunk=probes)
        _sync(adapter.device)
        return (time.perf_counter() - t0) / (probes * rows)

    return once


def time_model_step(adapter) -> Callable[[], float]:
    """A timer of one network evaluation without gradients (a DDIM inversion step) on `adapter`:
    each call returns its seconds."""
    schedule = make_schedule(adapter, 10)
    t = schedule.timesteps[len(schedule) // 2: len(schedule) // 2 + 1].to(adapter.device)
    x = torch.randn((1, *adapter.model_shape), generator=torch.Generator().manual_seed(0))
    x = x.to(adapter.device, adapter.dtype)

    def once() -> float:
        t0 = time.perf_counter()
        with torch.no_grad():
            adapter.eps(x, t)
        _sync(adapter.device)
        return time.perf_counter() - t0

    return once


def measure_dtypes(timers: Mapping[str, Callable[[], float]], *, repeats: int = 3) -> dict[str, float]:
    """Seconds per unit of each dtype's timer: one warm-up call each, then `repeats` rounds that call
    every timer in turn (a change in the machine's load hits all dtypes alike); the fastest round
    (the least disturbed by other processes) of each."""
    for once in timers.values():
        once()
    runs: dict[str, list[float]] = {k: [] for k in timers}
    for _ in range(max(1, repeats)):
        for k, once in timers.items():
            runs[k].append(once())
    return {k: float(min(v)) for k, v in runs.items()}


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def choose_dtype(m: Measurement | None, *, env: Mapping[str, str] | None = None) -> str:
    """The dtype `auto` stands for: $WORKBENCH_AUTO_DTYPE when set, else `m.choice()`, else float32."""
    forced = (os.environ if env is None else env).get(AUTO_ENV, "")
    if forced:
        if forced not in DTYPE_CHOICES[1:]:
            raise WorkbenchError(f"${AUTO_ENV}={forced!r} is not a dtype: use float32, float16 or bfloat16, or unset it")
        return forced
    return m.choice() if m is not None else "float32"


def resolve_model(load: Callable[[torch.dtype], object], requested: str, *, measure: Callable | None = None,
                  cache: Path | None = None, warn: Callable[[str], None] | None = None, remeasure: bool = False):
    """Load the model for `--dtype requested` and say why that dtype: returns (adapter, Measurement or
    None, note). `load(torch dtype)` loads the model; `auto` loads float32, looks up (or measures and
    caches) the model's probe-step seconds in float32 and bfloat16, and keeps float32 or loads
    bfloat16 by `Measurement.choice`. An explicit bfloat16 on a device without native bf16 calls
    `warn` with one line giving the measured ratio. `measure(adapters: dict[name, adapter]) ->
    {name: seconds}` replaces the timing (tests inject one); `note` is the adapter's `dtype_choice`
    attribute ('explicit' or 'auto: ...'), which the cube builders record."""
    measure = measure or (lambda ads: measure_dtypes({k: time_probe_step(a) for k, a in ads.items()}))
    forced = choose_dtype(None) if requested == "auto" and os.environ.get(AUTO_ENV) else None
    if requested != "auto" or forced:
        dtype = forced or requested
        adapter = load(getattr(torch, dtype))
        m = None
        if dtype == "bfloat16" and warn is not None:
            info = machine_info(adapter.device)
            if not native_bf16(info):
                m = _measured(adapter, load, info, measure, cache, remeasure, have="bfloat16")
                if m.ratio() > MARGIN:
                    warn(f"bfloat16 has no native instructions on this {info['cpu']} (no AVX-512 BF16 / AMX): it "
                         f"took {m.ratio():.1f}x float32's time per probe-step here; --dtype auto (the default) "
                         "picks the faster one")
        adapter.dtype_choice = f"{AUTO_ENV}={forced}" if forced else "explicit"
        return adapter, m, adapter.dtype_choice
    adapter = load(torch.float32)
    info = machine_info(adapter.device)
    m = _measured(adapter, load, info, measure, cache, remeasure, have="float32")
    if m.choice() == "bfloat16":
        adapter = load(torch.bfloat16)
    adapter.dtype_choice = f"auto: {m.choice()} ({m.ratio():.2f}x bfloat16/float32 seconds per probe-step on " \
                           f"{m.cpu}, {m.when})"
    return adapter, m, adapter.dtype_choice


def _measured(adapter, load, info: dict, measure, cache: Path | None, remeasure: bool, *, have: str) -> Measurement:
    """The cached measurement of `adapter`'s model on this machine, or a new one (then cached)."""
    key, model = machine_key(info), str(adapter.fingerprint())
    m = None if remeasure else load_measurement(key, model, path=cache)
    if m is None:
        other = "bfloat16" if have == "float32" else "float32"
        ads = {have: adapter, other: load(getattr(torch, other))}
        seconds = measure({k: ads[k] for k in ("float32", "bfloat16")})
        m = Measurement(seconds=seconds, machine=key, model=model, cpu=info["cpu"], when=_now())
        save_measurement(m, path=cache)
    return m


def train_autocast(model: torch.nn.Module, batch_shape: tuple[int, ...], device: str, *,
                   measure: Callable | None = None, cache: Path | None = None) -> tuple[bool, Measurement]:
    """Whether bfloat16 autocast makes a training step of `model` (a diffusers UNet2DModel) faster on
    this machine: times forward + backward of a random batch of `batch_shape` (B, C, H, W) with and
    without autocast (cached like the rate's measurement, per model config and batch shape).
    `measure(timers) -> {name: seconds}` replaces `measure_dtypes` (tests inject one)."""
    info = machine_info(device)
    cfg = getattr(model, "config", {})
    ident = hashlib.sha256(json.dumps({"config": dict(cfg), "batch": list(batch_shape)}, sort_keys=True,
                                      default=str).encode()).hexdigest()[:16]
    forced = os.environ.get(AUTO_ENV)
    if forced:
        choose_dtype(None)  # validates it
        return forced == "bfloat16", Measurement(seconds={}, machine=machine_key(info), model=ident, what="train-step")
    m = load_measurement(machine_key(info), ident, "train-step", path=cache)
    if m is None:
        x = torch.randn(batch_shape, device=device)
        t = torch.randint(0, 1000, (batch_shape[0],), device=device)

        def timer(enabled: bool) -> Callable[[], float]:
            def once() -> float:
                t0 = time.perf_counter()
                with torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16, enabled=enabled):
                    out = model(x, t).sample
                out.float().square().mean().backward()
                model.zero_grad(set_to_none=True)
                _sync(torch.device(device))
                return time.perf_counter() - t0
            return once

        seconds = (measure or measure_dtypes)({"float32": timer(False), "bfloat16": timer(True)})
        m = Measurement(seconds=seconds, machine=machine_key(info), model=ident, what="train-step", cpu=info["cpu"],
                        when=_now())
        save_measurement(m, path=cache)
    return m.choice() == "bfloat16", m
