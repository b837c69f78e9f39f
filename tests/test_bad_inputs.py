"""Bad and hostile inputs to every command: one line, exit 2, nothing lost.

Each case of `CASES` runs `workbench.cli.main(argv)` in-process and asserts: the documented exit
code (2 unless the case says otherwise), exactly one stderr line `workbench <cmd>: error: ...`
naming the problem, no traceback, and the cube store's and the output folder's files unchanged
(every file hashed before and after). Cases are generated here from a tiny model, a few 24x20
images and a 4-step store built once per module: no file of the repo is used.

The suite grows: append `Case(...)` objects to `STORE_CASES` (damaged chunks, `workbench check`)
or `DASHBOARD_CASES` (dashboard serving) at the end of this file; they run with the same asserts.
Below the cases: the behaviour behind them (output folders, --overwrite, staging, image modes,
shared validation) tested directly, and a few real subprocess runs (a real full disk via
/dev/full, a real file-size limit).
"""
from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import resource
import signal
import struct
import subprocess
import sys
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
from PIL import Image

from workbench.cli import main
from workbench.errors import WorkbenchError
from workbench.outputs import MARKER, OutputDir, OutputFile

ARGS = ["--device", "cpu"]
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
FAST = ["--steps", "4", "--K", "2"]


# --- the world every case works in ---------------------------------------------------------------
@dataclass
class World:
    """Paths the cases use. `tmp` is a fresh folder per case (the cwd during the case)."""

    root: Path
    model: Path
    images: Path
    img: Path
    mask: Path
    store: Path
    tmp: Path = None
    bad_models: dict = field(default_factory=dict)


def tree_hash(folder: Path) -> dict[str, str]:
    """{relative path: sha256} of every file under `folder` ({} if absent); folders listed as 'dir'."""
    out: dict[str, str] = {}
    if folder.is_file():
        return {".": hashlib.sha256(folder.read_bytes()).hexdigest()}
    if not folder.exists():
        return {}
    for p in sorted(folder.rglob("*")):
        rel = str(p.relative_to(folder))
        if p.is_symlink():
            out[rel] = "link:" + os.readlink(p)
        elif p.is_file():
            out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
        elif p.is_dir():
            out[rel] = "dir"
    return out


def header_only_png(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height and has no pixel data: a decompression bomb's
    signature in 57 bytes (PIL refuses it at open, before reading any data)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)) + \
        chunk(b"IEND", b"")


def _bad_model(root: Path, good: Path, name: str, scheduler: str | None = None, unet_config: str | None = None) -> Path:
    d = root / name
    d.mkdir()
    (d / "unet").mkdir()
    for f in (good / "unet").iterdir():
        (d / "unet" / f.name).symlink_to(f)
    if unet_config is not None:
        (d / "unet" / "config.json").unlink()
        (d / "unet" / "config.json").write_text(unet_config)
    (d / "scheduler").mkdir()
    text = (good / "scheduler" / "scheduler_config.json").read_text()
    (d / "scheduler" / "scheduler_config.json").write_text(text if scheduler is None else scheduler)
    return d


@pytest.fixture(scope="module")
def world(tmp_path_factory, tiny_pixel_dir) -> World:
    root = tmp_path_factory.mktemp("bad-inputs")
    images = root / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (20, 24, 3), dtype=np.uint8)).save(images / "a.png")
    Image.fromarray(rng.integers(0, 255, (18, 18, 3), dtype=np.uint8)).save(images / "b.png")
    mask = np.zeros((20, 24), np.uint8)
    mask[6:14, 8:16] = 255
    Image.fromarray(mask).save(root / "mask.png")
    store = root / "store"
    assert main(["cubes", str(images), "--store", str(store), "--model", str(tiny_pixel_dir), *FAST, *ARGS]) == 0
    w = World(root, tiny_pixel_dir, images, images / "a.png", root / "mask.png", store)
    cfg = json.loads((tiny_pixel_dir / "scheduler" / "scheduler_config.json").read_text())
    w.bad_models = {
        "not-json": _bad_model(root, tiny_pixel_dir, "m-notjson", scheduler="{num_train_timesteps: 1000,"),
        "T0": _bad_model(root, tiny_pixel_dir, "m-t0", scheduler=json.dumps(cfg | {"num_train_timesteps": 0})),
        "betas": _bad_model(root, tiny_pixel_dir, "m-betas", scheduler=json.dumps(cfg | {"beta_end": 2.0})),
        "list": _bad_model(root, tiny_pixel_dir, "m-list", scheduler="[1, 2]"),
        "unet-json": _bad_model(root, tiny_pixel_dir, "m-unet", unet_config="not json at all"),
    }
    return w


# --- the cases ---------------------------------------------------------------------------------
@dataclass
class Case:
    """One bad input. `argv(w)` builds the arguments; `expect` must appear in the error line;
    `setup(w, monkeypatch)` prepares files or simulates a failure; `outputs(w)` names the folders
    or files whose contents must not change (the store is always checked); `check(w)` adds asserts;
    `lines`: "one" = stderr is exactly the error line, "last" = informative lines may precede it
    (failures after compute started)."""

    id: str
    argv: Callable[[World], list[str]]
    expect: str
    setup: Callable | None = None
    outputs: Callable[[World], list[Path]] = lambda w: [w.tmp]
    check: Callable[[World], None] | None = None
    rc: int = 2
    lines: str = "one"


def _mk(path: Path, files: dict[str, bytes | str]) -> None:
    for rel, data in files.items():
        f = path / rel
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(data if isinstance(data, bytes) else data.encode())


USER_FILES = {"precious.txt": "mine", "sub/data.csv": "a,b\n1,2\n", "metrics.json": "{\"mine\": 1}"}


def _user_folder(rel: str):
    def setup(w, mp):
        _mk(w.tmp / rel, USER_FILES)
    return setup


def _enospc_on_fsync(nth: int = 1):
    """Simulate a full disk at the nth fsync of a staged output file."""
    def setup(w, mp):
        import workbench.outputs as outputs

        calls = {"n": 0}
        real = os.fsync

        def fsync(fd):
            calls["n"] += 1
            if calls["n"] >= nth:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return real(fd)
        mp.setattr(outputs.os, "fsync", fsync)
    return setup


