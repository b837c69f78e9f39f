"""One progress event: every long loop of the workbench reports through `ProgressFn = Callable[[Progress], None]`.

A `Progress` says which `phase` of the work it is about and how far it got (`done` of `total`,
`total` None where the end is not known in advance), plus the few fields some phases carry. The
phases the library emits:

| phase | done / total | from |
|---|---|---|
| `timesteps` | timesteps (or probe-batch passes) of one estimate | `workbench.estimators`, `workbench.curves` |
| `pixels` | pixels whose curves are done | `workbench.curves.pixel_curves` |
| `cube` | the work of the cube being computed (probe x timestep pairs for Hutchinson) | `cache.build` |
| `block` | probes run so far / the rule's last size; `K`, `stability` (`name` from `until_stable`) | `cache.build.compute_cube`, `cache.store.CubeStore.until_stable` |
| `batch` | probes so far / the cube's K; `K`, `stability`, `result` (a `cache.anytime.CubeBatch`) | the dashboard's live cube |
| `images` | images of a batch (complete ones included) | `cache.batch`, `analysis.cubes` |
| `check` | store groups checked | `cache.check.check_store` |
| `export` | cubes exported (total None); `name` | `analysis.export` |
| `invert` | inversion steps | `workbench.pipeline.prepare_image` |
| `invert`, `curves`, `optimise`, `evaluate` | iterations of an edit; `loss`, `best_loss`, `seconds`, `t` | `workbench.editing` |
| `train`, `checkpoint` (a step that saved one) | training steps of max_steps; `loss`, `seconds` | `workbench.train` |
| `metrics`, `tune`, experiment stages | items of the stage | `analysis`, the Saliency view's scoring |

A consumer that draws one bar per phase (the command line) or copies the latest event into a widget
(the dashboards) reads only these fields; a callback that raises stops the work (the dashboards'
cancellation), so a producer calls it where stopping is safe.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable

__all__ = ["Progress", "ProgressFn", "emit", "relabel", "by_phase"]


@dataclass(frozen=True)
class Progress:
    """How far one phase of a long computation got: `done` of `total` (None: unknown in advance).

    Optional fields, set by the phases that have them: `name` (the image or item), `K` (probes so
    far) and `stability` (split-half stability of its fluctuation map, NaN while unknown), `loss`,
    `best_loss` (an edit's iteration loss and its best moving average), `seconds` (time spent in the
    phase so far), `t` (the timestep an edit iteration sampled), `result` (what the step produced, for
    a view that shows it live: the Explore view's `cache.anytime.CubeBatch`)."""

    phase: str
    done: int
    total: int | None = None
    name: str | None = None
    K: int | None = None
    stability: float | None = None
    loss: float | None = None
    best_loss: float | None = None
    seconds: float | None = None
    t: int | None = None
    result: Any = field(default=None, compare=False, repr=False)

    @property
    def fraction(self) -> float | None:
        """done / total in [0, 1], None when the total is unknown or zero."""
        if not self.total:
            return None
        return min(1.0, max(0.0, self.done / self.total))


ProgressFn = Callable[[Progress], None]


def emit(progress: ProgressFn | None, phase: str, done: int, total: int | None = None, **fields) -> None:
    """Call `progress` (when given) with `Progress(phase, done, total, **fields)`."""
    if progress is not None:
        progress(Progress(phase, int(done), None if total is None else int(total), **fields))


def relabel(progress: ProgressFn | None, phase: str, **fields) -> ProgressFn | None:
    """A callback that passes events on to `progress` under `phase` (and `fields`), None when
    `progress` is None: an inner loop's events renamed for its caller's consumers."""
    if progress is None:
        return None
    return lambda p: progress(dataclasses.replace(p, phase=phase, **fields))


def by_phase(**consumers: ProgressFn | None) -> ProgressFn:
    """One callback that hands each event to the consumer named by its phase (a phase with a hyphen:
    pass it as `**{"a-phase": fn}`) and ignores the others."""
    def dispatch(p: Progress) -> None:
        fn = consumers.get(p.phase)
        if fn is not None:
            fn(p)

    return dispatch
