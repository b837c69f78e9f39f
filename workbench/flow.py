"""Flow matching (rectified flow) noise levels, as diffusers' `FlowMatchEulerDiscreteScheduler`.

A state is x_t = (1 - sigma_t) x0 + sigma_t eps and the network predicts the velocity
v = dx/dsigma = eps - x0. Generation integrates dx = v dsigma from sigma = 1 to 0; the Euler step
sigma_t -> sigma_s is x_s = x_t + (sigma_s - sigma_t) v(x_t, t), and inversion runs the same ODE
backwards (sigma_s -> sigma_t with v evaluated at x_s and t). In the engine's contract
(signal alpha_t = 1 - sigma_t, noise sigma_t, eps = x_t + alpha_t v) the DDIM step *is* this Euler
step (workbench.ddim), so flow models share the one loop, the rate definitions and the estimators.

Integer timesteps t = 0 .. T-1 index the scheduler's training table: unshifted sigma = (t + 1) / T,
shifted sigma = shift sigma / (1 + (shift - 1) sigma); the network is called with sigma * T.
"""
from __future__ import annotations

import torch

from .errors import WorkbenchError

__all__ = ["FLOW_SCHEDULERS", "is_flow_config", "flow_sigmas", "unshifted_sigmas"]

FLOW_SCHEDULERS = ("FlowMatchEulerDiscreteScheduler",)


def is_flow_config(config: dict) -> bool:
    """Whether a scheduler config describes a flow-matching (velocity) model."""
    return str(config.get("_class_name", "")) in FLOW_SCHEDULERS


def unshifted_sigmas(num_train_timesteps: int) -> torch.Tensor:
    """(T,) float64: sigma = (t + 1) / T for t = 0 .. T-1, before the shift."""
    return torch.arange(1, num_train_timesteps + 1, dtype=torch.float64) / num_train_timesteps


def flow_sigmas(config: dict) -> torch.Tensor:
    """(T,) float64 noise level sigma_t of each integer timestep of a flow-matching scheduler config."""
    if config.get("use_dynamic_shifting"):
        raise WorkbenchError("this flow-matching scheduler uses resolution-dependent (dynamic) shifting, which the "
                             "workbench does not support: set use_dynamic_shifting=false and a fixed shift")
    for key in ("use_karras_sigmas", "use_exponential_sigmas", "use_beta_sigmas", "invert_sigmas", "shift_terminal"):
        if config.get(key):
            raise WorkbenchError(f"flow-matching scheduler option {key} is not supported: remove it from "
                                 "scheduler_config.json")
    shift = float(config.get("shift", 1.0))
    s = unshifted_sigmas(int(config.get("num_train_timesteps", 1000)))
    return shift * s / (1 + (shift - 1) * s)
