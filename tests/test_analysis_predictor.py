"""analysis.predictor: the shuffled AUC's negatives (`other_fixations`), `score_maps`, and one sAUC for
the reports and the Saliency dashboard."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from analysis.datasets import SaliencyItem
from analysis.metrics import score_all
from analysis.predictor import other_fixations, score_maps, summarise_scores


def _item(name, size, points):
    fix = np.zeros(size, bool)
    for y, x in points:
        fix[y, x] = True
    return SaliencyItem(name, None, fix, fix.astype(np.float32) + 0.01)


def test_other_fixations_are_the_union_of_the_others_scaled_to_this_size():
    items = [_item("a", (10, 20), [(0, 0)]), _item("b", (10, 20), [(9, 19), (4, 10)]), _item("c", (5, 10), [(2, 3)])]
    got = other_fixations(items, 2)  # all others (2 < 10): b's points scaled from 10x20 to 5x10
    want = np.zeros((5, 10), bool)
    want[[0, 4, 2], [0, 9, 5]] = True  # (0,0) -> (0,0); (9,19) -> (4,9); (4,10) -> (2,5)
    assert np.array_equal(got, want)
    assert not other_fixations(items[:1], 0).any()  # no other image: no negatives


def test_at_most_n_other_images_never_the_image_itself_and_the_same_draw_every_time():
    # image j fixates only pixel (0, j): the union's columns name the images drawn
    items = [_item(str(j), (2, 30), [(0, j)]) for j in range(30)]
    for i in (0, 7, 29):
        drawn = np.flatnonzero(other_fixations(items, i)[0])
        assert len(drawn) == 10 and i not in drawn
        assert np.array_equal(drawn, np.flatnonzero(other_fixations(items, i)[0]))
        assert len(np.flatnonzero(other_fixations(items, i, n_other=3)[0])) == 3
    assert not np.array_equal(other_fixations(items, 0, seed=0), other_fixations(items, 0, seed=1))


def test_score_maps_is_score_all_with_those_negatives():
    rng = np.random.default_rng(0)
    items = [_item(str(j), (12, 16), [tuple(p) for p in rng.integers(0, 12, (6, 2))]) for j in range(4)]
    maps = [rng.random((12, 16)).astype(np.float32) for _ in items]
    got = score_maps({"m": maps}, items)["m"]
    for i, (m, it) in enumerate(zip(maps, items)):
        want = score_all(m, fixations=it.fixations, density=it.density, other_fixations=other_fixations(items, i))
        assert got[i] == pytest.approx(want, rel=0, abs=0)
    summ = summarise_scores({"m": got})["m"]
    assert summ["NSS"]["mean"] == pytest.approx(np.mean([r["NSS"] for r in got]))


def test_the_dashboard_and_the_report_give_the_same_sauc_for_the_same_map(tmp_path):
    """13 images: a report draws 10 of the 12 others as negatives; the dashboard must draw the same ones
    (it used every other image before, and its sAUC disagreed with the report's on the same map)."""
    from analysis.datasets import open_dataset
    from cache.store import CubeStore
    from dashboards.context import AppContext
    from dashboards.saliency import fluct_at_image, score_dataset
    from devtools.synthetic import synthetic_cube

    pairs = tmp_path / "pairs"
    pairs.mkdir()
    st = CubeStore(tmp_path / "store")
    rng = np.random.default_rng(3)
    names = [f"im{j:02d}" for j in range(13)]
    for j, name in enumerate(names):
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(pairs / f"{name}.png")
        fix = np.zeros((32, 32), np.uint8)
        fix[rng.integers(0, 32, 15), rng.integers(0, 32, 15)] = 255
        Image.fromarray(fix).save(pairs / f"{name}_map.png")
        st.put(synthetic_cube(16, 16, 12, name=name, seed=j))
    ctx = AppContext.from_paths(st.path, dataset=pairs, device="cpu")
    window, t_b = 3, 0.0
    seen = []  # the Saliency view's job shows this progress (one `Progress` per image scored)
    dash = {r["name"]: r["sAUC"] for r in score_dataset(ctx, window, t_b, progress=seen.append)["rows"]
            if r["map"] == "fluctuation"}
    assert sorted(dash) == names
    assert [(p.phase, p.done, p.total) for p in seen] == [("metrics", i + 1, 13) for i in range(13)]

    items = open_dataset(pairs, names=names)
    keys = {e["name"]: e["key"] for e in ctx.catalog.entries()}
    maps = [fluct_at_image(ctx, keys[it.name], it.size, window, t_b) for it in items]
    report = score_maps({"fluctuation": maps}, items)["fluctuation"]
    for it, row in zip(items, report):
        assert dash[it.name] == row["sAUC"], it.name
    # the union of all 12 other images (the dashboard's old negatives) gives other numbers
    union = np.logical_or.reduce([it.fixations for it in items])
    old = [score_all(m, fixations=it.fixations, density=it.density, other_fixations=union & ~it.fixations)["sAUC"]
           for m, it in zip(maps, items)]
    assert any(o != r["sAUC"] for o, r in zip(old, report))