def _no_access(target: Callable[[World], Path]):
    """Simulate a read-only or foreign-owned folder (tests run as root, where chmod does not bite)."""
    def setup(w, mp):
        real = os.access
        mp.setattr(os, "access", lambda p, mode, **kw: False if Path(p) == target(w) else real(p, mode, **kw))
    return setup


def _curve(w, *extra, image=None):
    return ["curve", str(image or w.img), "--pixel", "3,4", "--model", str(w.model), "--steps", "4", *ARGS, *extra]


def _cubes(w, *extra, store=None, model=None):
    return ["cubes", str(w.images), "--store", str(store or w.tmp / "newstore"), "--model", str(model or w.model),
            *FAST, *ARGS, *extra]


def _query(w, *extra):
    return ["query", str(w.store), "--image", "a", *extra]


def _export(w, *extra, out=None):
    return ["export", str(w.store), "--out", str(out or w.tmp / "maps"), *extra]


def _edit(w, *extra, out=None):
    return ["edit", "removal", str(w.img), "--mask", str(w.mask), "--out", str(out or w.tmp / "ed"),
            "--model", str(w.model), "--steps", "2", "--iters", "1", "--no-baselines", *ARGS, *extra]


def _run(w, *extra, out=None):
    return ["run", str(w.img), "--store", str(w.tmp / "rstore"), "--out", str(out or w.tmp / "rout"),
            "--model", str(w.model), "--steps", "4", "--K", "2", *ARGS, *extra]


def _absent(rel: str):
    def check(w):
        assert not (w.tmp / rel).exists(), f"{rel} was created"
    return check


