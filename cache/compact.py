"""Compaction: a finished group rewritten as one Zarr v3 shard per array, renamed into place.

A group is written one file per chunk (cache.slots): a slot's chunks belong to it alone, so
writers never share a file and a killed writer damages nothing done. That costs about 5 files per
cube (a chunk of rate, rate_se and image, the done flag, the content record). Once every slot of a
group is done nothing is written to it any more, and `compact_group` rewrites it:

- every slotted array (rate, rate_se, image, the probe statistics) becomes one shard file
  (`rate/c/0/0/0/0`, codec `sharding_indexed`, index at the end with its CRC32C) holding the very
  chunk bytes the slots wrote, in slot order: the inner chunks, their checksums and their content
  records are unchanged, and plain zarr reads the group as before;
- the done flags become one chunk of n bytes (+ CRC32C), all 1; the content records one file
  (`done/digests.json`); labels and shared arrays are copied as they are;
- the group attribute `compacted` records it.

Every chunk is verified (checksum and content record) while it is copied; a group with any damage,
an unset flag, or metadata that does not mean what the schema says is left as it is (`workbench
check` reports it). The copy is written under `<gid>.zarr.partial-<host>-<pid>` (swept like any
dead writer's leftover), fsynced, and exchanged with the group in one `renameat2(RENAME_EXCHANGE)`
(Linux), so readers see the old or the new group, never neither; the old one is then deleted. A
crash before the exchange leaves the group as it was. Where the exchange is unavailable, two renames
with the old group kept under `<gid>.zarr.precompact-...` until the new one is in place (a crash
between them is undone by `cache.slots.sweep_partials`).

`expand_group` is the inverse (one file per chunk again, optionally without some slots): what
`workbench check --repair` does to a compacted group with damaged slots, and what a batch does
before it writes a slot into a compacted group.
"""
from __future__ import annotations

import ctypes
import json
import os
import shutil
import socket
from pathlib import Path

import numpy as np

from workbench.errors import WorkbenchError

from . import chunks, integrity, meaning, schema, slots

__all__ = ["COMPACTED_ATTR", "COMPACT_MIN_SLOTS", "is_compacted", "compact_group", "expand_group",
           "sharded_meta", "compacted_meta", "compactable"]

#: group attribute set on compacted groups
COMPACTED_ATTR = "compacted"
#: groups with fewer slots stay one file per chunk: their metadata (about 25 files) outweighs the saving
COMPACT_MIN_SLOTS = 32
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def is_compacted(path: Path) -> bool:
    """True when the group at `path` is compacted (its attribute `compacted`)."""
    try:
        return bool(json.loads((Path(path) / "zarr.json").read_text()).get("attributes", {}).get(COMPACTED_ATTR))
    except (OSError, ValueError, AttributeError):
        return False


