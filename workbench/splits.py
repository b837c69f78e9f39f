"""The held-out split: the images a model never trained on, which analyses score on.

One rule for training (`workbench train`), cube precompute (`workbench cubes --split`) and the
experiments (`workbench experiment ... --images held-out`, the information experiment):

- **sort key**: the file name, then the whole path (`held_out_sort_key`). The name decides, so the
  split does not depend on where a data set lies; the path only orders files of the same name in
  different folders (CAT2000 repeats names across its categories), so the order never depends on
  the order in which the file system lists a folder;
- **held out**: the last `held_out` images in that order; the others are the training part;
- **small sets**: `held_out` 0 holds nothing out; `held_out` >= the number of images holds every
  image out and leaves the training part empty, which is an error only where a caller needs
  training images (`need_train=True`: training a model, fitting a readout). A negative size is an
  error. The flag is `--held-out N` everywhere (default 50; `--holdout` is a deprecated alias).
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

from .errors import WorkbenchError

__all__ = ["DEFAULT_HELD_OUT", "held_out_sort_key", "split_held_out"]

#: the shipped model was trained on OSIE without its last 50 images by file name
DEFAULT_HELD_OUT = 50


def held_out_sort_key(path: str | Path) -> tuple[str, str]:
    """The order of the split: (file name, whole path)."""
    p = Path(path)
    return (p.name, str(p))


def split_held_out(images: Iterable[str | Path], held_out: int, *,
                   need_train: bool = False) -> tuple[list[Path], list[Path]]:
    """(training part, held-out part) of `images`, each in `held_out_sort_key` order: the last
    `held_out` images are held out. `need_train`: an empty training part is a one-line error."""
    if isinstance(held_out, bool) or not isinstance(held_out, int) or held_out < 0:
        raise WorkbenchError(f"--held-out must be a whole number >= 0, got {held_out!r}")
    ordered = sorted((Path(p) for p in images), key=held_out_sort_key)
    cut = max(0, len(ordered) - held_out)
    train, held = ordered[:cut], ordered[cut:]
    if need_train and not train:
        raise WorkbenchError(f"--held-out {held_out} leaves no training images out of {len(ordered)}: "
                             "lower --held-out")
    return train, held
