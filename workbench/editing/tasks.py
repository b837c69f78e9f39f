"""The four tasks as losses on one curve-matching loop (DESIGN.md section 3).

A `TaskLoss` turns the sampled rates r (P,) of (pixel, channel) pairs at grid index i into a
scalar: `match` |r - r_ref[c, i]| (transfer; removal with a reference pixel), `minimise`
lambda * r (removal's pseudo-curve; blending), `saliency` s * lambda * r. Saliency and blending
add a feature-alignment term on the U-Net's mid and up-block features (`feature_alignment`).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .config import EditConfig

__all__ = ["TaskLoss", "task_loss", "feature_alignment", "uses_features", "needs_reference"]


def needs_reference(config: EditConfig, has_ref: bool) -> bool:
    """Whether the task matches a reference pixel's curve (transfer always; removal when one is given)."""
    return config.task == "transfer" or (config.task == "removal" and has_ref)


def uses_features(config: EditConfig) -> bool:
    """Whether the feature-alignment term is on (saliency and blending with feature_weight > 0)."""
    return config.task in ("saliency", "blending") and config.feature_weight > 0


@dataclass(frozen=True)
class TaskLoss:
    """mode: 'match' | 'minimise' | 'saliency'; weight: lambda; direction: s (saliency)."""

    mode: str
    weight: float = 1.0
    direction: int = 1

    def __call__(self, rates: torch.Tensor, reference: torch.Tensor | None = None) -> torch.Tensor:
        """rates (P,) at one timestep; reference (P,) the reference rates of the same channels ('match')."""
        if self.mode == "match":
            return (rates - reference.to(rates)).abs().mean()
        if self.mode == "minimise":
            return self.weight * rates.mean()
        return self.direction * self.weight * rates.mean()


def task_loss(config: EditConfig, has_ref: bool) -> TaskLoss:
    """The rate term of a task."""
    if needs_reference(config, has_ref):
        return TaskLoss("match")
    if config.task == "saliency":
        return TaskLoss("saliency", config.rate_weight, config.direction)
    return TaskLoss("minimise", config.rate_weight)


def feature_alignment(features: list[torch.Tensor], original: list[torch.Tensor]) -> torch.Tensor:
    """Mean over layers of ||f - f0||^2 / ||f0||^2 (relative squared distance of each feature map)."""
    terms = [(f - f0).pow(2).sum() / f0.pow(2).sum().clamp_min(1e-12) for f, f0 in zip(features, original)]
    return torch.stack(terms).mean()
