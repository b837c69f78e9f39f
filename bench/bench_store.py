"""Cube store benchmarks: chunk shapes (time per curve/map read, write time, size), and the store at
data-set scale.

    python -m bench.bench_store [--quick] [--json bench-store.json] [--model-store /tmp/bench-store-model]
    python -m bench.bench_store --cubes 100,1000,10000 [--steps 25] [--per-group 1000] [--workdir DIR]

Scale (`--cubes`): synthetic cubes of the shipped model's grid (64x64, `--steps` timesteps, rate and
rate_se, no probe statistics: the default batch layout) written through the store's own batch writer
(cache.slots.create_group / write_slots, `--per-group` slots per group as one `workbench cubes`
batch makes), each finished group compacted as `workbench cubes` does (cache.compact), then, in
the same process with the OS page cache warm: opening the store and
indexing it (`CubeStore(...)` + `index()`), `keys()`, a lookup by image name (`find`), a curve query
and a map query of a random cube (`open(key)` + `ds.curves.pixel` / `ds.curves.at`, median of 50),
`check_store` (every chunk read and verified), files on disk and bytes per cube. Goals at 10,000
cubes: open+index <= 1 s, curve <= 5 ms, map <= 20 ms, check <= 60 s, files <= 50 per 1,000 cubes.

Two cubes, written into one-slot groups of the real store layout (cache.slots: Zarr v3, Blosc-zstd
with shuffle, one image per chunk row) once per candidate chunk shape (t, y, x), then read back
through the `ds.curves` accessor as the dashboards and `workbench query` do:
- `synthetic`: 512x512x50 float32, rate-like (log-normal, spatially smooth, slowly varying in t);
- `shipped`: the shipped model's 64x64x50 cube of workbench/samples/osie-1654.jpg (Hutchinson K=32;
  computed once and kept in `--model-store`).
Per candidate: median (and minimum, less sensitive to a loaded machine) ms to read one pixel's
curve (random pixels) and one timestep's map (random t),
seconds to write the cube, and bytes on disk. The OS page cache is warm (as in repeated use).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.measure import load_average

__all__ = ["main", "CANDIDATES"]

SAMPLES = Path(__file__).resolve().parents[1] / "workbench" / "samples"
#: chunk shapes (t, y, x) compared; each is clipped to the cube's shape; None = the store's default rule
CANDIDATES = (None, (10, 128, 128), (50, 16, 16), (50, 32, 32), (50, 64, 64), (25, 64, 64), (10, 64, 64), (5, 128, 128),
              (10, 256, 256), (1, 512, 512), (50, 128, 128))


def synthetic_cube(N: int = 50, H: int = 512, W: int = 512, seed: int = 0):
    """A rate-like cube (N, H, W) float32: smooth log-normal maps drifting slowly over t."""
    from scipy.ndimage import gaussian_filter

    from cache.build import cube_from_arrays

    rng = np.random.default_rng(seed)
    base = gaussian_filter(rng.standard_normal((H, W)), 6) * 8
    drift = gaussian_filter(rng.standard_normal((N, H, W)).astype(np.float32), (3, 4, 4)) * 6
    rate = np.exp(0.5 * (base[None] + drift) - np.linspace(0, 1, N)[:, None, None]).astype(np.float32)
    rate *= 1 + 0.05 * rng.standard_normal(rate.shape).astype(np.float32)  # estimator noise
    attrs = {"model_fingerprint": "synthetic", "model_name": "synthetic", "rate_definition": "h",
             "estimator": "hutchinson", "K": 32, "k": 32, "seed": 0, "steps": N, "channel_rule": "mean", "scale": 1,
             "source_image": "synthetic", "source_size": [H, W], "package_version": "bench", "schema_version": "1",
             "key": "synthetic512", "complete": 1}
    return cube_from_arrays(rate, np.arange(N, dtype=np.int64) * 20 + 1, np.linspace(0.999, 0.005, N),
                            rng.integers(0, 256, (H, W, 3), dtype=np.uint8), attrs=attrs)


def shipped_cube(model_store: Path):
    """The shipped model's cube of one sample image (computed once into `model_store`)."""
    from cache.params import CubeParams
    from cache.store import CubeStore
    from workbench.adapters import load_model

    store = CubeStore(model_store)
    adapter = load_model(None, device="cpu")
    return store.get_or_compute(adapter, SAMPLES / "osie-1654.jpg", CubeParams()).load()


