"""`workbench check STORE [--repair]`: verify every group's metadata and every chunk of every complete cube.

Exit codes: 0 every cube is intact; 1 damage found (one `DAMAGED ...` line per problem on stdout;
after --repair damaged metadata is rewritten from the group's recorded layout and damaged cubes'
done flags are cleared, so the next `workbench cubes` over the same images recomputes exactly them;
see cache.check); 2 bad input (not a store).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("check", help="verify every cube of a store (metadata, schedule, checksums, content records); --repair",
                       description="Verify STORE: every group's metadata against the schema and its recorded layout, "
                                   "the shared timesteps and alphas against its recorded schedule, every done flag, "
                                   "and every chunk of every complete cube (checksum, content record bound to the "
                                   "cube's key, values). Prints one line per problem and exits 1 when there is any "
                                   "(0 when all is intact). --repair rewrites damaged metadata from the recorded "
                                   "layout (or sets the group aside) and clears the damaged cubes' done flags, so "
                                   "that the next `workbench cubes` over the same images recomputes exactly them. "
                                   "Stores written before checksums (schema version 1) are reported as unprotected: truncated, zeroed and missing chunks are "
                                   "still found there, flipped bits inside a chunk are not.")
    p.add_argument("store", help="cube store folder")
    p.add_argument("--repair", action="store_true",
                   help="heal what is found: metadata rewritten, damaged cubes recomputed by the next workbench cubes")
    p.set_defaults(func=run)


def run(args) -> int:
    from cache.check import check_store, repair
    from cache.store import CubeStore, creation_interrupted

    path = Path(args.store).expanduser()
    if args.repair and path.is_dir() and creation_interrupted(path):
        CubeStore(path).finish_marker()
        print(f"# repaired: the interrupted creation of {path} is finished (its store.json written)", file=sys.stderr)
    store = CubeStore(path, create=False)
    report = check_store(store)
    for d in report.damaged:
        print(d.line(), flush=True)
    if report.unprotected:
        print(f"# {len(report.unprotected)} of {report.groups} groups are unprotected (written before checksums, "
              "schema version 1): bit flips inside their chunks cannot be detected; recompute them into a new store "
              "to protect them", file=sys.stderr)
    if report.unbound:
        print(f"# {len(report.unbound)} of {report.groups} groups have no content records (written before them): a "
              "chunk copied from another cube cannot be detected there; recompute them into a new store to bind "
              "them", file=sys.stderr)
    if not report.damaged:
        print(f"# {report.checked} cubes in {report.groups} groups verified: all intact", file=sys.stderr)
        return 0
    if args.repair:
        before = set(store.groups_dir.glob("*.zarr.damaged*"))
        fixed = repair(store, report)
        aside = set(store.groups_dir.glob("*.zarr.damaged*")) - before
        cleared = {(d.group, d.slot) for d in fixed if d.slot is not None}
        groups = {d.group for d in fixed if d.slot is None}
        rewritten = [g for g in groups if store.group_path(g).is_dir()]
        parts = [f"repaired {len(cleared)} damaged cubes of {report.checked} (done flags cleared)"]
        if rewritten:
            parts.append(f"rewrote the metadata of {len(rewritten)} groups from their recorded layout")
        if aside:
            parts.append(f"set {len(aside)} groups aside ({', '.join(sorted(p.name for p in aside))}) to be rebuilt")
        print(f"# {'; '.join(parts)}: run `workbench cubes` over the same images with --store {store.path} to "
              "recompute exactly what was cleared or set aside", file=sys.stderr)
    else:
        print(f"# {len(report.damaged)} problems in {report.checked} cubes: `workbench check {store.path} --repair` "
              "heals them (rewrites damaged metadata, marks damaged cubes for recomputation)", file=sys.stderr)
    return 1
