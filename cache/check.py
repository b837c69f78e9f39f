"""Verify a cube store's bytes and meaning and, on request, repair everything found.

`check_store(store)` returns a `StoreReport` of `Damage`s, one per problem, of four kinds:

- `group`: the group's own metadata (zarr.json) is unreadable;
- `meta`: an array's metadata differs from the schema (names, dtypes, shapes, dimension names),
  a shared array (`timestep`, `alpha`) is unreadable or differs from the schedule the group
  recorded, a slot's attributes are not a key, a plain file name and a positive size
  (cache.meaning);
- `flag`: a done flag neither 0 nor 1;
- `slot`: a chunk of a done slot is missing, fails its checksum, is not the content recorded for its
  cube's key (copied from another cube, or changed after it was written), or holds values no cube
  can hold (NaN/inf/negative rates, infinite standard errors) (cache.integrity.verify_slot).

`repair(store, report)` heals each: `meta` damage is rewritten from the layout the group recorded
(its schedule and shapes: a fresh group's metadata made by `slots.create_group` from that record;
the shared arrays are values of the schedule, nothing else is lost); a group that records no
layout, has damaged slot attributes or unreadable metadata is renamed aside
(`<gid>.zarr.damaged`, never deleted) and rebuilt by the next `workbench cubes` from its images;
damaged slots and garbage flags get their done flag cleared, so the next `workbench cubes` over the
same images recomputes exactly those cubes.
"""
from __future__ import annotations

import json
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from workbench.errors import WorkbenchError
from workbench.progress import ProgressFn, emit

from . import compact, integrity, meaning, schema, slots

__all__ = ["Damage", "StoreReport", "check_store", "check_group", "repair", "DAMAGED_SUFFIX"]

DAMAGED_SUFFIX = ".damaged"
_NOT_LAYOUT = ("slots", "format", "schema_version", meaning.LAYOUT_ATTR, integrity.DIGEST_ATTR, compact.COMPACTED_ATTR,
               "consolidated_metadata")


@dataclass(frozen=True)
class Damage:
    """One problem: `kind` group | meta | flag | slot; `slot` None for the whole group."""

    group: str
    slot: int | None
    key: str
    name: str
    reason: str
    kind: str = "slot"

    def line(self) -> str:
        where = f"{self.group}[{self.slot}]" if self.slot is not None else self.group
        return f"DAMAGED {self.name or '?'} {self.key or '-'} ({where}): {self.reason}"


@dataclass
class StoreReport:
    """What `check_store` found: `checked` cubes, `damaged` ones, `unprotected` group ids (no
    checksums), `unbound` ones (no content records), the number of `groups`."""

    checked: int = 0
    damaged: list[Damage] = field(default_factory=list)
    unprotected: list[str] = field(default_factory=list)
    unbound: list[str] = field(default_factory=list)
    groups: int = 0

    @property
    def ok(self) -> bool:
        return not self.damaged


def _slot_ids(attrs: dict, i: int) -> tuple[str, str]:
    slot = attrs["slots"][i] if isinstance(attrs["slots"][i], dict) else {}
    return str(slot.get("key", "")), str(slot.get("name", ""))


def check_group(path: Path, report: StoreReport, *, pool: ThreadPoolExecutor | None = None) -> None:
    """Check one group folder into `report` (see the module doc); `pool` verifies its slots in parallel."""
    gid = path.name[: -len(".zarr")]
    try:
        attrs = slots.read_attrs(path)
        done = slots.read_done(path)
    except WorkbenchError as exc:
        what = str(exc).split(":")[0].replace(str(path), "the group")
        report.damaged.append(Damage(gid, None, "", "", f"{what} (all its cubes)", "group"))
        return
    problems = meaning.group_problems(path, attrs)
    for p in problems:
        report.damaged.append(Damage(gid, None, "", "", f"{p.line()} (all its cubes)", "meta"))
    if not integrity.is_protected(path):
        report.unprotected.append(gid)
    if attrs.get(integrity.DIGEST_ATTR) != "sha256":
        report.unbound.append(gid)
    for i, reason in meaning.flag_problems(path, len(attrs["slots"])):
        key, name = _slot_ids(attrs, i)
        report.damaged.append(Damage(gid, i, key, name, reason, "flag"))
    if problems:  # the slots are read once the group's own metadata is sound again (after --repair)
        report.checked += int(done.sum())
        return
    todo = [i for i in range(len(attrs["slots"])) if done[i]]
    report.checked += len(todo)
    verifier = integrity.SlotVerifier(path)
    for i, reason in zip(todo, (pool.map if pool is not None else map)(lambda i: _slot_damage(verifier, i), todo)):
        if reason is not None:
            key, name = _slot_ids(attrs, i)
            report.damaged.append(Damage(gid, i, key, name, "chunk " + reason))


def _slot_damage(verifier: integrity.SlotVerifier, i: int) -> str | None:
    """What is wrong with slot `i`'s chunks (None: nothing): every chunk read once and verified."""
    try:
        verifier.verify(i)
    except integrity.DamagedChunk as exc:
        return str(exc).split(": run `workbench check")[0].split(": chunk ", 1)[-1]
    return None


