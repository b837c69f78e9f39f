"""What determines a cube besides the image and the model: the rate and its estimator."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Mapping

from workbench.errors import WorkbenchError
from workbench.estimators import DEFAULT_K, ESTIMATORS
from workbench.validate import check_channel, check_K, check_seed, check_steps

__all__ = ["CubeParams"]

_DEFINITIONS = ("step", "eps", "h", "projected")


@dataclass(frozen=True)
class CubeParams:
    """A cube's parameters: rate `definition` (workbench.rates), `estimator`, `K` (Hutchinson probes
    or rSVD rank; also the tangent dimension of `projected`), probe `seed`, DDIM `steps`, and the
    pixel `channel` rule (None = mean over the model's channels)."""

    definition: str = "h"
    estimator: str = "hutchinson"
    K: int = DEFAULT_K
    seed: int = 0
    steps: int = 50
    channel: int | None = None

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

    @property
    def channel_rule(self) -> str:
        """'mean' or 'channel N' (the attribute string)."""
        return "mean" if self.channel is None else f"channel {self.channel}"

    def as_dict(self) -> dict[str, Any]:
        """The fields as a plain dict (what the content key hashes)."""
        return asdict(self)

    def as_attrs(self) -> dict[str, Any]:
        """The cube attributes these parameters set (cache.schema.PARAM_ATTRS)."""
        return {"rate_definition": self.definition, "estimator": self.estimator, "K": self.K, "k": self.K,
                "seed": self.seed, "steps": self.steps, "channel_rule": self.channel_rule}

    @classmethod
    def from_attrs(cls, attrs: Mapping[str, Any]) -> "CubeParams":
        """Inverse of `as_attrs` (reads a cube's attributes)."""
        rule = str(attrs.get("channel_rule", "mean"))
        channel = None if rule == "mean" else int(rule.split()[-1])
        return cls(definition=str(attrs["rate_definition"]), estimator=str(attrs["estimator"]), K=int(attrs["K"]),
                   seed=int(attrs["seed"]), steps=int(attrs["steps"]), channel=channel)