def sharded_meta(meta: dict, n: int) -> dict:
    """An unsharded slotted array's zarr.json -> the compacted one: one shard of `n` slots holding the
    same inner chunks with the same codecs."""
    out = json.loads(json.dumps(meta))
    inner = [int(v) for v in meta["chunk_grid"]["configuration"]["chunk_shape"]]
    shape = [int(v) for v in meta["shape"]]
    shard = [int(n)] + [-(-s // c) * c for s, c in zip(shape[1:], inner[1:])]
    out["chunk_grid"] = {"name": "regular", "configuration": {"chunk_shape": shard}}
    out["codecs"] = [{"name": "sharding_indexed", "configuration": {
        "chunk_shape": inner, "codecs": meta["codecs"], "index_codecs": chunks.INDEX_CODECS,
        "index_location": "end"}}]
    return out


def compacted_meta(var: str, meta: dict, n: int) -> dict:
    """The zarr.json array `var` has in a compacted group of `n` slots, from the one it has in a group
    that is not compacted: slotted arrays sharded (`sharded_meta`), the done flags one chunk, the rest as is."""
    if var in integrity.SLOT_VARS and meta.get("dimension_names", [None])[0] == schema.DIMS["image"]:
        return sharded_meta(meta, n)
    if var == schema.VAR_DONE:
        out = json.loads(json.dumps(meta))
        out["chunk_grid"] = {"name": "regular", "configuration": {"chunk_shape": [int(n)]}}
        return out
    return meta


def _unsharded_meta(meta: dict) -> dict:
    conf = meta["codecs"][0]["configuration"]
    out = json.loads(json.dumps(meta))
    out["chunk_grid"] = {"name": "regular", "configuration": {"chunk_shape": conf["chunk_shape"]}}
    out["codecs"] = conf["codecs"]
    return out


def compactable(path: Path, *, min_slots: int | None = None) -> str | None:
    """Why the group at `path` is not compacted now (None: it can be): too few slots, already
    compacted, unfinished or damaged slots, codecs this workbench does not write, no content records."""
    path = Path(path)
    try:
        attrs = slots.read_attrs(path)
    except WorkbenchError as exc:
        return str(exc)
    n = len(attrs["slots"])
    min_slots = COMPACT_MIN_SLOTS if min_slots is None else int(min_slots)
    if attrs.get(COMPACTED_ATTR):
        return "already compacted"
    if n < min_slots:
        return f"{n} slots (compaction starts at {min_slots})"
    if attrs.get(integrity.DIGEST_ATTR) != "sha256":
        return "a group written before content records"
    for var in (*integrity.SLOT_VARS, schema.VAR_DONE):
        lay = chunks.array_layout(path, var)
        if lay is None:
            continue
        if lay.shard is not None or not lay.fast or not lay.crc or lay.chunks[0] != 1:
            return f"{var} is not one checksummed chunk row per slot"
    done, bad = integrity.read_flags(path, n)
    if bad or not done.all():
        return f"{int((~done).sum())} of {n} slots are not done"
    problems = meaning.group_problems(path, attrs)
    if problems:
        return f"damaged ({problems[0].line()})"
    return None


def _write_file(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _tmp_for(path: Path) -> Path:
    tmp = path.with_name(f"{path.name}{slots.PARTIAL_MARK}-{socket.gethostname()}-{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    return tmp


def _copy_unslotted(path: Path, tmp: Path, skip: set[str]) -> None:
    """Copy the group's labels and shared arrays (every array folder not in `skip`) and its zarr.json."""
    tmp.mkdir()
    shutil.copyfile(path / "zarr.json", tmp / "zarr.json")
    for child in sorted(path.iterdir()):
        if child.is_dir() and child.name not in skip:
            shutil.copytree(child, tmp / child.name)


def _finish(tmp: Path, attrs_update: dict, drop_attr: str | None = None) -> None:
    """Set group attributes, consolidate the metadata and fsync the copy."""
    root = json.loads((tmp / "zarr.json").read_text())
    root["attributes"].update(attrs_update)
    if drop_attr:
        root["attributes"].pop(drop_attr, None)
    _write_file(tmp / "zarr.json", json.dumps(root, indent=2).encode())
    slots.consolidate(tmp)
    slots.fsync_tree(tmp)


def compact_group(path: Path, *, min_slots: int | None = None) -> bool:
    """Compact the finished group at `path` (module doc) under its writer lock; False (and nothing
    changed) when `compactable` says it cannot be (`min_slots`: default COMPACT_MIN_SLOTS). A chunk
    that fails verification while it is copied raises integrity.DamagedChunk and leaves the group as it was."""
    path = Path(path)
    if compactable(path, min_slots=min_slots) is not None:
        return False
    with slots.group_lock(path):
        if compactable(path, min_slots=min_slots) is not None:  # another process got there first
            return False
        attrs = slots.read_attrs(path)
        n = len(attrs["slots"])
        keys = [str(s["key"]) for s in attrs["slots"]]
        records = integrity.Records(path)
        slotted = [v for v in integrity.SLOT_VARS if (path / v / "zarr.json").is_file()]
        tmp = _tmp_for(path)
        try:
            _copy_unslotted(path, tmp, {*slotted, schema.VAR_DONE})
            for var in slotted:
                _compact_array(path, tmp, var, keys, records)
            _compact_done(path, tmp, n, records)
            _finish(tmp, {COMPACTED_ATTR: True})
            _swap(tmp, path)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return True


def _compact_array(path: Path, tmp: Path, var: str, keys: list[str], records: integrity.Records) -> None:
    """One shard of every slot's chunks of `var` (verified as they are read), then its index."""
    info = integrity.array_info(path, var)
    lay = info["layout"]
    meta = sharded_meta(json.loads((path / var / "zarr.json").read_text()), len(keys))
    shard = tmp / chunks.chunk_key(lay, (0,) * len(lay.shape))
    shard.parent.mkdir(parents=True)
    entries, offset = [], 0
    with open(shard, "wb") as fh:
        for i, key in enumerate(keys):
            for idx in integrity.slot_grid(lay, i):
                data = integrity.verified_chunk(path, info, idx, records, key)
                if data is None:
                    raise integrity.damaged(path, chunks.chunk_key(lay, idx), "missing")
                fh.write(data)
                entries.append((offset, len(data)))
                offset += len(data)
        fh.write(chunks.encode_index(entries))
        fh.flush()
        os.fsync(fh.fileno())
    _write_file(tmp / var / "zarr.json", json.dumps(meta, indent=2).encode())


def _compact_done(path: Path, tmp: Path, n: int, records: integrity.Records) -> None:
    """The done flags as one chunk of n ones, and every slot's content record in one file."""
    meta = compacted_meta(schema.VAR_DONE, json.loads((path / schema.VAR_DONE / "zarr.json").read_text()), n)
    folder = tmp / schema.VAR_DONE
    (folder / "c").mkdir(parents=True)
    _write_file(folder / "zarr.json", json.dumps(meta, indent=2).encode())
    flags = np.ones(n, dtype=np.uint8).tobytes()
    _write_file(folder / "c" / "0", flags + chunks.crc32c(flags))
    recs = {str(i): records.get(i) for i in range(n)}
    _write_file(folder / integrity.DIGESTS_FILE, json.dumps({"slots": recs}).encode())


def expand_group(path: Path, *, drop: set[int] | frozenset = frozenset()) -> set[int]:
    """Rewrite a compacted group as one file per chunk (module doc), without the slots `drop` and
    without any slot whose chunks fail verification; returns the slots left out (absent: the next
    `workbench cubes` recomputes them). Call it under the group's writer lock (cache.slots.group_lock)."""
    path = Path(path)
    attrs = slots.read_attrs(path)
    n = len(attrs["slots"])
    keys = [str(s.get("key", "")) if isinstance(s, dict) else "" for s in attrs["slots"]]
    records = integrity.Records(path)
    slotted = [v for v in integrity.SLOT_VARS if (path / v / "zarr.json").is_file()]
    infos = {v: integrity.array_info(path, v) for v in slotted}
    done, _ = integrity.read_flags(path, n)
    left_out = {i for i in range(n) if i in drop or not done[i]}
    tmp = _tmp_for(path)
    try:
        _copy_unslotted(path, tmp, {*slotted, schema.VAR_DONE})
        for var in slotted:
            meta = json.loads((path / var / "zarr.json").read_text())
            (tmp / var / "c").mkdir(parents=True)
            _write_file(tmp / var / "zarr.json", json.dumps(_unsharded_meta(meta) if infos[var]["layout"].shard
                                                            else meta, indent=2).encode())
        meta = json.loads((path / schema.VAR_DONE / "zarr.json").read_text())
        meta["chunk_grid"] = {"name": "regular", "configuration": {"chunk_shape": [1]}}
        (tmp / schema.VAR_DONE / "c").mkdir(parents=True)
        (tmp / schema.VAR_DONE / integrity.DIGEST_DIR).mkdir()
        _write_file(tmp / schema.VAR_DONE / "zarr.json", json.dumps(meta, indent=2).encode())
        for i in range(n):
            if i in left_out:
                continue
            try:
                got = {(v, idx): integrity.verified_chunk(path, infos[v], idx, records, keys[i])
                       for v in slotted for idx in integrity.slot_grid(infos[v]["layout"], i)}
            except integrity.DamagedChunk:
                left_out.add(i)
                continue
            for (v, idx), data in got.items():
                target = tmp / chunks.chunk_key(integrity.array_info(tmp, v)["layout"], idx)
                target.parent.mkdir(parents=True, exist_ok=True)
                if data is not None:
                    target.write_bytes(data)
            rec = records.get(i)
            if rec is not None:
                (tmp / schema.VAR_DONE / integrity.DIGEST_DIR / f"{i}.json").write_text(json.dumps(rec))
            (tmp / schema.VAR_DONE / "c" / str(i)).write_bytes(integrity.done_bytes(True))
        _finish(tmp, {}, drop_attr=COMPACTED_ATTR)
        _swap(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return left_out


def _swap(new: Path, path: Path) -> None:
    """Put the folder `new` in place of the group `path`; the old group ends up at `new` (deleted by
    the caller). One atomic exchange where the kernel offers it, else two renames (module doc)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        fn = None
    if fn is not None and fn(_AT_FDCWD, os.fsencode(new), _AT_FDCWD, os.fsencode(path), _RENAME_EXCHANGE) == 0:
        slots.fsync_dir(path.parent)
        return
    aside = path.with_name(f"{path.name}{slots.PRECOMPACT_MARK}-{socket.gethostname()}-{os.getpid()}")
    os.rename(path, aside)
    os.rename(new, path)
    os.rename(aside, new)
    slots.fsync_dir(path.parent)
