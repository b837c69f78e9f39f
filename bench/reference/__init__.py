"""The exact reference that tests and benchmarks share (every estimator is scored against it).

`exact_h50.npz` holds exact `h` rates of random pixels of shipped samples at all 50 DDIM steps of
the shipped model (per channel), made by `python -m bench.reference.make_exact` (resumable; any
prefix of an image's pixels is a uniform random sample). `load_reference(adapter)` returns it, or
the reason it cannot be used (absent, made with other weights), so callers skip with that reason.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["REFERENCE_FILE", "Reference", "load_reference"]

REFERENCE_FILE = Path(__file__).with_name("exact_h50.npz")


@dataclass(frozen=True)
class Reference:
    """images (I,) sample names; pixels[i] (P_i, 2) model (y, x); rates[i] (P_i, C, N) exact element
    rates (channel mean = the pixel rate); timesteps (N,) ascending; state_norms (I, N) to check a
    re-inverted trajectory; model_fingerprint; steps."""

    images: list[str]
    pixels: list[np.ndarray]
    rates: list[np.ndarray]
    timesteps: np.ndarray
    state_norms: np.ndarray
    model_fingerprint: str
    steps: int
    seconds: np.ndarray
    load_average: np.ndarray

    def pixel_curves(self, i: int) -> np.ndarray:
        """Exact pixel curves of image i (P_i, N): the mean over channels of the element rates."""
        return self.rates[i].astype(np.float64).mean(1)


def load_reference(adapter=None, path: Path = REFERENCE_FILE) -> tuple[Reference | None, str]:
    """(reference, "") or (None, why not): the file is absent, has no finished pixel, or was made
    with other model weights than `adapter`'s (a retrained shipped model: rerun make_exact)."""
    if not path.exists():
        return None, f"{path.name} is absent: run `nice -n 19 python -m bench.reference.make_exact`"
    z = np.load(path, allow_pickle=False)
    fp = str(z["model_fingerprint"])
    if adapter is not None and adapter.fingerprint() != fp:
        return None, (f"{path.name} was made with model {fp}, not {adapter.fingerprint()} (the shipped model was "
                      "retrained?): move it away and rerun `python -m bench.reference.make_exact`")
    done = [int(n) for n in z["n_done"]]
    if not any(done):
        return None, f"{path.name} has no finished pixel yet: let make_exact run (it resumes)"
    return Reference(images=[str(s) for s in z["images"]], pixels=[z["pixels"][i, :n] for i, n in enumerate(done)],
                     rates=[z["rates"][i, :n] for i, n in enumerate(done)], timesteps=z["timesteps"],
                     state_norms=z["state_norms"], model_fingerprint=fp, steps=int(z["steps"]),
                     seconds=z["seconds"], load_average=z["load_average"]), ""
