"""`workbench check STORE [--repair]`: read every chunk of every complete cube; list the damaged ones.

Exit codes: 0 every cube is intact; 1 damage found (one `DAMAGED ...` line per cube on stdout;
after --repair their done flags are cleared, so the next `workbench cubes` over the same images
recomputes exactly them); 2 bad input (not a store).
"""
from __future__ import annotations

import argparse
import sys


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("check", help="verify every cube of a store (checksums, missing chunks); --repair",
                       description="Read and verify every chunk of every complete cube in STORE. Prints one line per "
                                   "damaged cube and exits 1 when there is any (0 when all are intact). --repair "
                                   "clears the damaged cubes' done flags, so that the next `workbench cubes` over the "
                                   "same images recomputes exactly them. Stores written before checksums (schema "
                                   "version 1) are reported as unprotected: truncated, zeroed and missing chunks are "
                                   "still found there, flipped bits inside a chunk are not.")
    p.add_argument("store", help="cube store folder")
    p.add_argument("--repair", action="store_true",
                   help="clear the done flags of the damaged cubes (they are recomputed by the next workbench cubes)")
    p.set_defaults(func=run)


def run(args) -> int:
    from cache.check import check_store, repair
    from cache.store import CubeStore

    store = CubeStore(args.store, create=False)
    report = check_store(store)
    for d in report.damaged:
        print(d.line(), flush=True)
    if report.unprotected:
        print(f"# {len(report.unprotected)} of {report.groups} groups are unprotected (written before checksums, "
              "schema version 1): bit flips inside their chunks cannot be detected; recompute them into a new store "
              "to protect them", file=sys.stderr)
    if not report.damaged:
        print(f"# {report.checked} cubes in {report.groups} groups verified: all intact", file=sys.stderr)
        return 0
    if args.repair:
        fixed = repair(store, report)
        print(f"# repaired {len(fixed)} damaged cubes of {report.checked}: their done flags are cleared; run "
              f"`workbench cubes` over the same images with --store {store.path} to recompute exactly them",
              file=sys.stderr)
    else:
        print(f"# {len(report.damaged)} of {report.checked} cubes are damaged: `workbench check {store.path} --repair` "
              "marks them for recomputation", file=sys.stderr)
    return 1
