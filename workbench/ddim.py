"""Deterministic DDIM (eta = 0): inversion and generation with one loop.

Paper-to-code names: a_t = `alphas_cumprod[t]`; one generation step t -> s is
x_s = A_t x_t + B_t eps(x_t, t) with A_t = sqrt(a_s / a_t),
B_t = sqrt(1 - a_s) - sqrt(a_s (1 - a_t) / a_t) (DESIGN.md section 1).
Inversion runs the same affine map the other way, s -> t, with eps evaluated at the current
(less noisy) point and the target timestep t, exactly as diffusers' `DDIMInverseScheduler`
(clip_sample=False, set_alpha_to_one=False).

Time is indexed in ascending order everywhere: `timesteps[0] = t_N` (least noise) ...
`timesteps[-1] = t_1` (x_T). Below `timesteps[0]` lies the clean sample, with a = a_final.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.utils.checkpoint

from .adapters import ModelAdapter

__all__ = ["Schedule", "Trajectory", "make_schedule", "step_coefficients", "ddim_loop", "invert", "generate",
           "reconstruction_psnr"]


@dataclass(frozen=True)
class Schedule:
    """The DDIM time grid: `timesteps` (N,) ascending ints, `alphas` (N,) = a_t at them, `alpha_final`."""

    timesteps: torch.Tensor
    alphas: torch.Tensor
    alpha_final: float

    def __len__(self) -> int:
        return len(self.timesteps)

    def alpha_below(self, i: int) -> float:
        """a of the state below index i (index i-1, or the clean sample for i = 0)."""
        return float(self.alphas[i - 1]) if i > 0 else self.alpha_final


def make_schedule(adapter: ModelAdapter, steps: int = 50) -> Schedule:
    """DDIM 'leading' spacing as diffusers: t = k * (T // steps) + steps_offset, k = 0..steps-1."""
    T = adapter.num_train_timesteps
    from .validate import check_steps

    check_steps(steps, num_train_timesteps=T)
    ts = torch.arange(steps, dtype=torch.long) * (T // steps) + adapter.steps_offset
    ts = ts.clamp(max=T - 1)
    abar = adapter.alphas_cumprod
    return Schedule(ts, abar[ts], float(abar[0]))


def step_coefficients(a_t: float, a_s: float) -> tuple[float, float]:
    """(A_t, B_t) of the generation step t -> s: x_s = A_t x_t + B_t eps."""
    A = (a_s / a_t) ** 0.5
    B = (1 - a_s) ** 0.5 - (a_s * (1 - a_t) / a_t) ** 0.5
    return A, B


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


def ddim_loop(adapter: ModelAdapter, x: torch.Tensor, schedule: Schedule, *, direction: str,
              start: int | None = None, stop: int | None = None, callback: StepCallback | None = None,
              differentiable: bool = False, checkpoint: bool = False) -> torch.Tensor:
    """Run DDIM on a batch x (B, C, H, W) between grid indices.

    direction="generate": from index `start` (default N-1, i.e. x_T) down to index `stop`
    (default -1, the clean sample); direction="invert": from `start` (default -1, clean) up to
    `stop` (default N-1). `callback(dict(i, t, x, eps))` after every step, `x` the new state at
    grid index i. With `differentiable`, gradients flow (optionally checkpointed per step).
    """
    N = len(schedule)
    a = [float(v) for v in schedule.alphas]
    if direction == "generate":
        start, stop = (N - 1 if start is None else start), (-1 if stop is None else stop)
        pairs = [(i, i - 1) for i in range(start, stop, -1)]
    elif direction == "invert":
        start, stop = (-1 if start is None else start), (N - 1 if stop is None else stop)
        pairs = [(i, i + 1) for i in range(start, stop)]
    else:
        raise ValueError(f"direction must be 'generate' or 'invert', got {direction!r}")

    def alpha(i: int) -> float:
        return a[i] if i >= 0 else schedule.alpha_final

    ctx = torch.enable_grad() if differentiable else torch.no_grad()
    with ctx:
        for src, dst in pairs:
            # generation evaluates eps at the source; inversion at the source point with the target's t
            t_eval = int(schedule.timesteps[src if direction == "generate" else dst])
            a_from, a_to = alpha(src), alpha(dst)
            A, B = (step_coefficients(a_from, a_to) if direction == "generate"
                    else _inverse_coefficients(a_from, a_to))

            def one_step(xx: torch.Tensor, t_eval=t_eval, A=A, B=B):
                e = adapter.eps(xx, t_eval)
                return A * xx + B * e, e

            if differentiable and checkpoint:
                x, e = torch.utils.checkpoint.checkpoint(one_step, x, use_reentrant=False)
            else:
                x, e = one_step(x)
            if callback is not None:
                callback({"i": dst, "t": int(schedule.timesteps[dst]) if dst >= 0 else -1, "x": x, "eps": e})
    return x


def _inverse_coefficients(a_s: float, a_t: float) -> tuple[float, float]:
    """(A, B) of the inversion step s -> t: x_t = sqrt(a_t) x0_hat(x_s) + sqrt(1 - a_t) eps."""
    A = (a_t / a_s) ** 0.5
    B = (1 - a_t) ** 0.5 - (a_t * (1 - a_s) / a_s) ** 0.5
    return A, B


def invert(adapter: ModelAdapter, x0: torch.Tensor, schedule: Schedule, *,
           callback: StepCallback | None = None) -> Trajectory:
    """DDIM inversion of one model-space sample x0 (C, H, W) -> its whole trajectory."""
    states: list[torch.Tensor] = []

    def keep(info: dict) -> None:
        states.append(info["x"][0].detach())
        if callback is not None:
            callback(info)

    ddim_loop(adapter, x0[None].to(adapter.device, adapter.dtype), schedule, direction="invert", callback=keep)
    return Trajectory(schedule, torch.stack(states), x0.detach().to(adapter.device, adapter.dtype))


def generate(adapter: ModelAdapter, x_T: torch.Tensor, schedule: Schedule, *,
             callback: StepCallback | None = None) -> torch.Tensor:
    """DDIM generation of a batch x_T (B, C, H, W) to clean samples (B, C, H, W)."""
    return ddim_loop(adapter, x_T.to(adapter.device, adapter.dtype), schedule, direction="generate",
                     callback=callback)


def reconstruction_psnr(images: torch.Tensor, reconstructions: torch.Tensor) -> torch.Tensor:
    """PSNR in dB per image between (B, 3, H, W) tensors in [-1, 1] (peak-to-peak 2)."""
    mse = (images.float() - reconstructions.float()).pow(2).flatten(1).mean(1)
    return 10 * torch.log10(4.0 / mse.clamp_min(1e-12))
