"""The description of one curve-matching edit (DESIGN.md section 3): a frozen dataclass.

Every knob has a default chosen by measurement with the shipped model on the shared editing data
(README.md, "How the defaults were chosen (shipped model, 64x64, CPU)"); every result records the config it ran with.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from .. import validate as v
from ..errors import WorkbenchError
from ..rates import RATE_DEFINITIONS

__all__ = ["TASKS", "EditConfig"]

#: transfer: match a reference pixel's curve; removal: match a background pixel's curve (or the
#: pseudo-curve: minimise the region's rates for t > t_b); saliency: +/- rates for t > t_b plus
#: feature alignment; blending: minimise the rates of the band mask - erode(mask) plus feature alignment.
TASKS = ("transfer", "removal", "saliency", "blending")


@dataclass(frozen=True)
class EditConfig:
    """One edit. Timesteps are the model's training timesteps (0..T-1); pixels are model-grid pixels.

    task: one of TASKS.  n_iter: Adam iterations on x_T.  lr: Adam learning rate (x_T has unit variance).
    refresh_every: k, iterations between refreshes of the source (and in-region reference) curves and
    the x_T blend.  blend: blend with the original outside the mask (local edit).  blend_t: states with
    t >= blend_t are blended (x_T every k iterations, intermediate states at every generation).
    t_b: timesteps t <= t_b are never sampled and are left out of the pseudo-curve, saliency and
    blending losses (the sharp rise near t = 0).  direction: saliency +1 decrease / -1 increase.
    rate_weight: lambda on the rate term of removal (pseudo-curve), saliency and blending.
    feature_weight: weight of the feature-alignment term (saliency, blending; 0 disables).
    erosion: blending band = mask minus its erosion by a square of this many model-grid pixels.
    steps: DDIM steps of the editing trajectory.  seed: sampling of pixels, timesteps and channels.
    rate: rate definition (workbench.rates).  pixels_per_iter: (pixel, channel) samples per iteration
    (they share one differentiated chain).  curve_pixels: region pixels whose curves are reported
    before/after.  fluct_window: window L of the region-fluctuation metric.  checkpoint: gradient
    checkpointing of the chain (None = on for CUDA, off on CPU, where it only costs time).
    """

    task: str = "removal"
    n_iter: int = 100
    lr: float = 0.01
    refresh_every: int = 10
    blend: bool = True
    blend_t: int = 500
    t_b: int = 100
    direction: int = 1
    rate_weight: float = 1.0
    feature_weight: float = 1.0
    erosion: int = 5
    steps: int = 10
    seed: int = 0
    rate: str = "h"
    pixels_per_iter: int = 1
    curve_pixels: int = 8
    fluct_window: int = 3
    checkpoint: bool | None = None

    def __post_init__(self):
        if self.task not in TASKS:
            raise WorkbenchError(f"unknown task {self.task!r}: choose one of {', '.join(TASKS)}")
        v.check_iterations(self.n_iter)
        v.check_real("lr", self.lr, minimum=0, open_min=True, why="the Adam learning rate")
        v.check_int("refresh_every", self.refresh_every, minimum=1)
        v.check_int("blend_t", self.blend_t, minimum=0)
        v.check_t_b(self.t_b)
        if self.direction not in (1, -1):
            raise WorkbenchError(f"direction must be +1 (decrease) or -1 (increase), got {self.direction}")
        v.check_real("rate_weight", self.rate_weight, minimum=0)
        v.check_real("feature_weight", self.feature_weight, minimum=0)
        v.check_int("erosion", self.erosion, minimum=1, why="model-grid pixels")
        v.check_steps(self.steps, minimum=2)
        v.check_seed(self.seed)
        if self.rate not in RATE_DEFINITIONS or self.rate == "projected":
            raise WorkbenchError(f"rate {self.rate!r} cannot be edited: choose one of step, eps, h")
        v.check_int("pixels_per_iter", self.pixels_per_iter, minimum=1, maximum=4096)
        v.check_int("curve_pixels", self.curve_pixels, minimum=1, maximum=4096)
        v.check_window(self.fluct_window)

    def as_dict(self) -> dict:
        """Plain dict (JSON-ready) of every field."""
        return asdict(self)

    def with_(self, **changes) -> "EditConfig":
        """A copy with some fields changed (validated again)."""
        return replace(self, **changes)
