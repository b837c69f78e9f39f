"""Deterministic DDIM (eta = 0): inversion and generation with one loop, for every model family.

Paper-to-code names: a state is x_t = alpha_t x0 + sigma_t eps (`signal`, `noise`). For the
variance-preserving families alpha_t = sqrt(a_t), sigma_t = sqrt(1 - a_t), a_t = `alphas_cumprod[t]`;
for flow matching (rectified flow) alpha_t = 1 - sigma_t (workbench.flow). One generation step
t -> s is x_s = alpha_s x0_hat + sigma_s eps = A_t x_t + B_t eps(x_t, t) with
A_t = alpha_s / alpha_t, B_t = sigma_s - alpha_s sigma_t / alpha_t (DESIGN.md section 1: for VP,
A_t = sqrt(a_s / a_t), B_t = sqrt(1 - a_s) - sqrt(a_s (1 - a_t) / a_t)). For flow matching the same
step is exactly the Euler step x_s = x_t + (sigma_s - sigma_t) v of the velocity ODE, because the
adapter's eps is eps = x_t + alpha_t v. Every adapter returns eps (its prediction type converted).
Inversion runs the same affine map the other way, s -> t, with eps evaluated at the current
(less noisy) point and the target timestep t, exactly as diffusers' `DDIMInverseScheduler`
(clip_sample=False, set_alpha_to_one=False).

Inversion can refine each step by fixed-point iteration (`fixed_point` > 0; Pan et al. 2023, "Effective
real image editing with accelerated iterative diffusion inversion"): the plain step above assumes
eps at the new point equals eps at the old one, which holds where the trajectory is straight. Each
refinement evaluates eps at the current estimate of the new point x_t, at its own t and noise level,
and solves the generation step for it, x_t = (x_s - B_t eps(x_t, t)) / A_t, so that generating from
x_t gives back x_s (exactly at the fixed point). One refinement costs one more network evaluation per
inversion step; `INVERSION_FIXED_POINT` is the engine's default (docs/model.md measures why).

Time is indexed in ascending order everywhere: `timesteps[0] = t_N` (least noise) ...
`timesteps[-1] = t_1` (x_T). Below `timesteps[0]` lies the clean sample, with a = a_final.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.utils.checkpoint

from .adapters import ModelAdapter
from .validate import check_fixed_point, check_steps

__all__ = ["INVERSION_FIXED_POINT", "Schedule", "Trajectory", "make_schedule", "step_coefficients", "transfer_coefficients", "ddim_loop", "invert", "generate",
           "reconstruction_psnr"]


#: fixed-point refinements per inversion step by default (0 = plain DDIM inversion, as diffusers'
#: DDIMInverseScheduler); 1 brings DDIM-50 invert-then-generate from 34.9 / 25.6 dB (epsilon / v
#: default weights) to 49.3 / 48.2 dB at twice the inversion's network evaluations (docs/model.md)
INVERSION_FIXED_POINT = 1


@dataclass(frozen=True)
class Schedule:
    """The DDIM time grid: `timesteps` (N,) ascending ints, `alphas` (N,) = a_t at them (the signal
    fraction alpha^2 / (alpha^2 + sigma^2), = alphas_cumprod for VP models), `alpha_final` below
    index 0; `signal` / `noise` (N,) float64 = alpha_t / sigma_t and `signal_final` / `noise_final`
    (derived from `alphas` as sqrt(a), sqrt(1 - a) when not given)."""

    timesteps: torch.Tensor
    alphas: torch.Tensor
    alpha_final: float
    signal: torch.Tensor | None = None
    noise: torch.Tensor | None = None
    signal_final: float | None = None
    noise_final: float | None = None

    def __post_init__(self):
        a = self.alphas.double()
        if self.signal is None:
            object.__setattr__(self, "signal", a.sqrt())
        if self.noise is None:
            object.__setattr__(self, "noise", (1 - a).sqrt())
        if self.signal_final is None:
            object.__setattr__(self, "signal_final", float(self.alpha_final) ** 0.5)
        if self.noise_final is None:
            object.__setattr__(self, "noise_final", (1 - float(self.alpha_final)) ** 0.5)

    def __len__(self) -> int:
        return len(self.timesteps)

    def alpha_below(self, i: int) -> float:
        """a of the state below index i (index i-1, or the clean sample for i = 0)."""
        return float(self.alphas[i - 1]) if i > 0 else self.alpha_final

    def signal_noise(self, i: int) -> tuple[float, float]:
        """(alpha, sigma) of grid index i; i = -1 is the clean end (`signal_final`, `noise_final`)."""
        if i < 0:
            return float(self.signal_final), float(self.noise_final)
        return float(self.signal[i]), float(self.noise[i])

    def step_coefficients(self, i: int) -> tuple[float, float]:
        """(A_t, B_t) of the generation step from index i to i - 1: x_s = A_t x_t + B_t eps."""
        return transfer_coefficients(self.signal_noise(i), self.signal_noise(i - 1))


def make_schedule(adapter: ModelAdapter, steps: int = 50) -> Schedule:
    """DDIM 'leading' spacing as diffusers: t = k * (T // steps) + steps_offset, k = 0..steps-1."""
    T = adapter.num_train_timesteps

    check_steps(steps, num_train_timesteps=T)
    ts = torch.arange(steps, dtype=torch.long) * (T // steps) + adapter.steps_offset
    ts = ts.clamp(max=T - 1)
    signal, noise = adapter.signal_noise(ts)
    signal_final, noise_final = adapter.final_signal_noise()
    a = signal.pow(2) / (signal.pow(2) + noise.pow(2))
    alpha_final = signal_final ** 2 / (signal_final ** 2 + noise_final ** 2)
    if (signal <= 0).any():
        raise ValueError(f"{steps} steps reach a timestep with no signal (sigma = 1): use fewer steps")
    return Schedule(ts, a, float(alpha_final), signal, noise, float(signal_final), float(noise_final))


def step_coefficients(a_t: float, a_s: float) -> tuple[float, float]:
    """(A_t, B_t) of the VP generation step t -> s from a = alphas_cumprod: x_s = A_t x_t + B_t eps."""
    A = (a_s / a_t) ** 0.5
    B = (1 - a_s) ** 0.5 - (a_s * (1 - a_t) / a_t) ** 0.5
    return A, B


def transfer_coefficients(source: tuple[float, float], target: tuple[float, float]) -> tuple[float, float]:
    """(A, B) of the deterministic map from a state with (alpha, sigma) = `source` to `target`:
    x_target = alpha_target x0_hat + sigma_target eps, x0_hat = (x - sigma_source eps) / alpha_source."""
    (a_from, s_from), (a_to, s_to) = source, target
    if a_from <= 0:
        raise ValueError("a state with no signal (alpha = 0) cannot be mapped by the eps contract: "
                         "choose a grid that stops below sigma = 1")
    return a_to / a_from, s_to - a_to * s_from / a_from


@dataclass(frozen=True)
class Trajectory:
    """The deterministic path of one sample: `states` (N, C, H, W) at `schedule.timesteps`
    (ascending: states[-1] = x_T) and the clean sample `x0` (C, H, W), model space."""

    schedule: Schedule
    states: torch.Tensor
    x0: torch.Tensor

    @property
    def x_T(self) -> torch.Tensor:
        return self.states[-1]


StepCallback = Callable[[dict], None]
#: gradient modes of ddim_loop: no graph, a full graph, a graph recomputed per step in the backward pass
GRAD_MODES = ("off", "on", "checkpointed")


def ddim_loop(adapter: ModelAdapter, x: torch.Tensor, schedule: Schedule, *, direction: str,
              span: tuple[int | None, int | None] = (None, None), callback: StepCallback | None = None,
              grad: str = "off", fixed_point: int = 0) -> torch.Tensor:
    """Run DDIM on a batch x (B, C, H, W) between grid indices `span` = (start, stop).

    direction="generate": from index `start` (default N-1, i.e. x_T) down to index `stop`
    (default -1, the clean sample); direction="invert": from `start` (default -1, clean) up to
    `stop` (default N-1). `callback(dict(i, t, x, eps))` after every step, `x` the new state at
    grid index i. `grad`: "off" (no graph), "on" (gradients flow) or "checkpointed" (gradients flow,
    each step recomputed in the backward pass instead of kept). `fixed_point`: fixed-point
    refinements of each inversion step (see the module docstring; generation ignores it).
    """
    N = len(schedule)
    start, stop = span
    if direction == "generate":
        start, stop = (N - 1 if start is None else start), (-1 if stop is None else stop)
        pairs = [(i, i - 1) for i in range(start, stop, -1)]
    elif direction == "invert":
        start, stop = (-1 if start is None else start), (N - 1 if stop is None else stop)
        pairs = [(i, i + 1) for i in range(start, stop)]
    else:
        raise ValueError(f"direction must be 'generate' or 'invert', got {direction!r}")

    if grad not in GRAD_MODES:
        raise ValueError(f"grad must be one of {GRAD_MODES}, got {grad!r}")
    fixed_point = check_fixed_point(fixed_point) if direction == "invert" else 0
    ctx = torch.enable_grad() if grad != "off" else torch.no_grad()
    with ctx:
        for src, dst in pairs:
            # generation evaluates eps at the source; inversion at the source point with the target's t
            t_eval = int(schedule.timesteps[src if direction == "generate" else dst])
            A, B = transfer_coefficients(schedule.signal_noise(src), schedule.signal_noise(dst))

            level = schedule.signal_noise(src)  # the state's own noise level (inversion asks the net at t)
            # the generation step back from dst to src, which each refinement solves for the new point
            A_back, B_back = transfer_coefficients(schedule.signal_noise(dst), schedule.signal_noise(src)) \
                if fixed_point else (1.0, 0.0)

            def one_step(xx: torch.Tensor, t_eval=t_eval, A=A, B=B, level=level, A_back=A_back, B_back=B_back,
                         dst=dst):
                e = adapter.eps(xx, t_eval, level=level)
                new = A * xx + B * e
                for _ in range(fixed_point):
                    e = adapter.eps(new, t_eval, level=schedule.signal_noise(dst))
                    new = (xx - B_back * e) / A_back
                return new, e

            if grad == "checkpointed":
                x, e = torch.utils.checkpoint.checkpoint(one_step, x, use_reentrant=False)
            else:
                x, e = one_step(x)
            if callback is not None:
                callback({"i": dst, "t": int(schedule.timesteps[dst]) if dst >= 0 else -1, "x": x, "eps": e})
    return x


def invert(adapter: ModelAdapter, x0: torch.Tensor, schedule: Schedule, *,
           callback: StepCallback | None = None, fixed_point: int = INVERSION_FIXED_POINT) -> Trajectory:
    """DDIM inversion of one model-space sample x0 (C, H, W) -> its whole trajectory, each step refined
    `fixed_point` times by fixed-point iteration (1 + fixed_point network evaluations per step)."""
    states: list[torch.Tensor] = []

    def keep(info: dict) -> None:
        states.append(info["x"][0].detach())
        if callback is not None:
            callback(info)

    dtype = _state_dtype(adapter)
    ddim_loop(adapter, x0[None].to(adapter.device, dtype), schedule, direction="invert", callback=keep,
              fixed_point=fixed_point)
    return Trajectory(schedule, torch.stack(states), x0.detach().to(adapter.device, dtype))


def generate(adapter: ModelAdapter, x_T: torch.Tensor, schedule: Schedule, *,
             callback: StepCallback | None = None) -> torch.Tensor:
    """DDIM generation of a batch x_T (B, C, H, W) to clean samples (B, C, H, W)."""
    return ddim_loop(adapter, x_T.to(adapter.device, _state_dtype(adapter)), schedule, direction="generate",
                     callback=callback)


def _state_dtype(adapter: ModelAdapter) -> torch.dtype:
    """Trajectories are kept (and the affine steps accumulated) in float32 for half-precision networks."""
    return getattr(adapter, "state_dtype", adapter.dtype)


def reconstruction_psnr(images: torch.Tensor, reconstructions: torch.Tensor) -> torch.Tensor:
    """PSNR in dB per image between (B, 3, H, W) tensors in [-1, 1] (peak-to-peak 2)."""
    mse = (images.float() - reconstructions.float()).pow(2).flatten(1).mean(1)
    return 10 * torch.log10(4.0 / mse.clamp_min(1e-12))
