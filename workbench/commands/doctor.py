"""`workbench doctor [--model DIR] [--device D]`: what this machine is, and what a cube costs on it.

Prints the device, the CPU's name and the flags that decide bfloat16's speed, the threads, the
measured seconds per probe-step (one Hutchinson VJP of the rate at one timestep) and per network
evaluation of the model in each dtype, the dtype `--dtype auto` picks (the measurement is stored in
the cache `auto` reads, workbench.precision), and the estimated seconds per cube at K = 8/16/64
probes and 25/50 DDIM steps: steps x (one evaluation for the inversion + K probe-steps)."""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import torch

from .. import precision, validate
from ..adapters import load_model
from ..errors import WorkbenchError

#: the cube sizes the report prices (probes K, DDIM steps)
PLAN_K = (8, 16, 64)
PLAN_STEPS = (25, 50)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("doctor", help="machine report: CPU flags, threads, seconds per probe-step per dtype, the "
                                      "dtype auto picks, what a cube costs here",
                       description=__doc__.split("\n\n")[1].replace("\n", " "))
    p.add_argument("--model", default=None, help="model folder or HF-cache repo id (default: the shipped model)")
    p.add_argument("--device", default=None, help="cpu, cuda, ... (default: cuda if available)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's, all cores)")
    p.add_argument("--repeats", type=int, default=2, help="timed rounds per dtype, interleaved (default 2)")
    p.add_argument("--json", default=None, metavar="FILE", help="also write the report as JSON")
    p.set_defaults(func=run)


def estimate_cube_seconds(probe_step_s: float, model_step_s: float, K: int, steps: int) -> float:
    """Seconds per Hutchinson cube of `steps` DDIM steps and K probes: steps x (one network
    evaluation for the inversion + K probe-steps)."""
    return steps * (model_step_s + K * probe_step_s)


def run(args) -> int:
    if args.threads is not None:
        if args.threads < 1:
            raise WorkbenchError(f"--threads must be at least 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    if args.repeats < 1:
        raise WorkbenchError(f"--repeats must be at least 1, got {args.repeats}")
    device = validate.check_device(args.device)
    info = precision.machine_info(device)
    names = ["float32", "bfloat16"] + (["float16"] if info["device"] == "cuda" else [])
    flags = set(info["flags"])
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    print(f"device      {device}{' (' + info['accelerator'] + ')' if 'accelerator' in info else ''}")
    print(f"cpu         {info['cpu']} ({os.cpu_count()} logical cores)")
    print(f"cpu flags   " + " ".join(f"{f}{'+' if f in flags else '-'}" for f in precision.REPORT_FLAGS)
          + f"  -> native bfloat16: {'yes' if precision.native_bf16(info) else 'no (emulated)'}")
    print(f"torch       {info['torch']}, CPU capability {info['cpu_capability']}"
          + (f", ONEDNN_MAX_CPU_ISA={info['onednn_max_cpu_isa']}" if info['onednn_max_cpu_isa'] else ""))
    print(f"threads     {torch.get_num_threads()} (load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f})")
    adapters = {n: load_model(args.model, device=device, dtype=getattr(torch, n)) for n in names}
    first = adapters["float32"]
    print(f"model       {first.name} ({first.fingerprint()}), model shape {tuple(first.model_shape)}", flush=True)
    print("measuring   ...", file=sys.stderr, flush=True)
    # batched as a cube runs them (16 probes at 4 timesteps in flight); auto's own check uses 4 x 1
    timers = {**{f"probe {n}": precision.time_probe_step(a, probes=16, rows=4) for n, a in adapters.items()},
              **{f"eval {n}": precision.time_model_step(a) for n, a in adapters.items()}}
    sec = precision.measure_dtypes(timers, repeats=args.repeats)
    probe = {n: sec[f"probe {n}"] for n in names}
    evals = {n: sec[f"eval {n}"] for n in names}
    m = precision.Measurement(seconds={n: probe[n] for n in ("float32", "bfloat16")}, machine=precision.machine_key(info),
                              model=str(first.fingerprint()), cpu=info["cpu"], when=precision._now())
    precision.save_measurement(m)
    chosen = precision.choose_dtype(m)
    print(f"\n{'dtype':<10} {'s/probe-step':>13} {'s/evaluation':>13} {'vs float32':>11}")
    for n in names:
        print(f"{n:<10} {probe[n]:>13.4f} {evals[n]:>13.4f} {probe[n] / probe['float32']:>10.2f}x")
    print(f"\n--dtype auto picks {chosen}" + (f" (${precision.AUTO_ENV} is set)" if os.environ.get(precision.AUTO_ENV)
                                            else f" (bfloat16 needs <= {precision.MARGIN:g}x float32's time)")
          + f"; stored in {precision.cache_file()}")
    rows = []
    print(f"\nestimated seconds per Hutchinson cube here ({chosen}; steps x (1 evaluation + K probe-steps)):")
    print(f"{'K':>5} " + " ".join(f"{f'{s} steps':>10}" for s in PLAN_STEPS) + f" {'cubes/hour at 50':>17}")
    for K in PLAN_K:
        est = {s: estimate_cube_seconds(probe[chosen], evals[chosen], K, s) for s in PLAN_STEPS}
        rows.append({"K": K, **{f"steps_{s}_s": round(v, 2) for s, v in est.items()}})
        print(f"{K:>5} " + " ".join(f"{est[s]:>10.1f}" for s in PLAN_STEPS) + f" {3600 / est[50]:>17.1f}")
    print("(one process; the load above slows it; `workbench cubes --verbose` shows the dtype of a run)")
    if args.json:
        report = {"machine": {k: v for k, v in info.items() if k != "flags"},
                  "flags": [f for f in precision.REPORT_FLAGS if f in flags], "native_bf16": precision.native_bf16(info),
                  "load_average": list(load), "probe_step_s": probe, "evaluation_s": evals, "auto": chosen,
                  "cube_seconds": rows, "model": first.fingerprint()}
        out = Path(args.json)
        tmp = out.with_name(f"{out.name}.partial-{os.getpid()}")
        tmp.write_text(json.dumps(report, indent=1))
        os.replace(tmp, out)
    return 0
