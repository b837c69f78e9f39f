"""What determines a cube besides the image and the model (`CubeParams`), and how a fluctuation
map is read from one (`FluctuationParams`)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from workbench.ddim import INVERSION_FIXED_POINT, make_schedule
from workbench.errors import WorkbenchError
from workbench.estimators import DEFAULT_K, ESTIMATORS, has_probe_stats
from workbench.validate import check_channel, check_K, check_fixed_point, check_seed, check_steps, check_t_b, check_window

__all__ = ["CubeParams", "FluctuationParams"]

_DEFINITIONS = ("step", "eps", "h", "projected")
#: the fields every key hashes (a cube's identity before `rank` and `k` were fields of their own)
_KEYED = ("definition", "estimator", "K", "seed", "steps", "channel")


@dataclass(frozen=True)
class CubeParams:
    """A cube's parameters: rate `definition` (workbench.rates), `estimator`, `K` (the estimator's
    size: Hutchinson probes; for `rsvd` the rank), probe `seed`, DDIM `steps`, the pixel `channel`
    rule (None = mean over the model's channels), `rank` (the basis of `rsvd+hutchinson`; None = K // 2),
    `k` (the tangent dimension of the `projected` rate; None = K) and `fixed_point`, the fixed-point
    iterations refining each DDIM inversion step (`workbench.ddim`; 0 = plain inversion).

    `rank` and `k` equal to their defaults are stored as None, so that parameters that compute the
    same cube have one key, the key of cubes written before these fields existed. `fixed_point` = 0 is left
    out of the key for the same reason (cubes written before it existed were inverted plainly); its
    default, `workbench.ddim.INVERSION_FIXED_POINT`, is not 0, so a default cube has a key of its own."""

    definition: str = "h"
    estimator: str = "hutchinson"
    K: int = DEFAULT_K
    seed: int = 0
    steps: int = 50
    channel: int | None = None
    rank: int | None = None
    k: int | None = None
    fixed_point: int = INVERSION_FIXED_POINT

    def __post_init__(self):
        if self.definition not in _DEFINITIONS:
            raise WorkbenchError(f"unknown rate definition {self.definition!r}: choose one of "
                                 f"{', '.join(_DEFINITIONS)}")
        if self.estimator not in ESTIMATORS:
            raise WorkbenchError(f"unknown estimator {self.estimator!r}: choose one of {', '.join(ESTIMATORS)}")
        check_K(self.K)
        check_steps(self.steps)
        check_seed(self.seed)
        check_channel(self.channel)
        object.__setattr__(self, "fixed_point", check_fixed_point(self.fixed_point))
        for name in ("rank", "k"):
            if getattr(self, name) is not None:
                check_K(getattr(self, name))
        if self.rank is not None:
            if self.estimator != "rsvd+hutchinson":
                raise WorkbenchError(f"rank is the basis of rsvd+hutchinson, not of estimator {self.estimator}: "
                                     "drop it (rsvd's rank is K)")
            if self.rank == max(1, self.K // 2):
                object.__setattr__(self, "rank", None)
        if self.k is not None:
            if self.definition != "projected":
                raise WorkbenchError(f"k is the projected rate's tangent dimension, not a parameter of rate "
                                     f"{self.definition}: drop it")
            if self.k == self.K:
                object.__setattr__(self, "k", None)

    @property
    def svd_rank(self) -> int:
        """The rSVD basis size: K for `rsvd`, `rank` (default K // 2) for `rsvd+hutchinson`."""
        return self.K if self.estimator == "rsvd" else (self.rank or max(1, self.K // 2))

    @property
    def tangent_k(self) -> int:
        """The projected rate's tangent dimension (`k`, default K)."""
        return self.k or self.K

    @property
    def refinable(self) -> bool:
        """True when these cubes carry Hutchinson probe statistics (SEs, exact refinement, probe blocks)."""
        return has_probe_stats(self.estimator, self.definition)

    @property
    def channel_rule(self) -> str:
        """'mean' or 'channel N' (the attribute string)."""
        return "mean" if self.channel is None else f"channel {self.channel}"

    def as_dict(self) -> dict[str, Any]:
        """The fields as a plain dict (what the content key hashes); `rank` and `k` only when set,
        `fixed_point` only when not 0."""
        out = {f: getattr(self, f) for f in _KEYED}
        out.update({f: getattr(self, f) for f in ("rank", "k") if getattr(self, f) is not None})
        return out if self.fixed_point == 0 else {**out, "fixed_point": self.fixed_point}

    def as_attrs(self) -> dict[str, Any]:
        """The cube attributes these parameters set (cache.schema.PARAM_ATTRS; `rank` only when set)."""
        out = {"rate_definition": self.definition, "estimator": self.estimator, "K": self.K, "k": self.tangent_k,
               "seed": self.seed, "steps": self.steps, "channel_rule": self.channel_rule,
               "inversion_fixed_point": self.fixed_point}
        return out if self.rank is None else {**out, "rank": self.rank}

    @classmethod
    def from_attrs(cls, attrs: Mapping[str, Any]) -> "CubeParams":
        """Inverse of `as_attrs` (reads a cube's attributes, also those written before `rank`/`k` were
        fields: there `k` repeats K, and those written before `inversion_fixed_point`: inverted plainly, 0)."""
        rule = str(attrs.get("channel_rule", "mean"))
        channel = None if rule == "mean" else int(rule.split()[-1])
        definition = str(attrs["rate_definition"])
        k = attrs.get("k")
        return cls(definition=definition, estimator=str(attrs["estimator"]), K=int(attrs["K"]),
                   seed=int(attrs["seed"]), steps=int(attrs["steps"]), channel=channel,
                   rank=None if attrs.get("rank") is None else int(attrs["rank"]),
                   k=int(k) if k is not None and definition == "projected" else None,
                   fixed_point=int(attrs.get("inversion_fixed_point", 0)))


@dataclass(frozen=True)
class FluctuationParams:
    """How a fluctuation map is read from a cube (`workbench.fluctuation.fluctuation`): window `L`
    (samples, >= 2), cut `t_b` (only timesteps above it) and whether curves are `normalise`d to sum 1.
    The defaults are those of `analysis.fluctuation` (DEFAULT_WINDOW, DEFAULT_T_B, DEFAULT_NORMALISE).
    The form of each value is checked here; `check_schedule` checks them against a model's schedule."""

    window: int = 3
    t_b: float = 0.0
    normalise: bool = True

    def __post_init__(self):
        object.__setattr__(self, "window", check_window(self.window))
        object.__setattr__(self, "t_b", check_t_b(self.t_b))

    def check_schedule(self, adapter, steps: int) -> None:
        """Raise WorkbenchError unless t_b is below the model's training timesteps and the window fits in
        the timesteps of a `steps`-step DDIM schedule above t_b."""
        check_t_b(self.t_b, num_train_timesteps=adapter.num_train_timesteps)
        check_window(self.window, n_kept=int((make_schedule(adapter, steps).timesteps > self.t_b).sum()))
