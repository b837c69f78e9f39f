"""Golden cubes: what `workbench cubes` stores for the shipped model, pinned byte for byte.

The cubes of one shipped sample image (a few probes, a few DDIM steps, fixed seed) are computed
through the command line, exactly as a user runs `workbench cubes`, in float32 and bfloat16, and
their `rate`, `rate_se`, `timestep` and `alpha` compared with the arrays in
`tests/golden/shipped_cubes.npz`, which were written by the code before a redesign of the cube
pipeline: a refactor that changes no number passes, one that changes a single bit fails.

Bit-identity holds on the same kind of CPU: the file records torch's CPU capability (AVX2,
AVX512, ...) and where this machine's differs (other SIMD kernels sum in another order) the
arrays are compared with a tight tolerance instead, and the assertion message says so. The probe
statistics are not pinned (their on-disk layout may change; refinement's exactness is tested in
tests/test_cache_refine.py).

If the shipped weights change, the numbers legitimately change: regenerate the file with

    python tests/test_golden.py --regenerate

(on the commit whose numbers you trust) and commit it beside the new weights.
"""
from __future__ import annotations

import hashlib
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "golden" / "shipped_cubes.npz"
SAMPLE = ROOT / "workbench" / "samples" / "osie-1654.jpg"
WEIGHTS = ROOT / "workbench" / "models" / "default" / "unet" / "diffusion_pytorch_model.safetensors"
#: (name, extra `workbench cubes` arguments): small enough for a CPU test (bfloat16 is emulated on CPUs
#: without native bf16, ~4x slower)
CASES = {
    "float32-h": ["--dtype", "float32", "--rate", "h", "--K", "2", "--steps", "5"],
    "float32-eps": ["--dtype", "float32", "--rate", "eps", "--K", "2", "--steps", "3"],
    "bfloat16-h": ["--dtype", "bfloat16", "--rate", "h", "--K", "2", "--steps", "2"],
}
ARRAYS = ("rate", "rate_se", "timestep", "alpha")
#: one thread: the same reduction order on every machine of one CPU capability
THREADS = 1
#: where the CPU capability differs from the recorded one: float32 kernels agree to rounding, bfloat16
#: ones (8-bit mantissa in the model) to a few bf16 ulps of the model's outputs
TOLERANCE = {"float32": dict(rtol=1e-4, atol=1e-6), "bfloat16": dict(rtol=3e-2, atol=1e-4)}


def weights_sha256() -> str:
    """SHA-256 of the shipped U-Net weights file."""
    return hashlib.sha256(WEIGHTS.read_bytes()).hexdigest()


def cpu_capability() -> str:
    """torch's CPU kernel capability on this machine ('AVX2', 'AVX512', 'DEFAULT', ...)."""
    return str(torch.backends.cpu.get_cpu_capability())


def compute_case(name: str, workdir: Path) -> dict[str, np.ndarray]:
    """Run `workbench cubes SAMPLE --store ... <CASES[name]> --device cpu` in this process and return the
    stored cube's arrays (rate and rate_se (t, y, x) float32, timestep (t,) int64, alpha (t,) float64)."""
    from cache.store import CubeStore
    from workbench.cli import main

    store = workdir / name
    threads = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    try:
        rc = main(["cubes", str(SAMPLE), "--store", str(store), "--device", "cpu", *CASES[name]])
    finally:
        torch.set_num_threads(threads)
    assert rc == 0, f"workbench cubes failed for {name} (exit {rc})"
    cubes = CubeStore(store, create=False)
    keys = list(cubes.keys())
    assert len(keys) == 1, keys
    ds = cubes.open(keys[0]).load()
    return {"rate": ds["rate"].values, "rate_se": ds["rate_se"].values, "timestep": ds["timestep"].values,
            "alpha": ds["alpha"].values}


def load_golden() -> tuple[dict, dict[str, np.ndarray]]:
    """(metadata, arrays named '<case>/<array>') of the golden file."""
    with np.load(GOLDEN) as z:
        meta = json.loads(str(z["meta"]))
        return meta, {k: z[k] for k in z.files if k != "meta"}


def regenerate() -> None:
    """Compute every case with the code of this checkout and write the golden file."""
    import subprocess

    arrays = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in CASES:
            for k, v in compute_case(name, Path(tmp)).items():
                arrays[f"{name}/{k}"] = v
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip()
    meta = {"weights_sha256": weights_sha256(), "cpu_capability": cpu_capability(), "torch": torch.__version__,
            "threads": THREADS, "sample": SAMPLE.name, "cases": CASES, "commit": commit}
    GOLDEN.parent.mkdir(parents=True, exist_ok=True)
    tmp = GOLDEN.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, meta=np.array(json.dumps(meta)), **arrays)
    tmp.replace(GOLDEN)
    print(f"wrote {GOLDEN} ({GOLDEN.stat().st_size} bytes): {meta}")


@pytest.fixture(scope="module")
def golden():
    meta, arrays = load_golden()
    if meta["weights_sha256"] != weights_sha256():
        pytest.fail(f"the shipped weights changed (sha256 {weights_sha256()[:16]}..., golden file made with "
                    f"{meta['weights_sha256'][:16]}...): regenerate with `python tests/test_golden.py --regenerate`")
    return meta, arrays


def test_golden_file_records_what_it_was_made_with(golden):
    meta, arrays = golden
    assert set(meta["cases"]) == set(CASES) and meta["cases"] == CASES
    assert meta["threads"] == THREADS
    assert sorted(arrays) == sorted(f"{c}/{a}" for c in CASES for a in ARRAYS)
    assert arrays["float32-h/rate"].dtype == np.float32 and arrays["float32-h/rate"].shape == (5, 64, 64)
    assert np.isfinite(arrays["bfloat16-h/rate"]).all() and (arrays["float32-h/rate_se"] > 0).all()


@pytest.mark.parametrize("name", list(CASES))
def test_cubes_match_the_golden_file(golden, name, tmp_path):
    meta, arrays = golden
    got = compute_case(name, tmp_path)
    same_cpu = meta["cpu_capability"] == cpu_capability()
    for a in ARRAYS:
        want = arrays[f"{name}/{a}"]
        assert got[a].dtype == want.dtype and got[a].shape == want.shape, (name, a, got[a].dtype, got[a].shape)
        if same_cpu:
            diff = np.abs(got[a].astype(np.float64) - want.astype(np.float64))
            assert got[a].tobytes() == want.tobytes(), (
                f"{name}/{a} is not byte-identical to the golden cube ({int((diff > 0).sum())} of {diff.size} values "
                f"differ, max |diff| {diff.max():.3g}): the cube pipeline changed a number")
        else:
            tol = TOLERANCE["bfloat16" if name.startswith("bfloat16") else "float32"]
            np.testing.assert_allclose(
                got[a], want, **tol,
                err_msg=f"{name}/{a}: this CPU's torch capability is {cpu_capability()}, the golden file's "
                        f"{meta['cpu_capability']}, so the cube is compared within {tol} instead of byte for byte")


if __name__ == "__main__":
    if sys.argv[1:] != ["--regenerate"]:
        sys.exit("usage: python tests/test_golden.py --regenerate   (rewrites tests/golden/shipped_cubes.npz)")
    sys.path.insert(0, str(ROOT))
    regenerate()
