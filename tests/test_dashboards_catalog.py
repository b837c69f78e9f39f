"""dashboards.catalog: labels that name one cube each, lookup, the bounded cache, uploads."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from dashboards.catalog import CubeCatalog, cube_label, cube_labels, cube_variant
from workbench.errors import WorkbenchError


def test_labels_name_each_cube():
    e = {"key": "abcdef123456", "name": "cat", "rate_definition": "h", "estimator": "hutchinson", "K": 64, "steps": 50}
    assert cube_variant(e) == "rate h · hutchinson · K 64 · 50 steps"
    assert cube_label(e) == "cat · rate h · hutchinson · K 64 · 50 steps"
    assert cube_label({"key": "0123456789abc"}) == "0123456789 · cube"
    twin = dict(e, key="fedcba654321")
    assert cube_labels([e, twin, dict(e, key="k2", name="dog")]) == {
        "cat · rate h · hutchinson · K 64 · 50 steps · key abcdef": "abcdef123456",
        "cat · rate h · hutchinson · K 64 · 50 steps · key fedcba": "fedcba654321",
        "dog · rate h · hutchinson · K 64 · 50 steps": "k2"}


def test_entries_find_open_and_the_bounded_cache(store):
    cat = CubeCatalog(store.path, create=False, max_open=1)
    assert [e["name"] for e in cat.entries()] == ["alpha", "beta"]
    a, b = cat.find("alpha"), cat.find("beta")
    assert cat.keys() == [a, b] and cat.find(a) == a and cat.find("gamma") is None
    first = cat.open(a)
    assert cat.open(a) is first  # cached
    np.testing.assert_array_equal(first.rate.values, store.open(a).rate.values)
    cat.open(b)  # max_open=1: alpha is dropped from memory
    assert cat.open(a) is not first


def test_uploads_are_content_addressed_and_only_images(tmp_path):
    cat = CubeCatalog(tmp_path / "st")
    buf = io.BytesIO()
    Image.new("RGB", (4, 3), (1, 2, 3)).save(buf, format="PNG")
    p = cat.save_upload(buf.getvalue(), "my photo?.png")
    assert p.parent == tmp_path / "st" / "uploads" and p.name.endswith("-my_photo_.png")
    assert cat.save_upload(buf.getvalue(), "my photo?.png") == p and Image.open(p).size == (4, 3)
    with pytest.raises(WorkbenchError, match="notes.txt is not a readable image"):
        cat.save_upload(b"hello", "notes.txt")
