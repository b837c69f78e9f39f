"""Verify every done slot of a cube store and, on request, unset the done flags of the damaged ones.

`check_store(store)` reads every chunk of every complete cube (cache.integrity.verify_slot) and
returns a `StoreReport`: the damaged cubes (one `Damage` each), the groups whose own metadata is
unreadable, and the groups without checksums (schema version 1: truncated, zeroed and missing
chunks are still found, flipped bits inside a chunk are not). `repair(store, report)` clears the
done flags of the damaged slots, so that the next `workbench cubes` over the same images
recomputes exactly those cubes; a group whose metadata is unreadable is renamed aside
(`<gid>.zarr.damaged`), never deleted, and its cubes are recomputed the same way.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from workbench.errors import WorkbenchError

from . import integrity, slots

__all__ = ["Damage", "StoreReport", "check_store", "repair"]

DAMAGED_SUFFIX = ".damaged"


@dataclass(frozen=True)
class Damage:
    """One damaged cube (`slot` None: the whole group is unreadable)."""

    group: str
    slot: int | None
    key: str
    name: str
    reason: str

    def line(self) -> str:
        where = f"{self.group}[{self.slot}]" if self.slot is not None else self.group
        return f"DAMAGED {self.name or '?'} {self.key or '-'} ({where}): {self.reason}"


@dataclass
class StoreReport:
    """What `check_store` found: `checked` cubes, `damaged` ones, `unprotected` group ids."""

    checked: int = 0
    damaged: list[Damage] = field(default_factory=list)
    unprotected: list[str] = field(default_factory=list)
    groups: int = 0

    @property
    def ok(self) -> bool:
        return not self.damaged


def check_store(store, *, progress: Callable[[int, int], None] | None = None) -> StoreReport:
    """Read and verify every chunk of every done slot of `store` (a CubeStore); see the module doc."""
    report = StoreReport()
    paths = sorted(p for p in store.groups_dir.glob("*.zarr") if p.is_dir())
    report.groups = len(paths)
    for n, path in enumerate(paths):
        gid = path.name[: -len(".zarr")]
        try:
            attrs = slots.read_attrs(path)
            done = slots.read_done(path)
        except WorkbenchError as exc:
            what = str(exc).split(":")[0].replace(str(path), "the group")
            report.damaged.append(Damage(gid, None, "", "", f"{what} (all its cubes)"))
            continue
        if not integrity.is_protected(path):
            report.unprotected.append(gid)
        for i, slot in enumerate(attrs["slots"]):
            if not done[i]:
                continue
            report.checked += 1
            try:
                integrity.verify_slot(path, i)
            except integrity.DamagedChunk as exc:
                reason = str(exc).split(": run `workbench check")[0].split(": chunk ", 1)[-1]
                report.damaged.append(Damage(gid, i, str(slot.get("key", "")), str(slot.get("name", "")),
                                             "chunk " + reason))
        if progress:
            progress(n + 1, len(paths))
    return report


def repair(store, report: StoreReport) -> list[Damage]:
    """Clear the done flags of `report`'s damaged slots (and rename unreadable groups aside) under each
    group's writer lock; returns what was repaired. The next batch over those images recomputes them."""
    fixed = []
    for d in report.damaged:
        path = store.group_path(d.group)
        if d.slot is None:
            aside = path.with_name(path.name + DAMAGED_SUFFIX)
            n = 1
            while aside.exists():
                aside, n = path.with_name(f"{path.name}{DAMAGED_SUFFIX}-{n}"), n + 1
            path.rename(aside)
        else:
            with slots.group_lock(path):
                slots.clear_done(path, d.slot)
        fixed.append(d)
    store.refresh()
    return fixed