CASES: list[Case] = [
    # curve: steps, device, k, channel, pixel, images, models, plot file
    Case("curve-steps-0", lambda w: _curve(w, "--steps", "0"), "steps must be"),
    Case("curve-steps-100000", lambda w: _curve(w, "--steps", "100000"), "from 1 to 1000"),
    Case("curve-steps-negative", lambda w: _curve(w, "--steps", "-3"), "steps must be"),
    Case("curve-steps-not-int", lambda w: _curve(w, "--steps", "abc"), "invalid int value"),
    Case("curve-device-banana", lambda w: _curve(w, "--device", "banana"), "device must be cpu, cuda"),
    Case("curve-device-no-cuda", lambda w: _curve(w, "--device", "cuda:7"), "cuda:7"),
    Case("curve-dtype-float64", lambda w: _curve(w, "--dtype", "float64"), "invalid choice"),
    Case("curve-projected-k-0", lambda w: _curve(w, "--rate", "projected", "--k", "0"), "k must be"),
    Case("curve-projected-k-huge", lambda w: _curve(w, "--rate", "projected", "--k", "999999"), "k must be"),
    Case("curve-channel-99", lambda w: _curve(w, "--channel", "99"), "channel must be"),
    Case("curve-fixed-point-9", lambda w: _curve(w, "--fixed-point", "9"), "fixed-point iterations must be"),
    Case("curve-channel-negative", lambda w: _curve(w, "--channel", "-1"), "channel must be"),
    Case("curve-pixel-outside", lambda w: ["curve", str(w.img), "--pixel", "999,999", "--model", str(w.model),
                                           *ARGS], "outside"),
    Case("curve-pixel-garbage", lambda w: ["curve", str(w.img), "--pixel", "x", *ARGS], "is not X,Y"),
    Case("curve-image-missing", lambda w: _curve(w, image=w.tmp / "nope.png"), "no such image"),
    Case("curve-image-empty", lambda w: _curve(w, image=w.tmp / "empty.png"), "empty file",
         setup=lambda w, mp: (w.tmp / "empty.png").write_bytes(b"")),
    Case("curve-image-text", lambda w: _curve(w, image=w.tmp / "t.png"), "not a readable image",
         setup=lambda w, mp: (w.tmp / "t.png").write_text("hello")),
    Case("curve-image-folder", lambda w: _curve(w, image=w.tmp), "is a directory"),
    Case("curve-image-truncated", lambda w: _curve(w, image=w.tmp / "cut.png"), "not a readable image",
         setup=lambda w, mp: (w.tmp / "cut.png").write_bytes(w.img.read_bytes()[:60])),
    Case("curve-decompression-bomb", lambda w: _curve(w, image=w.tmp / "bomb.png"), "decompression bomb",
         setup=lambda w, mp: (w.tmp / "bomb.png").write_bytes(header_only_png(20000, 20000))),
    Case("curve-over-pixel-limit", lambda w: _curve(w), "Mpx limit",
         setup=lambda w, mp: mp.setattr(Image, "MAX_IMAGE_PIXELS", 300)),
    Case("curve-model-missing", lambda w: _curve(w, "--model", str(w.tmp / "nomodel")), "no model at"),
    Case("curve-model-scheduler-not-json", lambda w: _curve(w, "--model", str(w.bad_models["not-json"])),
         "is not valid JSON"),
    Case("curve-model-T-0", lambda w: _curve(w, "--model", str(w.bad_models["T0"])), "num_train_timesteps"),
    Case("curve-model-bad-betas", lambda w: _curve(w, "--model", str(w.bad_models["betas"])), "beta_end"),
    Case("curve-model-scheduler-list", lambda w: _curve(w, "--model", str(w.bad_models["list"])), "JSON object"),
    Case("curve-model-unet-config-not-json", lambda w: _curve(w, "--model", str(w.bad_models["unet-json"])),
         "is not valid JSON"),
    Case("curve-plot-user-file", lambda w: _curve(w, "--plot", str(w.tmp / "mine.html")), "--overwrite",
         setup=lambda w, mp: (w.tmp / "mine.html").write_text("<p>mine</p>")),
    Case("curve-plot-folder", lambda w: _curve(w, "--plot", str(w.tmp / "d")), "not a regular file",
         setup=lambda w, mp: (w.tmp / "d").mkdir()),
    Case("curve-plot-dev-full", lambda w: _curve(w, "--plot", "/dev/full"), "not a regular file",
         outputs=lambda w: [w.tmp]),
    Case("curve-plot-readonly-folder", lambda w: _curve(w, "--plot", str(w.tmp / "ro" / "p.html")), "not writable",
         setup=lambda w, mp: ((w.tmp / "ro").mkdir(), _no_access(lambda w: w.tmp / "ro")(w, mp))),
    Case("curve-plot-link-loop", lambda w: _curve(w, "--plot", str(w.tmp / "loop")), "link",
         setup=lambda w, mp: (w.tmp / "loop").symlink_to(w.tmp / "loop")),
    # cubes: parameters checked before the store exists; store and source folders
    Case("cubes-steps-100000", lambda w: _cubes(w, "--steps", "100000"), "from 1 to 1000",
         check=_absent("newstore")),
    Case("cubes-steps-0", lambda w: _cubes(w, "--steps", "0"), "steps must be", check=_absent("newstore")),
    Case("cubes-K-0", lambda w: _cubes(w, "--K", "0"), "K must be", check=_absent("newstore")),
    Case("cubes-fixed-point-9", lambda w: _cubes(w, "--fixed-point", "9"), "fixed-point iterations must be",
         check=_absent("newstore")),
    Case("cubes-fixed-point-negative", lambda w: _cubes(w, "--fixed-point", "-1"), "fixed-point iterations must be",
         check=_absent("newstore")),
    Case("cubes-K-huge", lambda w: _cubes(w, "--K", "100000"), "K must be", check=_absent("newstore")),
    Case("cubes-device-banana", lambda w: _cubes(w, "--device", "banana"), "device must be",
         check=_absent("newstore")),
    Case("cubes-channel-7", lambda w: _cubes(w, "--channel", "7"), "channel must be", check=_absent("newstore")),
    Case("cubes-seed-negative", lambda w: _cubes(w, "--seed", "-1"), "seed must be", check=_absent("newstore")),
    Case("cubes-limit-0", lambda w: _cubes(w, "--limit", "0"), "--limit", check=_absent("newstore")),
    Case("cubes-model-T-0", lambda w: _cubes(w, model=w.bad_models["T0"]), "num_train_timesteps",
         check=_absent("newstore")),
    Case("cubes-model-not-json", lambda w: _cubes(w, model=w.bad_models["not-json"]), "not valid JSON",
         check=_absent("newstore")),
    Case("cubes-source-missing", lambda w: ["cubes", str(w.tmp / "nope"), "--store", str(w.tmp / "s"), *ARGS],
         "no such folder"),
    Case("cubes-store-is-file", lambda w: _cubes(w, store=w.tmp / "f"), "is a file",
         setup=lambda w, mp: (w.tmp / "f").write_text("x")),
    Case("cubes-store-foreign-folder", lambda w: _cubes(w, store=w.tmp / "u"), "not a cube store",
         setup=_user_folder("u")),
    Case("cubes-store-readonly", lambda w: _cubes(w, store=w.tmp / "ro"), "not writable",
         setup=lambda w, mp: ((w.tmp / "ro").mkdir(), _no_access(lambda w: w.tmp / "ro")(w, mp))),
    Case("cubes-bomb-in-folder", lambda w: ["cubes", str(w.tmp / "imgs"), "--store", str(w.tmp / "s"),
                                            "--model", str(w.model), *FAST, *ARGS], "decompression bomb",
         setup=lambda w, mp: _mk(w.tmp / "imgs", {"x.png": header_only_png(20000, 20000)})),
    Case("cubes-disk-full-mid-batch", lambda w: _cubes(w), "No space left on device", lines="last",
         outputs=lambda w: [],  # the new store keeps what was computed: a rerun resumes
         setup=lambda w, mp: mp.setattr("cache.slots.create_group", _raise(OSError(
             errno.ENOSPC, os.strerror(errno.ENOSPC), str(w.tmp / "newstore" / "groups"))))),
    Case("cubes-permission-denied-mid-batch", lambda w: _cubes(w), "permission denied", lines="last",
         outputs=lambda w: [],
         setup=lambda w, mp: mp.setattr("cache.slots.create_group", _raise(PermissionError(
             errno.EACCES, os.strerror(errno.EACCES), str(w.tmp / "newstore" / "groups"))))),
    # query: store, names, output file
    Case("query-store-missing", lambda w: ["query", str(w.tmp / "nostore"), "--list"], "no cube store"),
    Case("query-image-unknown", lambda w: _query(w)[:3] + ["nope", "--pixel", "1,1"], "no cube of 'nope'"),
    Case("query-nothing-asked", lambda w: _query(w), "say what to read"),
    Case("query-pixel-outside", lambda w: _query(w, "--pixel", "999,999"), "outside"),
    Case("query-format-unknown", lambda w: _query(w, "--t", "10", "--out", str(w.tmp / "x.gif")),
         "cannot tell the format"),
    Case("query-out-user-file", lambda w: _query(w, "--pixel", "1,1", "--out", str(w.tmp / "mine.csv")),
         "--overwrite", setup=lambda w, mp: (w.tmp / "mine.csv").write_text("mine\n")),
    Case("query-out-user-png", lambda w: _query(w, "--t", "10", "--out", str(w.tmp / "photo.png")), "--overwrite",
         setup=lambda w, mp: Image.new("RGB", (4, 4)).save(w.tmp / "photo.png")),
    Case("query-out-folder", lambda w: _query(w, "--pixel", "1,1", "--out", str(w.tmp), "--format", "csv"),
         "not a regular file"),
    Case("query-out-dev-full", lambda w: _query(w, "--pixel", "1,1", "--out", "/dev/full", "--format", "csv"),
         "not a regular file"),
    Case("query-png-disk-full", lambda w: _query(w, "--t", "10", "--format", "png", "--out", str(w.tmp / "m.png")),
         "No space left on device", setup=_enospc_on_fsync(1), check=_absent("m.png")),
    Case("query-csv-disk-full", lambda w: _query(w, "--pixel", "1,1", "--out", str(w.tmp / "c.csv")),
         "nothing was written", setup=_enospc_on_fsync(1), check=_absent("c.csv")),
    Case("query-out-readonly", lambda w: _query(w, "--pixel", "1,1", "--out", str(w.tmp / "ro" / "c.csv")),
         "not writable", setup=lambda w, mp: ((w.tmp / "ro").mkdir(), _no_access(lambda w: w.tmp / "ro")(w, mp))),
    Case("query-region-wrong-size", lambda w: ["query", str(w.store), "--image", "b", "--region", str(w.mask)],
         "draw the mask"),
    # export: window, t_b, format, output folder, disk full
    Case("export-window-0", lambda w: _export(w, "--window", "0"), "window must be", check=_absent("maps")),
    Case("export-window-1", lambda w: _export(w, "--window", "1"), "window must be", check=_absent("maps")),
    Case("export-window-too-long", lambda w: _export(w, "--window", "40"), "fewer than the window",
         check=_absent("maps")),
    Case("export-t_b-negative", lambda w: _export(w, "--t-b", "-5"), "t_b must be", check=_absent("maps")),
    Case("export-t_b-nan", lambda w: _export(w, "--t-b", "nan"), "t_b must be", check=_absent("maps")),
    Case("export-format-gif", lambda w: _export(w, "--format", "gif"), "--format gif: choose png"),
    Case("export-what-unknown", lambda w: _export(w, "--what", "speed"), "choose fluctuation"),
    Case("export-out-user-folder", lambda w: _export(w, out=w.tmp / "u"), "--overwrite", setup=_user_folder("u")),
    Case("export-out-is-file", lambda w: _export(w, out=w.tmp / "f"), "is a file, not a folder",
         setup=lambda w, mp: (w.tmp / "f").write_text("x")),
    Case("export-out-dev-full", lambda w: _export(w, out=Path("/dev/full")), "is a file, not a folder"),
    Case("export-out-below-a-file", lambda w: _export(w, out=w.tmp / "f" / "maps"), "is a file",
         setup=lambda w, mp: (w.tmp / "f").write_text("x")),
    Case("export-disk-full-third-file", lambda w: _export(w), "nothing in", setup=_enospc_on_fsync(3),
         check=_absent("maps"), lines="last"),
    Case("export-store-missing", lambda w: ["export", str(w.tmp / "nostore"), "--out", str(w.tmp / "m")],
         "no such cube store"),
    # edit: never touches a user's folder; parameters
    Case("edit-out-user-folder", lambda w: _edit(w, out=w.tmp / "u"), "--overwrite", setup=_user_folder("u")),
    Case("edit-out-dot", lambda w: _edit(w, out=Path(".")), "--overwrite", setup=_user_folder(".")),
    Case("edit-out-is-file", lambda w: _edit(w, out=w.tmp / "f"), "is a file, not a folder",
         setup=lambda w, mp: (w.tmp / "f").write_text("x")),
    Case("edit-out-other-command", lambda w: _edit(w, out=w.tmp / "o"), "workbench export",
         setup=lambda w, mp: _mk(w.tmp / "o", {MARKER: json.dumps({"command": "export", "files": {}}),
                                              "a.png": b"x"})),
    Case("edit-steps-1", lambda w: _edit(w, "--steps", "1"), "steps must be", check=_absent("ed")),
    Case("edit-steps-100000", lambda w: _edit(w, "--steps", "100000"), "from 2 to 1000", check=_absent("ed")),
    Case("edit-iters-negative", lambda w: _edit(w, "--iters", "-1"), "iterations must be"),
    Case("edit-lr-0", lambda w: _edit(w, "--lr", "0"), "lr must be"),
    Case("edit-lr-nan", lambda w: _edit(w, "--lr", "nan"), "lr must be"),
    Case("edit-t_b-negative", lambda w: _edit(w, "--t-b", "-1"), "t_b must be"),
    Case("edit-device-banana", lambda w: _edit(w, "--device", "banana"), "device must be", check=_absent("ed")),
    Case("edit-mask-wrong-size", lambda w: _edit(w)[:3] + ["--mask", str(w.tmp / "m.png")] + _edit(w)[5:],
         "draw the mask", setup=lambda w, mp: Image.new("L", (5, 5), 255).save(w.tmp / "m.png")),
    Case("edit-mask-empty", lambda w: _edit(w)[:3] + ["--mask", str(w.tmp / "m.png")] + _edit(w)[5:],
         "the mask is empty", setup=lambda w, mp: Image.new("L", (24, 20), 0).save(w.tmp / "m.png")),
    Case("edit-increase-not-saliency", lambda w: _edit(w, "--increase"), "--increase"),
    # run: the main job checks everything before computing
    Case("run-window-0", lambda w: _run(w, "--window", "0"), "window must be", check=_absent("rstore")),
    Case("run-window-too-long", lambda w: _run(w, "--window", "9"), "only 3 timesteps lie above t_b",
         check=_absent("rstore")),
    Case("run-t_b-too-high", lambda w: _run(w, "--t-b", "5000"), "t_b must be", check=_absent("rstore")),
    Case("run-steps-100000", lambda w: _run(w, "--steps", "100000"), "from 1 to 1000", check=_absent("rstore")),
    Case("run-K-0", lambda w: _run(w, "--K", "0"), "K must be", check=_absent("rstore")),
    Case("run-out-user-folder", lambda w: _run(w, out=w.tmp / "u"), "--overwrite", setup=_user_folder("u"),
         check=_absent("rstore")),
    # experiment
    Case("experiment-window-0", lambda w: ["experiment", "paired", "--data", str(w.images), "--out",
                                           str(w.tmp / "rep"), "--window", "0", *ARGS], "window must be"),
    Case("experiment-out-user-folder", lambda w: ["experiment", "paired", "--data", str(w.images), "--out",
                                                  str(w.tmp / "u"), *ARGS], "--overwrite", setup=_user_folder("u")),
    # the command line itself
    Case("cli-unknown-option", lambda w: ["query", str(w.store), "--colour", "red"], "unrecognized arguments"),
]


