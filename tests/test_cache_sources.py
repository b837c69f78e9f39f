"""cache.sources: the data-set layouts it recognises and the images it lists."""
from __future__ import annotations

import pytest

from cache.sources import find_images
from workbench.errors import WorkbenchError


def _touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def test_layouts_and_companion_files(tmp_path):
    plain = tmp_path / "plain"
    for n in ("b.png", "a.JPG", "a_map.png", ".hidden.png", "notes.txt"):
        _touch(plain / n)
    src = find_images(plain)
    assert src.layout == "plain folder" and [p.name for p in src.images] == ["a.JPG", "b.png"] and src.skipped == 1
    assert src.describe() == f"{plain}: plain folder layout, 2 images (1 ground-truth companion files skipped)"
    assert [p.name for p in find_images(plain, limit=1).images] == ["a.JPG"]
    osie = tmp_path / "osie"
    _touch(osie / "data" / "stimuli" / "1001.jpg")
    assert find_images(osie).layout == "OSIE"
    cat = tmp_path / "cat"
    _touch(cat / "Stimuli" / "Art" / "1.jpg")
    _touch(cat / "Stimuli" / "Action" / "2.jpg")
    assert [p.parent.name for p in find_images(cat).images] == ["Action", "Art"]
    one = find_images(plain / "b.png")
    assert one.layout == "single image" and one.images == (plain / "b.png",)


def test_nothing_to_read_is_one_line(tmp_path):
    with pytest.raises(WorkbenchError, match="no such folder or image"):
        find_images(tmp_path / "nope")
    with pytest.raises(WorkbenchError, match="is not an image"):
        find_images(_touch(tmp_path / "a.txt"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(WorkbenchError, match="no images under .* \\(plain folder layout\\)"):
        find_images(tmp_path / "empty")
    _touch(tmp_path / "one" / "a.png")
    with pytest.raises(WorkbenchError, match="--limit must be at least 1, got 0"):
        find_images(tmp_path / "one", limit=0)