def check_store(store, *, progress: ProgressFn | None = None) -> StoreReport:
    """Read and verify every group of `store` (a CubeStore): metadata, shared arrays, flags and
    every chunk of every done slot; see the module doc. `progress`: a `Progress` of phase "check"
    (groups checked of all) after each group."""
    report = StoreReport()
    paths = sorted(p for p in store.groups_dir.glob("*.zarr") if p.is_dir())
    report.groups = len(paths)
    # the reads release the GIL (pread, Blosc, SHA-256, NumPy): a thread per core
    with ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1))) as pool:
        for n, path in enumerate(paths):
            check_group(path, report, pool=pool)
            emit(progress, "check", n + 1, len(paths))
    return report


def _set_aside(path: Path) -> None:
    aside = path.with_name(path.name + DAMAGED_SUFFIX)
    n = 1
    while aside.exists():
        aside, n = path.with_name(f"{path.name}{DAMAGED_SUFFIX}-{n}"), n + 1
    path.rename(aside)


def _rewrite_from_layout(path: Path, bad: set[str]) -> bool:
    """Rewrite the metadata of the arrays `bad` (and the shared arrays' values) of a group from the
    layout it recorded; False when it records none."""
    attrs = slots.read_attrs(path)
    lay = attrs.get(meaning.LAYOUT_ATTR)
    if not isinstance(lay, dict):
        return False
    try:
        spec = slots.GroupSpec(shape=tuple(lay["shape"]), image_shape=tuple(lay["image_shape"]),
                               timesteps=lay["timesteps"], alphas=lay["alphas"],
                               attrs={k: v for k, v in attrs.items() if k not in _NOT_LAYOUT},
                               slots=list(attrs["slots"]), chunks=tuple(lay["chunks"]),
                               stat_channels=int(lay["stat_channels"]))
    except (KeyError, TypeError, ValueError):
        return False
    template = path.with_name(f"{path.name}.template-{os.getpid()}")
    shutil.rmtree(template, ignore_errors=True)
    try:
        slots.create_group(template, spec)
        for var in sorted(bad - {"zarr.json", "slots"}):
            if not (template / var / "zarr.json").is_file():
                continue
            if var in (schema.COORD_T, schema.VAR_ALPHA):  # values of the schedule: rewritten whole
                shutil.rmtree(path / var, ignore_errors=True)
                shutil.copytree(template / var, path / var)
            else:  # per-slot data stays; damaged slots are found by the check that follows
                (path / var).mkdir(exist_ok=True)
                tmp = path / var / f"zarr.json.partial-{os.getpid()}"
                meta = json.loads((template / var / "zarr.json").read_text())
                if attrs.get(compact.COMPACTED_ATTR):  # the metadata of the compacted layout (cache.compact)
                    meta = compact.compacted_meta(var, meta, len(spec.slots))
                tmp.write_text(json.dumps(meta, indent=2))
                os.replace(tmp, path / var / "zarr.json")
        root = json.loads((path / "zarr.json").read_text())
        if "consolidated_metadata" in root and hasattr(slots, "consolidate"):
            slots.consolidate(path)
    finally:
        shutil.rmtree(template, ignore_errors=True)
    return True


def _clear(path: Path, bad: set[int]) -> None:
    """Make the slots `bad` absent: clear their done flags, or, in a compacted group (whose flags share
    one chunk), rewrite it one file per chunk without them (cache.compact.expand_group)."""
    if not bad:
        return
    if compact.is_compacted(path):
        compact.expand_group(path, drop=bad)
        return
    for i in sorted(bad):
        slots.clear_done(path, i)


def repair(store, report: StoreReport) -> list[Damage]:
    """Heal every damage of `report` (see the module doc) under each group's writer lock; returns
    what was repaired. The next `workbench cubes` over the same images recomputes what was cleared."""
    fixed = []
    by_group: dict[str, list[Damage]] = {}
    for d in report.damaged:
        by_group.setdefault(d.group, []).append(d)
    for gid, damages in by_group.items():
        path = store.group_path(gid)
        if not path.is_dir():
            continue
        kinds = {d.kind for d in damages}
        with slots.group_lock(path):
            if "group" in kinds:
                aside = True
            elif "meta" in kinds:
                bad = {d.reason.split(":", 1)[0] for d in damages if d.kind == "meta"}
                aside = "slots" in bad or not _rewrite_from_layout(path, bad)
            else:
                aside = False
            if not aside:
                _clear(path, {d.slot for d in damages if d.kind in ("flag", "slot")})
                if "meta" in kinds:  # the metadata is sound again: now its slots can be read
                    again = StoreReport()
                    check_group(path, again)
                    _clear(path, {d.slot for d in again.damaged if d.kind in ("flag", "slot")})
                    aside = any(d.kind not in ("flag", "slot") for d in again.damaged)
        if aside:
            _set_aside(path)
        fixed += damages
    store.refresh()
    return fixed
