"""A synthetic demonstration store and saliency data set for screenshots and trying the dashboards
without a model or a real data set (everything here is made up and says so in its names).

    python -m devtools.demo OUT        # OUT/store (cubes) and OUT/pairs (NAME.png + NAME_map.png)

Images of two sizes (800x600 and 1024x683, like OSIE and MIT1003), fixations drawn from the images'
own contrast plus a centre bias, and `devtools.synthetic` cubes of each image with K 32, plus a
second kind (K 8) for one image, so Saliency has a cube choice and sAUC across sizes to show.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from .synthetic import synthetic_cube, synthetic_image

__all__ = ["make_demo", "main"]

_SIZES = ((600, 800), (683, 1024), (600, 800), (683, 1024))


def _fixations(rgb: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """n fixation points (bool (H, W)) drawn from the image's edge strength times a centre bias."""
    grey = Image.fromarray(rgb).convert("L")
    edges = np.asarray(grey.filter(ImageFilter.FIND_EDGES).filter(ImageFilter.GaussianBlur(12)), dtype=np.float64)
    H, W = edges.shape
    edges[:24], edges[-24:], edges[:, :24], edges[:, -24:] = 0, 0, 0, 0  # the frame is no edge of the scene
    yy, xx = np.mgrid[0:H, 0:W]
    centre = np.exp(-(((yy - H / 2) / (0.35 * H)) ** 2 + ((xx - W / 2) / (0.35 * W)) ** 2))
    p = (edges + 1e-3) * centre
    idx = rng.choice(p.size, size=n, replace=False, p=(p / p.sum()).ravel())
    out = np.zeros(p.size, bool)
    out[idx] = True
    return out.reshape(H, W)


def make_demo(out: Path, *, seed: int = 0) -> tuple[Path, Path]:
    """Write OUT/pairs and OUT/store; returns (store, pairs)."""
    from cache.store import CubeStore

    rng = np.random.default_rng(seed)
    pairs, store = out / "pairs", CubeStore(out / "store")
    pairs.mkdir(parents=True, exist_ok=True)
    for i, (H, W) in enumerate(_SIZES):
        name = f"demo{i + 1}"
        rgb = np.asarray(Image.fromarray(synthetic_image(256, seed + i)).resize((W, H), Image.Resampling.BICUBIC))
        path = pairs / f"{name}.png"
        Image.fromarray(rgb).save(path)
        Image.fromarray((_fixations(rgb, 80, rng) * 255).astype(np.uint8)).save(pairs / f"{name}_map.png")
        for K in ((32, 8) if i == 0 else (32,)):
            ds = synthetic_cube(48, 64, 50, image=rgb, name=name, seed=seed + 10 * i + K, relative_se=0.15)
            ds.attrs.update(source_image=str(path), source_size=[H, W], K=K, k=K)
            store.put(ds)
    return store.path, pairs


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m devtools.demo", description=__doc__.split("\n")[0])
    ap.add_argument("out")
    args = ap.parse_args(argv)
    store, pairs = make_demo(Path(args.out))
    print(f"workbench dashboard --store {store} --dataset {pairs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
