"""`workbench query STORE --image NAME --pixel X,Y | --region MASK.png | --t T`: curves and maps from a store."""
from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from PIL.PngImagePlugin import PngInfo

from ..curve_kinds import CURVE_KINDS
from ..errors import WorkbenchError
from ..images import read_image
from ..validate import check_timestep
from .common import add_overwrite_arg, output_from, parse_xy

#: PNG text chunk of every PNG `workbench query` writes: how a rerun knows the file is its own.
PNG_SOFTWARE = "genrate-workbench query"
_TEXT_STARTS = ("# image=", "name,key,", '{"image": ')  # its CSV and JSON layouts


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "query", help="curve of a pixel or region, or the rate map at a timestep, from a cube store",
        description="Read a stored cube (see `workbench cubes`): the generation curve of one pixel (--pixel X,Y in "
                    "the source image's pixels) or the mean curve of a region (--region MASK.png, white = inside, at "
                    "the source image's size), or the rate map at the timestep nearest to --t. --list shows the "
                    "store's cubes.")
    p.add_argument("store", help="cube store folder")
    p.add_argument("--image", default=None, help="image name (file stem), path or cube key")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--pixel", default=None, help="X,Y in the source image's pixel coordinates")
    what.add_argument("--region", default=None, help="mask image (white = region) at the source image's size")
    what.add_argument("--t", type=int, default=None, help="timestep: the rate map at the nearest stored timestep")
    what.add_argument("--list", action="store_true", help="list the store's complete cubes")
    p.add_argument("--curve", default="rate", choices=CURVE_KINDS,
                   help="rate: the per-step curve the cube stores (default); accumulated: its running integral over "
                        "the generation with the DDIM step widths (docs/format.md)")
    p.add_argument("--rate", default=None, help="only cubes of this rate definition (when a store holds several)")
    p.add_argument("--estimator", default=None, help="only cubes of this estimator")
    p.add_argument("--K", type=int, default=None, help="only cubes with this K")
    p.add_argument("--steps", type=int, default=None, help="only cubes with this many DDIM steps")
    p.add_argument("--format", default=None, choices=("csv", "json", "png"),
                   help="output format (default: from --out's suffix, else csv)")
    p.add_argument("--out", default=None, help="output file (default: stdout for csv/json)")
    add_overwrite_arg(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from cache.store import CubeStore

    if args.t is not None:
        check_timestep(args.t)  # before the store is read: a huge --t is one line, not an OverflowError
    store = CubeStore(args.store, create=False)
    fmt = args.format or (Path(args.out).suffix.lstrip(".").lower() if args.out else "csv")
    if fmt not in ("csv", "json", "png"):
        raise WorkbenchError(f"cannot tell the format from {args.out!r}: pass --format csv|json|png")
    if args.out is not None:  # a folder, a device or someone else's file: refused before reading anything
        _target(args.out, args)
    if args.list:
        return _emit_text(_list_text(store.index(), fmt), args)
    if args.image is None or (args.pixel is None and args.region is None and args.t is None):
        raise WorkbenchError("say what to read: --image NAME with --pixel X,Y, --region MASK.png or --t T "
                             "(or --list)")
    filters = {k: v for k, v in (("rate_definition", args.rate), ("estimator", args.estimator), ("K", args.K),
                                 ("steps", args.steps)) if v is not None}
    hits = store.find_all(args.image, **filters)
    if not hits:
        names = sorted({r["name"] for r in store.index()})
        hint = f" (it has: {', '.join(names[:6])}{' ...' if len(names) > 6 else ''})" if names else " (it is empty)"
        raise WorkbenchError(f"no cube of {args.image!r}{' with ' + str(filters) if filters else ''} in {store.path}"
                             f"{hint}: compute it with `workbench cubes`")
    if len({r["source_image"] for r in hits}) > 1:
        raise WorkbenchError(f"{args.image!r} names {len({r['source_image'] for r in hits})} images in {store.path}: "
                             "pass the image path or the key (see --list)")
    if len(hits) > 1:
        kinds = "; ".join(f"--rate {r['rate_definition']} --estimator {r['estimator']} --K {r['K']} --steps "
                          f"{r['steps']}" for r in hits[:4])
        raise WorkbenchError(f"{args.image!r} has {len(hits)} cubes in {store.path} ({kinds}): pick one with those "
                             "options or pass its key")
    key = hits[0]["key"]
    ds = store.open(key)
    name = Path(str(ds.attrs.get("source_image") or key)).stem
    meta = {"image": name, "key": key, "source_image": ds.attrs.get("source_image"),
            "rate_definition": ds.attrs.get("rate_definition"), "estimator": ds.attrs.get("estimator"),
            "K": ds.attrs.get("K"), **({"curve": args.curve} if args.curve != "rate" else {})}
    if args.t is not None:
        m = ds.curves.at(args.t, kind=args.curve)
        meta.update(timestep=int(m.timestep), requested_t=args.t)
        if fmt == "png":
            size = tuple(int(v) for v in np.atleast_1d(ds.attrs.get("source_size", [ds.sizes["iy"], ds.sizes["ix"]])))
            png = _map_png(m.values, size[:2])
            return _emit_bytes(png, _out(args, name, f"t{int(m.timestep)}"), args)
        return _emit_text(_map_text(m.values, meta, fmt), args)
    if args.pixel is not None:
        x, y = parse_xy(args.pixel)
        my, mx = ds.curves.source_pixel(x, y)
        curve = ds.curves.pixel(my, mx, kind=args.curve)
        meta.update(pixel=[x, y], model_pixel=[mx, my])
        title, tag = f"{name} pixel ({x}, {y})", f"x{x}-y{y}"
    else:
        weights = _region_weights(args.region, ds)
        curve = ds.curves.region(weights, kind=args.curve)
        meta.update(region=str(args.region), region_pixels=float(weights.sum()))
        title, tag = f"{name} region {Path(args.region).name}", f"region-{Path(args.region).stem}"
    ts, vals = curve.timestep.values.astype(int).tolist(), curve.values.astype(float).tolist()
    se = curve.coords["rate_se"].values.astype(float).tolist() if "rate_se" in curve.coords else None
    if fmt == "png":
        return _emit_bytes(_curve_png(ts, vals, title, ylabel=args.curve), _out(args, name, tag), args)
    return _emit_text(_curve_text(ts, vals, meta, fmt, se, column=args.curve), args)


# --- inputs ---------------------------------------------------------------------------------
def _region_weights(path: str, ds) -> np.ndarray:
    """Mask image at the source size -> fraction of each model-grid cell inside (H, W)."""
    H0, W0 = (int(v) for v in np.atleast_1d(ds.attrs["source_size"])[:2])
    mask = read_image(path).convert("L")
    if mask.size != (W0, H0):
        raise WorkbenchError(f"the mask {path} is {mask.width}x{mask.height} but the image is {W0}x{H0}: draw the "
                             "mask at the source image's size")
    inside = Image.fromarray(((np.asarray(mask) > 127) * 255).astype(np.uint8))
    H, W = ds.sizes["y"], ds.sizes["x"]
    frac = np.asarray(inside.resize((W, H), Image.Resampling.BOX), dtype=np.float64) / 255.0
    if frac.sum() <= 0:
        raise WorkbenchError(f"the mask {path} selects no pixel (white = inside): draw the region in white")
    return frac


def _out(args, name: str, tag: str) -> str:
    return args.out or f"query-{name}-{tag}.png"


# --- outputs --------------------------------------------------------------------------------
def _is_ours(path: Path) -> bool:
    """A file an earlier `workbench query` wrote: a PNG carrying its text chunk, or its CSV/JSON layout."""
    with open(path, "rb") as fh:
        head = fh.read(64)
    if head.startswith(b"\x89PNG"):
        with Image.open(path) as im:
            return im.info.get("Software") == PNG_SOFTWARE
    return head.decode("utf-8", "replace").startswith(_TEXT_STARTS)


def _target(out: str, args):
    return output_from(args, out).file("query", ours=_is_ours)


def _emit_text(text: str, args) -> int:
    if args.out:
        _target(args.out, args).write_bytes(text.encode("utf-8"))
        print(f"# wrote {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def _emit_bytes(data: bytes, out: str, args) -> int:
    _target(out, args).write_bytes(data)
    print(f"# wrote {out}", file=sys.stderr)
    return 0


def _png(img) -> bytes:
    """PNG bytes with the query's text chunk."""
    info = PngInfo()
    info.add_text("Software", PNG_SOFTWARE)
    buf = io.BytesIO()
    img.save(buf, format="PNG", pnginfo=info)
    return buf.getvalue()


def _list_text(rows: list[dict], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(rows, indent=1) + "\n"
    cols = ("name", "key", "rate_definition", "estimator", "K", "seed", "steps", "channel_rule", "model_name",
            "source_image")
    buf = io.StringIO()  # the csv module quotes names holding commas, quotes or newlines
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(cols)
    w.writerows([["" if r.get(c) is None else r.get(c) for c in cols] for r in rows])
    return buf.getvalue()


def _header(meta: dict) -> str:
    """The `# key=value ...` line above a CSV: a value with spaces, quotes, '=' or a line break is
    written as a JSON string, so the header stays one line and splits back into its fields."""
    def value(v) -> str:
        text = str(v)
        plain = text and text.isprintable() and not any(c.isspace() or c in '"=#' for c in text)
        return text if plain else json.dumps(text)

    return "# " + " ".join(f"{k}={value(v)}" for k, v in meta.items() if v is not None)


def _curve_text(ts: list[int], vals: list[float], meta: dict, fmt: str, se: list[float] | None = None, *,
                column: str = "rate") -> str:
    """A curve as JSON or CSV under `column` ('rate' or 'accumulated'); with its standard errors `se`
    (cubes of schema >= 3) as `<column>_se`."""
    if fmt == "json":
        return json.dumps({**meta, "timestep": ts, column: vals, **({f"{column}_se": se} if se is not None else {})}) \
            + "\n"
    head = _header(meta)
    if se is None:
        return "\n".join([head, f"timestep,{column}"] + [f"{t},{v:.7g}" for t, v in zip(ts, vals)]) + "\n"
    return "\n".join([head, f"timestep,{column},{column}_se"] +
                     [f"{t},{v:.7g},{e:.7g}" for t, v, e in zip(ts, vals, se)]) + "\n"


def _map_text(m: np.ndarray, meta: dict, fmt: str) -> str:
    if fmt == "json":
        return json.dumps({**meta, "shape": list(m.shape), "map": m.astype(float).round(7).tolist()}) + "\n"
    head = _header(meta) + " (rows = y, columns = x)"
    return "\n".join([head] + [",".join(f"{v:.7g}" for v in row) for row in m]) + "\n"


def _viridis(u: np.ndarray) -> np.ndarray:
    """Values in [0, 1] -> RGB uint8 via bokeh's 256-colour Viridis palette."""
    from bokeh.palettes import Viridis256

    lut = np.array([[int(h[i:i + 2], 16) for i in (1, 3, 5)] for h in Viridis256], dtype=np.uint8)
    return lut[np.clip((u * 255).round().astype(int), 0, 255)]


def _map_png(m: np.ndarray, size: tuple[int, int]) -> bytes:
    """Rate map -> Viridis PNG at the source image's aspect (size = (H0, W0); longer side at least
    256 px; nearest upsampling), min-max scaled."""
    lo, hi = float(np.nanmin(m)), float(np.nanmax(m))
    u = (m - lo) / (hi - lo) if hi > lo else np.zeros_like(m)
    H0, W0 = size
    f = max(1.0, 256 / max(H0, W0))
    img = Image.fromarray(_viridis(u)).resize((round(W0 * f), round(H0 * f)), Image.Resampling.NEAREST)
    return _png(img)


def _curve_png(ts: list[int], vals: list[float], title: str, size: tuple[int, int] = (640, 400), *,
               ylabel: str = "rate") -> bytes:
    """A plain line chart (`ylabel`, the curve kind, against timestep) drawn with PIL."""
    W, H = size
    left, right, top, bottom = 70, 20, 30, 45
    img = Image.new("RGB", size, "white")
    d = ImageDraw.Draw(img)
    t0, t1 = min(ts), max(ts)
    lo, hi = min(vals), max(vals)
    hi = hi if hi > lo else lo + 1.0
    px = lambda t: left + (t - t0) / max(t1 - t0, 1) * (W - left - right)  # noqa: E731
    py = lambda v: H - bottom - (v - lo) / (hi - lo) * (H - top - bottom)  # noqa: E731
    d.rectangle([left, top, W - right, H - bottom], outline=(120, 120, 120))
    for frac in (0.0, 0.5, 1.0):
        v, t = lo + frac * (hi - lo), t0 + frac * (t1 - t0)
        d.text((4, py(v) - 6), f"{v:.3g}", fill="black")
        d.text((px(t) - 10, H - bottom + 6), f"{t:.0f}", fill="black")
    d.line([(px(t), py(v)) for t, v in zip(ts, vals)], fill=(31, 119, 180), width=2)
    d.text((left, 8), title, fill="black")
    d.text((W // 2 - 30, H - 18), "timestep t", fill="black")
    d.text((4, 16), ylabel, fill="black")
    return _png(img)
