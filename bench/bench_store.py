"""Cube store chunking benchmark (issue 3): time per curve read, per map read, write time, store size.

    python -m bench.bench_store [--quick] [--json bench-store.json] [--model-store /tmp/bench-store-model]

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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer reads, fewer candidates (a smoke run)")
    ap.add_argument("--json", default="bench-store.json", help="where to write the results")
    ap.add_argument("--model-store", default=os.path.join(tempfile.gettempdir(), "bench-store-model"),
                    help="store that keeps the shipped model's cube between runs")
    ap.add_argument("--no-model", action="store_true", help="skip the shipped model's cube")
    args = ap.parse_args(argv)
    import cache  # noqa: F401  (the accessor)

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