def _size_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def measure(ds, chunks: tuple[int, int, int], workdir: Path, *, curves: int, maps: int, seed: int = 0) -> dict:
    """Write `ds` with rate chunks `chunks` and time curve and map reads through the accessor."""
    from cache import slots
    from cache.store import group_spec_of

    spec = group_spec_of(ds)
    spec = slots.GroupSpec(spec.shape, spec.image_shape, spec.timesteps, spec.alphas, spec.attrs, spec.slots,
                           chunks=chunks)
    path = workdir / f"g-{'x'.join(map(str, chunks or ('default',)))}.zarr"
    shutil.rmtree(path, ignore_errors=True)
    slots.create_group(path, spec)
    t0 = time.perf_counter()
    slots.write_slot(path, 0, ds.rate.values, ds.image.values)
    write_s = time.perf_counter() - t0
    cube = slots.slot_dataset(slots.open_group(path), 0)
    N, H, W = spec.shape
    rng = np.random.default_rng(seed)
    cube.curves.pixel(0, 0), cube.curves.at(int(ds.timestep[0]))  # warm-up (metadata, codecs)
    tc = []
    for y, x in zip(rng.integers(0, H, curves), rng.integers(0, W, curves)):
        t0 = time.perf_counter()
        cube.curves.pixel(int(y), int(x))
        tc.append(time.perf_counter() - t0)
    tm = []
    for i in rng.integers(0, N, maps):
        t0 = time.perf_counter()
        cube.curves.at(int(ds.timestep[int(i)]))
        tm.append(time.perf_counter() - t0)
    np.testing.assert_array_equal(cube.curves.pixel(H // 2, W // 2).values, ds.rate.values[:, H // 2, W // 2])
    return {"chunks": list(slots.chunks_for(spec.shape, chunks)), "default": chunks is None,
            "curve_ms": 1e3 * float(np.median(tc)),
            "map_ms": 1e3 * float(np.median(tm)), "curve_ms_min": 1e3 * float(np.min(tc)),
            "map_ms_min": 1e3 * float(np.min(tm)), "write_s": write_s, "bytes": _size_bytes(path / "rate"),
            "raw_bytes": int(ds.rate.nbytes)}


#: the scale goals at 10,000 cubes (docs/cubes.md, "A store at data-set scale")
GOALS = {"open_index_s": 1.0, "curve_ms": 5.0, "map_ms": 20.0, "check_s": 60.0, "files_per_1000": 50.0}


def _scale_slot(rng, N: int, H: int, W: int) -> dict:
    """One synthetic cube's per-slot arrays: a smooth log-normal rate, its SE, an image."""
    base = rng.standard_normal((1, H // 8, W // 8)).repeat(8, 1).repeat(8, 2)
    rate = np.exp(0.5 * base - np.linspace(0, 1, N)[:, None, None] + 0.05 * rng.standard_normal((N, H, W)))
    rate = rate.astype(np.float32)
    return {"rate": rate, "image": rng.integers(0, 256, (H, W, 3), dtype=np.uint8),
            "rate_se": (0.1 * rate).astype(np.float32)}


def write_scale_store(path: Path, n: int, *, steps: int = 25, per_group: int = 1000, H: int = 64, W: int = 64,
                      seed: int = 0, block: int = 100) -> tuple[float, float]:
    """A store of `n` synthetic cubes written through the store's batch writer (cache.slots.write_slots,
    `block` slots per write; groups of `per_group` slots), each group then compacted
    (cache.compact.compact_group) as `workbench cubes` does at the end of a batch; returns (seconds
    writing, seconds compacting)."""
    from cache import compact, schema, slots
    from cache.keys import cube_key
    from cache.params import CubeParams
    from cache.store import CubeStore

    store = CubeStore(path)
    rng = np.random.default_rng(seed)
    params = CubeParams(K=16, steps=steps)
    attrs = {"model_fingerprint": "synthetic", "model_name": "synthetic", **params.as_attrs(), "scale": 1,
             "dtype": "float32", "package_version": "bench"}
    write_s = compact_s = 0.0
    for g0 in range(0, n, per_group):
        m = min(per_group, n - g0)
        rows = [{"key": cube_key(f"img{g0 + i}".encode(), "synthetic", params), "source_image": f"/data/img{g0 + i}.jpg",
                 "source_size": [480, 640], "name": f"img{g0 + i}"} for i in range(m)]
        spec = slots.GroupSpec(shape=(steps, H, W), image_shape=(H, W), timesteps=np.arange(steps) * 40 + 1,
                               alphas=np.linspace(0.999, 0.005, steps), attrs=attrs, slots=rows)
        gpath = store.group_path(f"b-bench{g0:08d}")
        t0 = time.perf_counter()
        slots.create_group(gpath, spec)
        for b0 in range(0, m, block):
            cubes = {}
            for i in range(b0, min(m, b0 + block)):
                a = _scale_slot(rng, steps, H, W)
                cubes[i] = {schema.VAR_RATE: a["rate"], schema.VAR_IMAGE: a["image"], schema.VAR_RATE_SE: a["rate_se"]}
            slots.write_slots(gpath, cubes)
        t1 = time.perf_counter()
        compact.compact_group(gpath)
        write_s, compact_s = write_s + t1 - t0, compact_s + time.perf_counter() - t1
    return write_s, compact_s


def _files_bytes(path: Path) -> tuple[int, int]:
    files = [p for p in path.rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


def measure_scale(path: Path, *, queries: int = 50, seed: int = 1) -> dict:
    """Open+index, keys(), lookup by name, curve and map queries, check, files and bytes of the store at `path`."""
    from cache.check import check_store
    from cache.store import CubeStore

    t0 = time.perf_counter()
    store = CubeStore(path, create=False)
    rows = store.index()
    open_index = time.perf_counter() - t0
    t0 = time.perf_counter()
    keys = store.keys()
    keys_s = time.perf_counter() - t0
    rng = np.random.default_rng(seed)
    names = [rows[int(i)]["name"] for i in rng.integers(0, len(rows), 20)]
    t0 = time.perf_counter()
    for nm in names:
        assert store.find(nm) is not None
    find_ms = 1e3 * (time.perf_counter() - t0) / len(names)
    tc, tm, cc, cm = [], [], [], []
    for i in rng.integers(0, len(keys), queries):
        ds = store.open(keys[int(i)])
        N, H, W = ds.rate.shape
        t0, c0 = time.perf_counter(), time.process_time()
        store.open(keys[int(i)]).curves.pixel(int(rng.integers(0, H)), int(rng.integers(0, W))).values
        tc.append(time.perf_counter() - t0)
        cc.append(time.process_time() - c0)
        # a map of another cube: the curve's chunks are cached (cache.reader), a map of the same cube would be cheaper
        j = int(rng.integers(0, len(keys)))
        t0, c0 = time.perf_counter(), time.process_time()
        store.open(keys[j]).curves.at(int(ds.timestep[int(rng.integers(0, N))])).values
        tm.append(time.perf_counter() - t0)
        cm.append(time.process_time() - c0)
    t0, c0 = time.perf_counter(), time.process_time()
    rep = check_store(store)
    check_s, check_cpu = time.perf_counter() - t0, time.process_time() - c0
    files, nbytes = _files_bytes(path)
    rate_bytes = sum(_files_bytes(g / "rate")[1] + _files_bytes(g / "rate_se")[1] for g in store.groups_dir.glob("*.zarr"))
    return {"cubes": len(keys), "open_index_s": open_index, "keys_s": keys_s, "find_ms": find_ms,
            "curve_ms": 1e3 * float(np.median(tc)), "map_ms": 1e3 * float(np.median(tm)), "check_s": check_s,
            # CPU seconds of this process: what the query costs without the other jobs' share of the cores
            "curve_cpu_ms": 1e3 * float(np.median(cc)), "map_cpu_ms": 1e3 * float(np.median(cm)),
            "check_cpu_s": check_cpu, "checked": rep.checked,
            "check_damaged": len(getattr(rep, "damaged", [])), "files": files,
            "files_per_1000": 1000 * files / max(1, len(keys)), "bytes_per_cube": nbytes / max(1, len(keys)),
            "rate_se_bytes_per_cube": rate_bytes / max(1, len(keys))}


def layout_bytes(K: int = 4, steps: int = 25, workdir: Path | None = None) -> dict:
    """Bytes per cube of one shipped-model cube (osie-1654, Hutchinson K, `steps`) written in the
    refinable layout (with the probe statistics, every batch's layout before they became opt-in) and in
    the default one (rate + rate_se): per variable (chunk files, zarr.json excluded) and in total."""
    import dataclasses

    import torch

    from cache import slots
    from cache.build import compute_cube
    from cache.params import CubeParams
    from cache.store import group_spec_of
    from workbench.adapters import load_model

    ad = load_model(None, device="cpu", dtype=torch.float32)
    t0 = time.perf_counter()
    ds = compute_cube(ad, SAMPLES / "osie-1654.jpg", CubeParams(K=K, steps=steps))
    out = {"K": K, "steps": steps, "cube_s": time.perf_counter() - t0, "load": load_average()}
    with tempfile.TemporaryDirectory(prefix="bench-bytes-", dir=workdir) as tmp:
        for name, keep in (("refinable", True), ("default", False)):
            spec = group_spec_of(ds)
            spec = spec if keep else dataclasses.replace(spec, stat_channels=0)
            path = Path(tmp) / f"{name}.zarr"
            slots.create_group(path, spec)
            slots.write_slot(path, 0, ds.rate.values, ds.image.values, **slots.slot_extras(ds))
            per = {v.name: sum(f.stat().st_size for f in v.rglob("*") if f.is_file() and f.name != "zarr.json")
                   for v in path.iterdir() if v.is_dir()}
            out[name] = {"per_var": per, "bytes": sum(per.values()),
                         "files": sum(1 for f in path.rglob("*") if f.is_file()),
                         "ratio": sum(per.values()) / (per["rate"] + per["rate_se"])}
    return out


def scale_main(args) -> int:
    """`--cubes N,...`: write and measure a synthetic store per N; print the table."""
    import platform

    sizes = [int(v) for v in args.cubes.split(",")]
    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else ""
    results = {"cpu": cpu, "cpu_count": os.cpu_count(), "steps": args.steps, "per_group": args.per_group, "rows": []}
    base = Path(args.workdir or tempfile.mkdtemp(prefix="bench-store-scale-"))
    print(f"# {cpu}, {os.cpu_count()} cores; synthetic 64x64x{args.steps} cubes (rate + rate_se), "
          f"{args.per_group} per group", flush=True)
    try:
        for n in sizes:
            path = base / f"store-{n}"
            shutil.rmtree(path, ignore_errors=True)
            load0 = load_average()[0]
            write_s, compact_s = write_scale_store(path, n, steps=args.steps, per_group=args.per_group)
            row = {"write_s": write_s, "compact_s": compact_s, **measure_scale(path),
                   "load": [load0, load_average()[0]]}
            results["rows"].append(row)
            print(f"{n:>6} cubes: write {write_s:.1f} s + compact {compact_s:.1f} s, open+index "
                  f"{row['open_index_s']:.3f} s, keys() "
                  f"{row['keys_s'] * 1e3:.1f} ms, find {row['find_ms']:.1f} ms, curve {row['curve_ms']:.2f} ms "
                  f"({row['curve_cpu_ms']:.2f} CPU), map {row['map_ms']:.2f} ms ({row['map_cpu_ms']:.2f} CPU), check "
                  f"{row['check_s']:.1f} s ({row['check_cpu_s']:.1f} CPU), "
                  f"{row['files_per_1000']:.0f} files per 1,000 "
                  f"cubes, {row['bytes_per_cube'] / 1e3:.0f} kB per cube (rate + rate_se "
                  f"{row['rate_se_bytes_per_cube'] / 1e3:.0f} kB); load {row['load'][0]:.1f} -> {row['load'][1]:.1f}",
                  flush=True)
            if args.json:  # after every row: a long last row leaves the others written
                Path(args.json).write_text(json.dumps(results, indent=1))
            if not args.keep:
                shutil.rmtree(path, ignore_errors=True)
    finally:
        if not args.keep and not args.workdir:
            shutil.rmtree(base, ignore_errors=True)
    last = results["rows"][-1]
    missed = [k for k, v in GOALS.items() if last[k] > v]
    print(f"goals at {last['cubes']} cubes: " + ", ".join(f"{k} {last[k]:.3g} (<= {v:g})" for k, v in GOALS.items())
          + (f"; missed: {', '.join(missed)}" if missed else "; all met"))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cubes", default=None, metavar="N,...",
                    help="the data-set scale benchmark at these store sizes (e.g. 100,1000,10000)")
    ap.add_argument("--steps", type=int, default=25, help="timesteps of the scale benchmark's cubes (default 25)")
    ap.add_argument("--per-group", type=int, default=1000, help="cubes per group (one batch) in the scale benchmark")
    ap.add_argument("--workdir", default=None, help="where the scale benchmark's stores go (default: a temp folder)")
    ap.add_argument("--keep", action="store_true", help="keep the scale benchmark's stores")
    ap.add_argument("--layout-bytes", default=None, metavar="K,STEPS",
                    help="bytes per cube of one shipped-model cube, refinable layout vs default (e.g. 4,25)")
    ap.add_argument("--quick", action="store_true", help="fewer reads, fewer candidates (a smoke run)")
    ap.add_argument("--json", default="bench-store.json", help="where to write the results")
    ap.add_argument("--model-store", default=os.path.join(tempfile.gettempdir(), "bench-store-model"),
                    help="store that keeps the shipped model's cube between runs")
    ap.add_argument("--no-model", action="store_true", help="skip the shipped model's cube")
    args = ap.parse_args(argv)
    import cache  # noqa: F401  (the accessor)

    if args.layout_bytes:
        K, steps = (int(v) for v in args.layout_bytes.split(","))
        res = layout_bytes(K, steps)
        for name in ("refinable", "default"):
            r = res[name]
            print(f"{name:>10}: {r['bytes'] / 1e3:8.1f} kB per cube ({r['ratio']:.2f}x rate + rate_se), "
                  f"{r['files']} files in a one-cube group; " + ", ".join(
                      f"{k} {v / 1e3:.1f} kB" for k, v in sorted(r["per_var"].items(), key=lambda kv: -kv[1]) if v > 500))
        print(f"(K={K}, {steps} steps, cube computed in {res['cube_s']:.0f} s, load {res['load'][0]:.1f})")
        Path(args.json if args.json != "bench-store.json" else "bench-store-bytes.json").write_text(
            json.dumps(res, indent=1))
        return 0
    if args.cubes:
        if args.json == "bench-store.json":
            args.json = "bench-store-scale.json"
        return scale_main(args)

    curves, maps = (20, 5) if args.quick else (200, 30)
    cands = CANDIDATES[:4] if args.quick else CANDIDATES
    cubes = {"synthetic 512x512x50": synthetic_cube()}
    if not args.no_model:
        cubes["shipped model 64x64x50"] = shipped_cube(Path(args.model_store))
    results = {"load_avg": load_average(), "cpu_count": os.cpu_count(), "cubes": {}}
    with tempfile.TemporaryDirectory(prefix="bench-store-") as tmp:
        for name, ds in cubes.items():
            rows, seen = [], set()
            for c in cands:
                from cache.slots import chunks_for

                clipped = chunks_for(tuple(ds.rate.shape), c)
                if clipped in seen:
                    continue
                seen.add(clipped)
                rows.append(measure(ds, c, Path(tmp), curves=curves, maps=maps))
            results["cubes"][name] = rows
            print(f"\n{name} (raw {ds.rate.nbytes / 1e6:.1f} MB), load average {load_average()[0]:.1f}")
            print("* = the store's default for this cube")
            print(f"{'chunks (t,y,x)':>16} {'curve ms':>9} {'(min)':>6} {'map ms':>8} {'(min)':>6} {'write s':>8} "
                  f"{'MB':>7} {'ratio':>6}")
            for r in rows:
                label = str(tuple(r["chunks"])) + ("*" if r["default"] else "")
                print(f"{label:>16} {r['curve_ms']:9.2f} {r['curve_ms_min']:6.2f} {r['map_ms']:8.2f} "
                      f"{r['map_ms_min']:6.2f} {r['write_s']:8.2f} "
                      f"{r['bytes'] / 1e6:7.2f} {r['raw_bytes'] / max(r['bytes'], 1):6.2f}")
    Path(args.json).write_text(json.dumps(results, indent=1))
    print(f"\nwrote {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
