"""Which images a batch covers: a plain folder, or a saliency data set's stimuli (layout detected).

  OSIE        DIR/data/stimuli/*.jpg
  CAT2000/MIT DIR/Stimuli/<category>/*.jpg
  MIT1003     DIR/ALLSTIMULI/*.jpeg
  folder      DIR/*.{png,jpg,jpeg,bmp,tif,tiff,webp}, except ground-truth companions
              (NAME_mask, NAME_map, NAME_fixmap, NAME_saliency)
  one image   an image file
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from workbench.errors import WorkbenchError

__all__ = ["ImageSource", "find_images", "IMAGE_SUFFIXES"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
_COMPANIONS = ("_mask", "_map", "_fixmap", "_saliency")


@dataclass(frozen=True)
class ImageSource:
    """The images found under a path, sorted, and the `layout` that was recognised."""

    layout: str
    root: Path
    images: tuple[Path, ...]
    skipped: int = 0

    def describe(self) -> str:
        """One line for the user: the layout and how many images."""
        extra = f" ({self.skipped} ground-truth companion files skipped)" if self.skipped else ""
        return f"{self.root}: {self.layout} layout, {len(self.images)} images{extra}"


def _images_in(folder: Path, recursive: bool = False) -> list[Path]:
    it = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(p for p in it if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))


def find_images(path: str | Path, *, limit: int | None = None) -> ImageSource:
    """Detect the layout under `path` and list its images (the first `limit` when given)."""
    root = Path(path).expanduser()
    if not root.exists():
        raise WorkbenchError(f"no such folder or image: {root} (check the path)")
    skipped = 0
    if root.is_file():
        if root.suffix.lower() not in IMAGE_SUFFIXES:
            raise WorkbenchError(f"{root} is not an image ({', '.join(IMAGE_SUFFIXES)}): pass an image or a folder")
        layout, images = "single image", [root]
    elif (root / "data" / "stimuli").is_dir():
        layout, images = "OSIE", _images_in(root / "data" / "stimuli")
    elif (root / "Stimuli").is_dir():
        layout, images = "CAT2000/MIT", _images_in(root / "Stimuli", recursive=True)
    elif (root / "ALLSTIMULI").is_dir():
        layout, images = "MIT1003", _images_in(root / "ALLSTIMULI")
    else:
        found = _images_in(root)
        images = [p for p in found if not p.stem.lower().endswith(_COMPANIONS)]
        layout, skipped = "plain folder", len(found) - len(images)
    if not images:
        raise WorkbenchError(f"no images under {root} ({layout} layout): pass a folder of PNG/JPEG images, an OSIE "
                             "root (data/stimuli/) or a CAT2000/MIT root (Stimuli/<category>/)")
    if limit is not None:
        if limit < 1:
            raise WorkbenchError(f"--limit must be at least 1, got {limit}")
        images = images[:limit]
    return ImageSource(layout, root, tuple(images), skipped)