def _raise(exc: BaseException):
    def f(*a, **kw):
        raise exc
    return f


# --- cases appended by the store/check and dashboard work (same asserts) ------------------------
def _huge_memory() -> str:
    return "1" + "9" * 400 + "GB"  # float() of it is inf: int(inf) raised OverflowError (a traceback)


def _paper_folder(w, mp):
    """A user's own paper folder whose file names are those an experiment writes."""
    _mk(w.tmp / "paper", {"results.json": '{"mine": true}', "report.html": "<p>my report</p>",
                          "tables.md": "| my | table |"})


def _old_export_folder(w, mp):
    """An export folder from before output markers whose fluctuation/a.npy the user replaced."""
    _mk(w.tmp / "old", {"manifest.json": json.dumps({"maps": {"a": {}}, "png_scaling": "min-max"}),
                        "fluctuation/a.npy": b"the user's own array", "fluctuation/a.png": b"png"})


def _truncated_in_batch(w, mp):
    """A folder of two images, the second cut after its header (it passes the header check, fails to decode)."""
    (w.tmp / "imgs").mkdir()
    (w.tmp / "imgs" / "a.png").write_bytes(w.img.read_bytes())
    data = (w.images / "b.png").read_bytes()
    (w.tmp / "imgs" / "z-cut.png").write_bytes(data[: len(data) * 2 // 3])


def _enospc_in_zarr_write(w, mp):
    """A full disk while a slot's chunks are written: zarr's failed write() carries no file name."""
    import zarr

    real = zarr.Array.__setitem__

    def setitem(self, key, value):
        if self.path != "rate":
            return real(self, key, value)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    mp.setattr(zarr.Array, "__setitem__", setitem)


STORE_CASES: list[Case] = [
    # flags that need no model: refused before it loads, nothing created (issue: "refused only after the
    # model loads, leaving empty stores behind", or accepted silently)
    *[Case(f"cubes-until-stable-{v}", lambda w, v=v: _cubes(w, "--until-stable", v), "stability target R must be",
           check=_absent("newstore")) for v in ("0", "-5", "nan", "inf", "5", "1")],
    Case("cubes-max-K-0", lambda w: _cubes(w, "--until-stable", "0.9", "--max-K", "0"), "probe cap (max K) must be",
         check=_absent("newstore")),
    Case("cubes-max-K-huge", lambda w: _cubes(w, "--until-stable", "0.9", "--max-K", "99999"), "probe cap",
         check=_absent("newstore")),
    Case("cubes-max-K-without-until-stable", lambda w: _cubes(w, "--max-K", "16"), "--until-stable",
         check=_absent("newstore")),
    Case("cubes-refine-to-rsvd", lambda w: _cubes(w, "--estimator", "rsvd", "--refine-to", "8"),
         "refinement needs Hutchinson", check=_absent("newstore")),
    Case("cubes-refine-to-projected", lambda w: _cubes(w, "--rate", "projected", "--refine-to", "8"),
         "refinement needs Hutchinson", check=_absent("newstore")),
    Case("cubes-refine-to-0", lambda w: _cubes(w, "--refine-to", "0"), "refinement target K2 must be",
         check=_absent("newstore")),
    Case("cubes-refine-to-below-stored-K", lambda w: _cubes(w, "--refine-to", "1", store=w.store),
         "below the K=2 probes", lines="last"),
    Case("cubes-scheduler-foo", lambda w: _cubes(w, "--scheduler", "foo"), "scheduler must be",
         check=_absent("newstore")),
    Case("cubes-scheduler-bad-port", lambda w: _cubes(w, "--scheduler", "tcp://host:99999"), "port 1..65535",
         check=_absent("newstore")),
    Case("cubes-max-memory-1KB", lambda w: _cubes(w, "--max-memory", "1KB"), "memory size must be",
         check=_absent("newstore")),
    Case("cubes-max-memory-huge", lambda w: _cubes(w, "--max-memory", _huge_memory()), "memory size must be",
         check=_absent("newstore")),
    Case("run-max-memory-huge", lambda w: _run(w, "--max-memory", _huge_memory()), "memory size must be",
         check=_absent("rstore")),
    Case("query-t-huge", lambda w: _query(w, "--t", "99999999999999999999"), "timestep must be"),
    Case("query-t-negative", lambda w: _query(w, "--t", "-1"), "timestep must be"),
    *[Case(f"export-what-rate@{v}", lambda w, v=v: _export(w, "--what", f"rate@{v}"), "whole timestep",
           check=_absent("maps")) for v in ("inf", "1e30", "nan", "-5", "2.5")],
    # outputs are owned by the marker only: a user's folder with the command's file names is the user's
    Case("experiment-out-users-results-json", lambda w: ["experiment", "paired", "--data", str(w.images), "--out",
                                                         str(w.tmp / "paper"), *ARGS], "--overwrite",
         setup=_paper_folder),
    Case("export-out-pre-marker-export", lambda w: _export(w, out=w.tmp / "old"), "--overwrite",
         setup=_old_export_folder),
    Case("run-out-pre-marker-export", lambda w: _run(w, out=w.tmp / "old"), "--overwrite", setup=_old_export_folder,
         check=_absent("rstore")),
    Case("edit-out-pre-marker-edit", lambda w: _edit(w, out=w.tmp / "e"), "--overwrite",
         setup=lambda w, mp: _mk(w.tmp / "e", {".workbench-edit": "", "edited.png": b"the user's edit"})),
    Case("export-out-marker-names-outside", lambda w: _export(w, out=w.tmp / "o"), "--overwrite",
         setup=lambda w, mp: _mk(w.tmp / "o", {MARKER: json.dumps({"command": "export", "files": {
             "manifest.json": {"size": 1}}}), "manifest.json": b"mine"})),
    # every message names its file
    Case("cubes-truncated-image-mid-batch", lambda w: ["cubes", str(w.tmp / "imgs"), "--store",
                                                       str(w.tmp / "s"), "--model", str(w.model), *FAST, *ARGS],
         "z-cut.png: not a readable image", setup=_truncated_in_batch, lines="last", outputs=lambda w: []),
    Case("cubes-disk-full-in-slot-write", lambda w: _cubes(w), ".zarr/rate: No space left on device", lines="last",
         outputs=lambda w: [], setup=_enospc_in_zarr_write),
]
DASHBOARD_CASES: list[Case] = [
    Case("dashboard-basic-auth-password-in-argv", lambda w: ["dashboard", "--store", str(w.store), "--basic-auth",
                                                             "hunter2", "--port", "0"], "in `ps`"),
    Case("dashboard-password-file-missing", lambda w: ["dashboard", "--store", str(w.store), "--password-file",
                                                       str(w.tmp / "nope"), "--port", "0"], "--password-file"),
    Case("dashboard-password-file-empty", lambda w: ["dashboard", "--store", str(w.store), "--password-file",
                                                     str(w.tmp / "pw"), "--port", "0"], "is empty",
         setup=lambda w, mp: (w.tmp / "pw").write_text("\n")),
]


def _all_cases() -> list[Case]:
    return CASES + STORE_CASES + DASHBOARD_CASES


@pytest.mark.parametrize("case", _all_cases(), ids=lambda c: c.id)
def test_bad_input_is_one_line_and_changes_nothing(case: Case, world: World, tmp_path, monkeypatch, capsys):
    world.tmp = tmp_path
    monkeypatch.chdir(tmp_path)
    if case.setup:
        case.setup(world, monkeypatch)
    watched = [world.store, *case.outputs(world)]
    before = [tree_hash(p) for p in watched]
    capsys.readouterr()
    rc = main(case.argv(world))
    err = capsys.readouterr().err
    lines = [ln.strip() for ln in ANSI.sub("", err).replace("\r", "\n").splitlines() if ln.strip()]
    assert rc == case.rc, err
    assert "Traceback" not in err
    errors = [ln for ln in lines if ": error: " in ln]
    assert len(errors) == 1 and errors[0] == lines[-1], err
    if case.lines == "one":
        assert len(lines) == 1, err
    assert errors[0].startswith("workbench "), err
    assert case.expect in errors[0], errors[0]
    monkeypatch.undo()
    after = [tree_hash(p) for p in watched]
    assert before == after, f"files changed: {case.id}"
    if case.check:
        case.check(world)


def test_suite_has_at_least_60_cases():
    assert len(_all_cases()) >= 60


# --- what the cases rest on: output folders, --overwrite, staging ------------------------------
def test_output_dir_refuses_a_foreign_folder_and_overwrite_replaces_only_its_own_files(tmp_path):
    _mk(tmp_path / "o", USER_FILES | {"a.txt": "user's a"})
    with pytest.raises(WorkbenchError, match="--overwrite"):
        OutputDir(tmp_path / "o", "export")
    out = OutputDir(tmp_path / "o", "export", overwrite=True)
    with out.staging() as st:
        st.write_text("b.txt", "ours")
    assert (tmp_path / "o" / "b.txt").read_text() == "ours"
    assert {k: v for k, v in tree_hash(tmp_path / "o").items() if k not in ("b.txt", MARKER)} == \
        tree_hash_of(USER_FILES | {"a.txt": "user's a"}, tmp_path / "ref")
    # the folder is now an export's: a rerun without --overwrite may replace b.txt, never a.txt
    again = OutputDir(tmp_path / "o", "export")
    with pytest.raises(WorkbenchError, match="was not written by"):
        again.check_names(["a.txt"])
    with again.staging() as st:
        st.write_text("b.txt", "ours again")
    assert (tmp_path / "o" / "b.txt").read_text() == "ours again"
    assert (tmp_path / "o" / "precious.txt").read_text() == "mine"


def tree_hash_of(files: dict, where: Path) -> dict:
    _mk(where, files)
    return tree_hash(where)


def test_rerun_removes_only_unchanged_stale_outputs(tmp_path):
    out = OutputDir(tmp_path / "o", "edit")
    with out.staging() as st:
        st.write_text("keep.txt", "1")
        st.write_text("stale.txt", "2")
        st.write_text("edited-by-user.txt", "3")
    (tmp_path / "o" / "edited-by-user.txt").write_text("the user's now")
    with OutputDir(tmp_path / "o", "edit").staging() as st:
        st.write_text("keep.txt", "1b")
    names = set(tree_hash(tmp_path / "o"))
    assert names == {"keep.txt", "edited-by-user.txt", MARKER}  # stale.txt was ours and unchanged: removed
    assert (tmp_path / "o" / "edited-by-user.txt").read_text() == "the user's now"
    with pytest.raises(WorkbenchError, match="changed"):
        OutputDir(tmp_path / "o", "edit").check_names(["edited-by-user.txt"])


def test_staging_failure_leaves_nothing_and_says_so(tmp_path, monkeypatch):
    import workbench.outputs as outputs

    out = OutputDir(tmp_path / "o", "export")
    with out.staging() as st:
        st.write_text("a.txt", "old a")
    before = tree_hash(tmp_path / "o")
    calls = {"n": 0}

    def fsync(fd):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(outputs.os, "fsync", fsync)
    with pytest.raises(WorkbenchError) as e:
        with OutputDir(tmp_path / "o", "export").staging() as st:
            st.write_text("a.txt", "new a")
            st.write_text("b/b.txt", "new b")
            st.write_text("c.txt", "new c")
    assert "No space left on device" in str(e.value) and str(tmp_path / "o" / "c.txt") in str(e.value)
    assert "nothing in" in str(e.value) and "\n" not in str(e.value)
    assert tree_hash(tmp_path / "o") == before  # no temp file, no half-written map, no new folder


def test_commit_failure_reports_what_was_written(tmp_path, monkeypatch):
    import workbench.outputs as outputs

    real, calls = os.replace, {"n": 0}

    def replace(a, b):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError(errno.EACCES, os.strerror(errno.EACCES), str(b))
        return real(a, b)
    monkeypatch.setattr(outputs.os, "replace", replace)
    with pytest.raises(WorkbenchError) as e:
        with OutputDir(tmp_path / "o", "export").staging() as st:
            st.write_text("a.txt", "a")
            st.write_text("b.txt", "b")
            st.write_text("c.txt", "c")
    msg = str(e.value)
    assert "wrote a.txt" in msg and "b.txt" in msg and "permission denied" in msg
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["a.txt"]  # no temp files left


def test_temp_files_of_a_killed_run_are_swept_but_not_those_of_a_live_one(tmp_path):
    from workbench.outputs import TEMP_TAG

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    _mk(tmp_path / "o", {f"{TEMP_TAG}{dead.stdout.strip()}-0-a.png": "killed", f"{TEMP_TAG}1-0-b.png": "pid 1 lives",
                         "x.txt": "mine"})
    with OutputDir(tmp_path / "o", "export", overwrite=True).staging() as st:
        st.write_text("a.png", "new")
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == sorted(
        [f"{TEMP_TAG}1-0-b.png", MARKER, "a.png", "x.txt"])


def test_output_file_rules(tmp_path):
    (tmp_path / "mine.csv").write_text("x")
    with pytest.raises(WorkbenchError, match="--overwrite"):
        OutputFile(tmp_path / "mine.csv", "query")
    OutputFile(tmp_path / "mine.csv", "query", overwrite=True).write_bytes(b"new")
    assert (tmp_path / "mine.csv").read_text() == "new"
    OutputFile(tmp_path / "sub" / "x.csv", "query").write_bytes(b"1")
    assert (tmp_path / "sub" / "x.csv").read_text() == "1"
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["mine.csv", "sub", "x.csv"]


def _fake_run_edit(adapter, pil, mask, cfg, **kw):
    """What `run_edit` returns, without the optimisation (the command's writing is under test here)."""
    from types import SimpleNamespace

    img = pil.resize((16, 16))
    curve = np.linspace(1, 2, cfg.steps)
    return SimpleNamespace(original=img, edited=img, edited_source=None, mask_model=np.zeros((16, 16)),
                           region_model=np.zeros((16, 16)), timesteps=np.arange(cfg.steps) * 100,
                           curve_before=curve, curve_after=curve, reference_curve=None, baselines={},
                           config=cfg.as_dict(), losses=[1.0], cancelled=False, iterations_done=1, seconds=0.0,
                           metrics={"psnr_outside": 30.0, "psnr_outside_reconstruction": 31.0, "change_inside": 0.1,
                                    "mean_rate_before": 1.0, "mean_rate_after": 0.9})


def test_edit_into_an_earlier_edit_folder_keeps_the_users_files(world, tmp_path, monkeypatch, capsys):
    """A rerun into an earlier edit folder replaces only the edit's own files, never the user's (it once
    deleted them)."""
    import workbench.editing

    monkeypatch.setattr(workbench.editing, "run_edit", _fake_run_edit)
    out = tmp_path / "ed"
    assert main(_edit(world, out=out)) == 0
    first = tree_hash(out)
    assert {MARKER, "edited.png", "metrics.json", "curves.html"} <= set(first)
    (out / "precious.txt").write_text("mine")
    assert main(_edit(world, "--seed", "1", out=out)) == 0
    assert (out / "precious.txt").read_text() == "mine"
    assert json.loads((out / "metrics.json").read_text())["config"]["seed"] == 1
    # --overwrite into a foreign folder writes the edit's files and leaves the user's alone
    _mk(tmp_path / "u", USER_FILES)
    assert main(_edit(world, "--overwrite", out=tmp_path / "u")) == 0
    got = tree_hash(tmp_path / "u")
    assert got["precious.txt"] == hashlib.sha256(b"mine").hexdigest() and "sub/data.csv" in got
    assert json.loads((tmp_path / "u" / "metrics.json").read_text())["task"] == "removal"  # replaced: --overwrite


def test_export_failure_keeps_the_previous_export(world, tmp_path, monkeypatch, capsys):
    out = tmp_path / "maps"
    assert main(_export(world, out=out)) == 0
    before = tree_hash(out)
    assert {"fluctuation/a.png", "fluctuation/a.npy", "fluctuation/b.npy", "manifest.json", MARKER} <= set(before)
    _enospc_on_fsync(4)(world, monkeypatch)
    assert main(_export(world, "--window", "2", out=out)) == 2
    assert tree_hash(out) == before
    monkeypatch.undo()
    assert main(_export(world, "--window", "2", out=out)) == 0  # an earlier export: no --overwrite needed
    assert json.loads((out / "manifest.json").read_text())["window"] == 2


def test_query_png_rerun_replaces_its_own_file(world, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(_query(world, "--t", "10", "--format", "png")) == 0
    png = next(tmp_path.glob("query-a-t*.png"))
    assert main(_query(world, "--t", "10", "--format", "png")) == 0  # its own file: replaced
    assert png.stat().st_size > 0 and sorted(p.name for p in tmp_path.iterdir()) == [png.name]


# --- shared validation: one message everywhere -------------------------------------------------
def test_the_same_mistake_reads_the_same_in_the_api_and_the_cli(world, tmp_path, capsys):
    from cache.params import CubeParams
    from workbench.rates import RateSpec

    with pytest.raises(WorkbenchError) as api:
        CubeParams(K=0)
    assert main(_cubes(world, "--K", "0")) == 2
    assert capsys.readouterr().err.strip() == f"workbench cubes: error: {api.value}"
    with pytest.raises(WorkbenchError) as api:
        RateSpec("projected", k=0)
    main(_curve(world, "--rate", "projected", "--k", "0"))
    assert capsys.readouterr().err.strip() == f"workbench curve: error: {api.value}"


def test_validators():
    from workbench import validate as v

    assert v.check_steps(50, num_train_timesteps=1000) == 50
    for bad in (0, -3, 1001, 2.5, True, "50", None):
        with pytest.raises(WorkbenchError, match="steps must be"):
            v.check_steps(bad, num_train_timesteps=1000)
    assert v.check_window(3, n_kept=3) == 3
    with pytest.raises(WorkbenchError, match="only 2 timesteps"):
        v.check_window(3, n_kept=2)
    assert v.check_t_b(0) == 0.0
    for bad in (-1, float("nan"), float("inf"), 1000):
        with pytest.raises(WorkbenchError, match="t_b must be"):
            v.check_t_b(bad, num_train_timesteps=1000)
    assert v.check_device(None) in ("cpu", "cuda") and v.check_device("cpu") == "cpu"
    import torch

    assert v.check_dtype("bfloat16") is torch.bfloat16 and v.check_dtype(torch.float16) is torch.float16
    assert v.check_batch_size(32) == 32 and v.check_resolution(64, multiple=8) == 64
    for f, bad in ((v.check_batch_size, 0), (v.check_resolution, 0), (v.check_resolution, 60), (v.check_K, 0),
                   (v.check_iterations, -1), (v.check_seed, -1), (v.check_dtype, "float8")):
        with pytest.raises(WorkbenchError):
            f(bad, multiple=8) if f is v.check_resolution else f(bad)
    with pytest.raises(WorkbenchError, match="num_train_timesteps"):
        v.check_scheduler_config({"num_train_timesteps": 0}, "x.json")


def test_projected_rate_k_0_is_refused_not_an_all_zero_curve():
    from workbench.rates import RateSpec

    with pytest.raises(WorkbenchError, match="k must be"):
        RateSpec("projected", k=0)


# --- images of every PIL mode ------------------------------------------------------------------
def test_16_bit_grey_is_scaled_not_clipped(tmp_path):
    from workbench.images import read_image

    a = (np.arange(20 * 24).reshape(20, 24) * 136).astype(np.uint16)  # 0 .. 65144
    Image.fromarray(a).save(tmp_path / "g16.png")
    assert Image.open(tmp_path / "g16.png").mode.startswith("I")
    got = np.asarray(read_image(tmp_path / "g16.png"))
    want = np.round(a / 257.0).astype(np.uint8)  # independent: 65535 -> 255
    assert got.shape == (20, 24, 3) and (got[..., 0] == want).all() and (got[..., 2] == want).all()
    assert got.min() == 0 and got.max() > 250  # the bug: min = max = 255


@pytest.mark.parametrize("mode", ["I", "F", "F01", "LA", "P", "CMYK", "1", "RGBA", "I-wide", "F-negative"])
def test_every_pil_mode_becomes_8_bit_rgb(mode, tmp_path):
    from workbench.images import to_rgb

    rng = np.random.default_rng(1)
    g = rng.integers(0, 256, (6, 7)).astype(np.uint8)
    if mode == "I":
        im, want = Image.fromarray(g.astype(np.int32)), g
    elif mode == "I-wide":  # 32-bit integers beyond 16 bits: min-max scaled
        v = g.astype(np.int64) * 100000
        im, want = Image.fromarray(v.astype(np.int32)), np.round((v - v.min()) / (v.max() - v.min()) * 255)
    elif mode == "F":
        im, want = Image.fromarray(g.astype(np.float32)), g
    elif mode == "F01":
        im, want = Image.fromarray(g.astype(np.float32) / 255), g
    elif mode == "F-negative":
        v = g.astype(np.float32) - 100
        im, want = Image.fromarray(v), np.round((v - v.min()) / (v.max() - v.min()) * 255)
    elif mode == "LA":
        im, want = Image.fromarray(np.stack([g, np.zeros_like(g)], -1), "LA"), g
    elif mode == "RGBA":
        im, want = Image.fromarray(np.stack([g, g, g, np.zeros_like(g)], -1), "RGBA"), g
    elif mode == "P":
        im = Image.fromarray(g).convert("P")  # the grey palette: exact
        want = np.asarray(Image.fromarray(g).convert("RGB"))[..., 0]
    elif mode == "CMYK":
        cmyk = np.stack([np.zeros_like(g)] * 3 + [255 - g], -1)  # K only: grey = 255 - K
        im, want = Image.fromarray(cmyk, "CMYK"), g
    else:
        im, want = Image.fromarray(g > 127).convert("1"), (g > 127) * 255
    rgb = to_rgb(im)
    assert rgb.mode == "RGB" and rgb.size == (7, 6)
    got = np.asarray(rgb).astype(int)
    np.testing.assert_allclose(got[..., 0], np.asarray(want, dtype=float), atol=1)
    np.testing.assert_array_equal(got[..., 0], got[..., 2])


def test_16_bit_image_gives_the_same_cube_as_its_8_bit_copy(world, tmp_path):
    from cache.build import compute_cube
    from cache.params import CubeParams
    from workbench.adapters import load_model

    g8 = np.asarray(Image.open(world.img).convert("L"))
    Image.fromarray(g8.astype(np.uint16) * 257).save(tmp_path / "g16.png")
    Image.fromarray(g8).save(tmp_path / "g8.png")
    ad = load_model(world.model, device="cpu")
    p = CubeParams(K=1, steps=2)
    a = compute_cube(ad, tmp_path / "g16.png", p)["rate"].values
    b = compute_cube(ad, tmp_path / "g8.png", p)["rate"].values
    np.testing.assert_allclose(a, b, rtol=1e-5)


# --- real subprocess runs ----------------------------------------------------------------------
def _cli(*args, cwd, stdout=None, preexec=None):
    return subprocess.run([sys.executable, "-m", "workbench.cli", *args], stdout=stdout or subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=300, cwd=cwd, preexec_fn=preexec)


def _one_error_line(r, last: bool = False) -> str:
    lines = [ln.strip() for ln in ANSI.sub("", r.stderr).replace("\r", "\n").splitlines() if ln.strip()]
    errors = [ln for ln in lines if ": error: " in ln]
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert len(errors) == 1 and errors[0] == lines[-1] and (last or len(lines) == 1), r.stderr
    return lines[-1]


def test_subprocess_bad_steps_and_edit_into_user_folder(world, tmp_path):
    line = _one_error_line(_cli(*_curve(world, "--steps", "0"), cwd=tmp_path))
    assert line == "workbench curve: error: steps must be a whole number >= 1, got 0"
    _mk(tmp_path / "u", USER_FILES)
    before = tree_hash(tmp_path / "u")
    line = _one_error_line(_cli(*_edit(world, out=tmp_path / "u"), cwd=tmp_path))
    assert "--overwrite" in line and tree_hash(tmp_path / "u") == before


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full on this system")
def test_subprocess_stdout_on_a_full_disk(world, tmp_path):
    with open("/dev/full", "w") as full:
        r = _cli("query", str(world.store), "--image", "a", "--pixel", "1,1", cwd=tmp_path, stdout=full)
    assert "No space left on device" in _one_error_line(r)


def test_subprocess_file_size_limit_leaves_the_export_folder_as_it_was(world, tmp_path):
    out = tmp_path / "maps"
    _mk(out, {"precious.txt": "mine"})
    before = tree_hash(out)

    def limit():  # a real EFBIG on the first map bigger than 600 bytes (and no SIGXFSZ kill)
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (600, 600))
    r = _cli("export", str(world.store), "--out", str(out), "--overwrite", cwd=tmp_path, preexec=limit)
    line = _one_error_line(r, last=True)  # the export's progress bar ran before the limit was hit
    assert "could not write" in line and "nothing in" in line and "ulimit" in line
    assert tree_hash(out) == before
