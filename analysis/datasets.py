"""Saliency data sets on disk -> `SaliencyItem`s (image path, binary fixations, fixation density).

Three layouts are read:
  OSIE       ROOT/data/stimuli/*.jpg + ROOT/data/eye/fixations.mat (struct array, one entry per image,
             field `img` names it; `subjects[k].fix_x/fix_y` are 1-based pixel coordinates)
  MIT/CAT2000  ROOT/Stimuli/<category>/*.jpg + ROOT/FIXATIONMAPS/<category>/*.jpg (density maps), optional
             ROOT/FIXATIONLOCS/<category>/*.mat (binary fixation locations; else the density's local maxima)
  pairs      a folder of `NAME.<img>` + `NAME_map.<png|jpg>` (or `NAME_fixmap`, `NAME_saliency`) pairs
`open_dataset(path)` detects the layout. Every ground-truth map is at the image's own resolution
(H0, W0); `resize_map` is the one function that moves maps between grids (model grid -> image,
image -> model grid), bilinear and antialiased, used identically everywhere.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.io as sio
import torch
from PIL import Image
from scipy.ndimage import gaussian_filter, maximum_filter

from workbench.errors import WorkbenchError
from workbench.splits import DEFAULT_HELD_OUT, split_held_out

__all__ = ["SaliencyItem", "load_osie", "load_cat2000", "load_pairs", "open_dataset", "resize_map",
           "fixation_points", "fixation_density", "DEFAULT_SIGMA_DEG_PX", "IMAGE_SUFFIXES", "dataset_images",
           "select_images"]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
#: the OSIE authors' blur: sigma = 24 px at 800x600 (about one degree of visual angle), i.e. 0.03 x width
DEFAULT_SIGMA_DEG_PX = 24.0


@dataclass(frozen=True)
class SaliencyItem:
    """One image with its human ground truth, both at the image's resolution (H0, W0).

    fixations: bool (H0, W0), True at every fixated pixel (all subjects); density: float32 (H0, W0)
    in [0, 1], the blurred fixation map (or the data set's own map). `category` is '' when none.
    """

    name: str
    image_path: Path
    fixations: np.ndarray = field(repr=False)
    density: np.ndarray = field(repr=False)
    category: str = ""

    @property
    def size(self) -> tuple[int, int]:
        return tuple(self.fixations.shape)  # (H0, W0)


def resize_map(m: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize a 2-D map to `size` = (H, W): bilinear, antialiased when shrinking, float32.

    The one resize used for every saliency map (model grid -> image, image -> model grid), so that
    maps and ground truth always meet the same way. A map already of that size is returned as is.
    """
    a = np.asarray(m, dtype=np.float32)
    if a.ndim != 2:
        raise WorkbenchError(f"a saliency map must be 2-D (H, W), got shape {a.shape}")
    size = (int(size[0]), int(size[1]))
    if a.shape == size:
        return a
    if min(size) < 1:
        raise WorkbenchError(f"cannot resize a map to {size[1]}x{size[0]}")
    t = torch.from_numpy(np.ascontiguousarray(a))[None, None]
    out = torch.nn.functional.interpolate(t, size=size, mode="bilinear", align_corners=False,
                                          antialias=size[0] < a.shape[0] or size[1] < a.shape[1])
    return out[0, 0].numpy()


def fixation_points(xs, ys, size: tuple[int, int], *, one_based: bool = True) -> np.ndarray:
    """Binary fixation map (H, W) from fixation coordinates (x = column, y = row), rounded to the
    nearest pixel; points outside the image are dropped."""
    H, W = size
    x = np.round(np.atleast_1d(np.asarray(xs, dtype=np.float64))).astype(np.int64) - int(one_based)
    y = np.round(np.atleast_1d(np.asarray(ys, dtype=np.float64))).astype(np.int64) - int(one_based)
    if x.shape != y.shape:
        raise WorkbenchError(f"{x.size} x coordinates but {y.size} y coordinates: the fixation lists must pair up")
    ok = (x >= 0) & (x < W) & (y >= 0) & (y < H)
    out = np.zeros((H, W), dtype=bool)
    out[y[ok], x[ok]] = True
    return out


def fixation_density(fixations: np.ndarray, sigma: float = DEFAULT_SIGMA_DEG_PX, *,
                     counts: np.ndarray | None = None) -> np.ndarray:
    """Blurred fixation map: Gaussian (sigma in pixels) over the fixation points (or `counts`, the
    number of fixations per pixel), scaled to [0, 1]. float32 (H, W)."""
    if sigma <= 0:
        raise WorkbenchError(f"the fixation blur sigma must be > 0 pixels, got {sigma}")
    src = np.asarray(counts if counts is not None else fixations, dtype=np.float64)
    if not src.any():
        raise WorkbenchError("no fixations to blur: the image has an empty fixation list")
    d = gaussian_filter(src, sigma, mode="constant")
    return (d / d.max()).astype(np.float32)


def _image_size(path: Path) -> tuple[int, int]:
    try:
        with Image.open(path) as im:
            return im.height, im.width
    except Exception as exc:
        raise WorkbenchError(f"{path} is not a readable image ({type(exc).__name__})") from None


def _read_gray(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("F"), dtype=np.float32)
    except Exception as exc:
        raise WorkbenchError(f"{path} is not a readable map image ({type(exc).__name__})") from None


# ---------------------------------------------------------------------------------------- OSIE
def _osie_paths(root: Path) -> tuple[Path, Path]:
    for base in (root, root / "data"):
        stim, mat = base / "stimuli", base / "eye" / "fixations.mat"
        if stim.is_dir() and mat.is_file():
            return stim, mat
    raise WorkbenchError(f"{root} is not an OSIE folder: expected data/stimuli/*.jpg and data/eye/fixations.mat")


def load_osie(root: str | Path, *, sigma: float = DEFAULT_SIGMA_DEG_PX, names: list[str] | None = None,
              drop_empty: bool = False) -> list[SaliencyItem]:
    """OSIE (Xu et al. 2014): every image of `root` (or those whose file names are in `names`) with the
    fixations of all subjects (1-based `fix_x`, `fix_y` at 800x600) and their blurred map (sigma px).

    An image with no fixation raises (or is dropped with `drop_empty=True`).
    """
    stim, mat = _osie_paths(Path(root))
    try:
        recs = np.atleast_1d(sio.loadmat(mat, squeeze_me=True, struct_as_record=False)["fixations"])
    except Exception as exc:
        raise WorkbenchError(f"{mat} is not an OSIE fixations.mat ({type(exc).__name__}: {exc})") from None
    wanted = None if names is None else set(names)
    items = []
    for rec in recs:
        img = str(rec.img)
        if wanted is not None and img not in wanted and Path(img).stem not in wanted:
            continue
        path = stim / img
        if not path.is_file():
            raise WorkbenchError(f"fixations.mat names {img}, but {path} is missing: restore the stimuli folder")
        size = _image_size(path)
        fix = np.zeros(size, dtype=bool)
        counts = np.zeros(size, dtype=np.float64)
        for subj in np.atleast_1d(rec.subjects):
            pts = fixation_points(getattr(subj, "fix_x", []), getattr(subj, "fix_y", []), size)
            fix |= pts
            counts += pts
        if not fix.any():
            if drop_empty:
                continue
            raise WorkbenchError(f"{img} has an empty fixation list in {mat}: drop it (drop_empty=True)")
        items.append(SaliencyItem(Path(img).stem, path, fix, fixation_density(fix, sigma, counts=counts)))
    if not items:
        raise WorkbenchError(f"no OSIE images selected from {root}" + (f" (asked for {sorted(wanted)[:3]}...)"
                                                                       if wanted else ""))
    return sorted(items, key=lambda it: it.image_path.name)


# ----------------------------------------------------------------------------------- CAT2000
def _fixlocs(path: Path, size: tuple[int, int]) -> np.ndarray:
    try:
        m = sio.loadmat(path, squeeze_me=True)
    except Exception as exc:
        raise WorkbenchError(f"{path} is not a readable .mat file ({type(exc).__name__})") from None
    arrs = [v for k, v in m.items() if not k.startswith("__") and isinstance(v, np.ndarray) and v.ndim == 2]
    if not arrs:
        raise WorkbenchError(f"{path} holds no 2-D fixation-location array")
    a = arrs[0]
    if a.shape != tuple(size):
        raise WorkbenchError(f"{path} is {a.shape[1]}x{a.shape[0]} but its image is {size[1]}x{size[0]}: "
                             "the fixation locations must be at the image's resolution")
    return a > 0


def _local_maxima(d: np.ndarray) -> np.ndarray:
    return (d == maximum_filter(d, size=15)) & (d > 0.5 * d.max())


def load_cat2000(root: str | Path, *, categories: list[str] | None = None, names: list[str] | None = None,
                 sigma: float | None = None) -> list[SaliencyItem]:
    """MIT/CAT2000 layout: Stimuli/<category>/*.jpg with FIXATIONMAPS/<category>/<same stem>.* density
    maps (used as they are, scaled to [0, 1]) and, when present, FIXATIONLOCS/<category>/<stem>.mat
    binary fixations; without them the density map's strong local maxima stand in for fixations.
    `sigma` is accepted for a uniform call signature and unused: the data set's own maps are the density."""
    root = Path(root)
    stim, maps = root / "Stimuli", root / "FIXATIONMAPS"
    if not stim.is_dir() or not maps.is_dir():
        raise WorkbenchError(f"{root} is not a CAT2000/MIT folder: expected Stimuli/ and FIXATIONMAPS/")
    locs = root / "FIXATIONLOCS"
    items = []
    for img in sorted(p for p in stim.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES):
        rel = img.relative_to(stim)
        cat = rel.parent.as_posix() if rel.parent != Path(".") else ""
        if categories is not None and cat not in categories:
            continue
        if names is not None and img.name not in names and img.stem not in names:
            continue
        cands = [p for p in (maps / rel.parent).glob(img.stem + ".*") if p.suffix.lower() in IMAGE_SUFFIXES]
        if not cands:
            raise WorkbenchError(f"no fixation map for {rel} in {maps / rel.parent}: every stimulus needs one")
        size = _image_size(img)
        d = _read_gray(cands[0])
        if d.shape != size:
            raise WorkbenchError(f"fixation map {cands[0].name} is {d.shape[1]}x{d.shape[0]} but {rel} is "
                                 f"{size[1]}x{size[0]}: the maps must be at the image's resolution")
        if not d.max() > 0:
            raise WorkbenchError(f"fixation map {cands[0]} is all zeros: it cannot be a ground truth")
        d = (d / d.max()).astype(np.float32)
        loc = locs / rel.parent / (img.stem + ".mat")
        fix = _fixlocs(loc, size) if loc.is_file() else _local_maxima(d)
        if not fix.any():
            raise WorkbenchError(f"{loc} has no fixations: an image needs at least one")
        name = f"{cat}/{img.stem}" if cat else img.stem
        items.append(SaliencyItem(name, img, fix, d, cat))
    if not items:
        raise WorkbenchError(f"{stim} holds no images" + (f" in categories {categories}" if categories else ""))
    return items


# ------------------------------------------------------------------------------------- pairs
_MAP_SUFFIXES = ("_map", "_fixmap", "_fixations", "_saliency", "_density")


def load_pairs(folder: str | Path, *, sigma: float = DEFAULT_SIGMA_DEG_PX,
               names: list[str] | None = None) -> list[SaliencyItem]:
    """A plain folder of image + map pairs (`NAME.jpg` + `NAME_map.png`, or `_fixmap`, `_saliency`,
    `_density`). A map with few distinct values (a binary fixation map) is blurred with `sigma`; a
    grey-level map is the density, and its strong local maxima stand in for fixations."""
    folder = Path(folder)
    if not folder.is_dir():
        raise WorkbenchError(f"no such folder: {folder}")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    maps = {p.stem: p for p in files if p.stem.endswith(_MAP_SUFFIXES)}
    items = []
    for img in files:
        if img.stem in maps or (names is not None and img.name not in names and img.stem not in names):
            continue
        m = next((maps[img.stem + s] for s in _MAP_SUFFIXES if img.stem + s in maps), None)
        if m is None:
            continue
        size = _image_size(img)
        a = _read_gray(m)
        if a.shape != size:
            raise WorkbenchError(f"map {m.name} is {a.shape[1]}x{a.shape[0]} but {img.name} is {size[1]}x{size[0]}:"
                                 " a map must have its image's size")
        if not a.max() > 0:
            raise WorkbenchError(f"map {m} is all zeros: it cannot be a ground truth")
        if np.unique(a).size <= 2:  # binary fixation points
            fix = a > 0.5 * a.max()
            d = fixation_density(fix, sigma)
        else:
            d = (a / a.max()).astype(np.float32)
            fix = _local_maxima(d)
        items.append(SaliencyItem(img.stem, img, fix, d))
    if not items:
        raise WorkbenchError(f"{folder} holds no image + map pairs: name maps NAME_map.png beside NAME.jpg")
    return items


def open_dataset(path: str | Path, **kw) -> list[SaliencyItem]:
    """Load a saliency data set, detecting its layout (OSIE, MIT/CAT2000, or a folder of pairs)."""
    p = Path(path)
    if not p.exists():
        raise WorkbenchError(f"no such data set folder: {p} (check --data)")
    if (p / "Stimuli").is_dir() and (p / "FIXATIONMAPS").is_dir():
        return load_cat2000(p, **kw)
    if any((b / "eye" / "fixations.mat").is_file() for b in (p, p / "data")):
        return load_osie(p, **kw)
    return load_pairs(p, **kw)


def dataset_images(path: str | Path) -> list[Path]:
    """The stimulus images of a data set folder (any layout), sorted by file name, without loading maps."""
    p = Path(path)
    if (p / "Stimuli").is_dir():
        return sorted((q for q in (p / "Stimuli").rglob("*") if q.suffix.lower() in IMAGE_SUFFIXES),
                      key=lambda q: q.name)
    for b in (p, p / "data"):
        if (b / "stimuli").is_dir():
            return sorted(q for q in (b / "stimuli").iterdir() if q.suffix.lower() in IMAGE_SUFFIXES)
    if not p.is_dir():
        raise WorkbenchError(f"no such data set folder: {p} (check --data)")
    files = sorted(q for q in p.iterdir() if q.suffix.lower() in IMAGE_SUFFIXES)
    return [q for q in files if not q.stem.endswith(_MAP_SUFFIXES)]


def select_images(images: list[Path], which: str | int, *, held_out: int = DEFAULT_HELD_OUT,
                  dev: int = 24) -> list[Path]:
    """Select images of the held-out split (`workbench.splits.split_held_out`, in its order):
    'held-out' = the held-out part (the last `held_out` by file name; the shipped model was trained
    on the others), 'dev' = `dev` evenly spaced images of the training part (stride len // dev),
    'dev:N' the first N of those, 'all', or a number N = the first N held-out images. A selection
    that comes out empty (a data set smaller than the split asks) is a one-line error."""
    train, pool = split_held_out(images, held_out)
    if not train and not pool:
        raise WorkbenchError("the data set has no images")
    if which == "all":
        return train + pool
    if not pool and (which == "held-out" or not str(which).startswith("dev")):
        raise WorkbenchError(f"--images {which}: --held-out {held_out} holds no image out: use --held-out 1 or more")
    if which == "held-out":
        return pool
    if which == "dev" or str(which).startswith("dev:"):
        if not train:
            raise WorkbenchError(f"--images {which}: all {len(pool)} images are held out (--held-out {held_out}), "
                                 "none is left for dev: lower --held-out")
        picked = train[::max(1, len(train) // dev)][:dev]
        if which == "dev":
            return picked
        try:
            return picked[:max(1, int(str(which)[4:]))]
        except ValueError:
            raise WorkbenchError(f"--images {which!r}: write dev:N with a number N") from None
    try:
        n = int(which)
    except ValueError:
        raise WorkbenchError(f"--images {which!r}: use held-out, dev, all or a number") from None
    if n < 1:
        raise WorkbenchError(f"--images {n}: ask for at least one image")
    return pool[:n]
