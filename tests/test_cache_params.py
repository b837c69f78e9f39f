"""cache.params: K, rank and k are separate fields; stores written before they were keep their keys."""
from __future__ import annotations

import numpy as np
import pytest

from cache.build import cube_from_arrays
from cache.keys import cube_key
from cache.params import CubeParams, FluctuationParams
from cache.store import CubeStore
from workbench.errors import WorkbenchError

#: a key written by the code before `rank`/`k` were fields (commit d358ffb), pinned: the recipe
#: may not change for parameters that did not change
#: cubes written before `fixed_point` existed were inverted plainly (fixed_point=0, left out of the key)
OLD_KEY = cube_key(b"image", "model", CubeParams(K=8, steps=5, fixed_point=0))


def test_keys_of_parameters_that_existed_before_rank_and_k_are_unchanged():
    assert OLD_KEY == "a63333d43b132dd029f836ec9ca6320f"
    assert CubeParams(K=8, steps=5, fixed_point=0).as_dict() == {"definition": "h", "estimator": "hutchinson", "K": 8,
                                                                "seed": 0, "steps": 5, "channel": None}
    # the defaults written out name the same cube (one key), another value another cube
    assert cube_key(b"image", "model", CubeParams(definition="projected", K=8, k=8)) == \
        cube_key(b"image", "model", CubeParams(definition="projected", K=8))
    assert cube_key(b"image", "model", CubeParams(definition="projected", K=8, k=4)) != \
        cube_key(b"image", "model", CubeParams(definition="projected", K=8))
    assert CubeParams(estimator="rsvd+hutchinson", K=8, rank=4) == CubeParams(estimator="rsvd+hutchinson", K=8)


def test_rank_and_k_are_named_and_refused_where_they_mean_nothing():
    p = CubeParams(estimator="rsvd+hutchinson", K=16, rank=3)
    assert (p.K, p.svd_rank, p.rank) == (16, 3, 3) and p.as_attrs()["rank"] == 3
    assert CubeParams(estimator="rsvd", K=12).svd_rank == 12
    q = CubeParams(definition="projected", estimator="rsvd", K=8, k=2)
    assert q.tangent_k == 2 and q.as_attrs()["k"] == 2 and q.as_attrs()["K"] == 8
    with pytest.raises(WorkbenchError, match="rank"):
        CubeParams(K=8, rank=2)
    with pytest.raises(WorkbenchError, match="tangent"):
        CubeParams(K=8, k=2)


@pytest.mark.parametrize("p", [CubeParams(K=8, steps=5), CubeParams(definition="projected", estimator="rsvd", K=6),
                               CubeParams(definition="projected", estimator="rsvd", K=6, k=3),
                               CubeParams(estimator="rsvd+hutchinson", K=8, rank=2, channel=1)])
def test_attrs_round_trip(p):
    assert CubeParams.from_attrs(p.as_attrs()) == p


def test_a_store_written_with_the_old_attribute_layout_reads_and_finds_its_cubes(tmp_path):
    # the attributes as the code before the split wrote them: K and k both the probe count, no rank
    old = {"model_fingerprint": "abc", "model_name": "m", "rate_definition": "h", "estimator": "hutchinson",
           "K": 8, "k": 8, "seed": 0, "steps": 3, "channel_rule": "mean", "scale": 1, "dtype": "float32",
           "source_image": "/data/a.png", "source_size": [4, 4], "package_version": "0", "schema_version": "3",
           "key": cube_key(b"a", "abc", CubeParams(K=8, steps=3, fixed_point=0)), "complete": 1}
    rng = np.random.default_rng(0)
    ds = cube_from_arrays(rng.random((3, 4, 4)), np.array([1, 2, 3]), np.array([0.9, 0.5, 0.1]),
                          np.zeros((4, 4, 3), np.uint8), attrs=old)
    store = CubeStore(tmp_path / "st")
    key = store.put(ds)
    params = CubeParams.from_attrs(store.open(key).attrs)
    # written before inversion had fixed-point refinement: a plain inversion, whose key leaves the field out
    assert params == CubeParams(K=8, steps=3, fixed_point=0) and params.k is None and params.rank is None
    assert cube_key(b"a", "abc", params) == key
    assert store.find("a", params=params) == key


def test_fixed_point_is_keyed_unless_plain_and_read_back_from_attrs():
    from workbench.ddim import INVERSION_FIXED_POINT

    assert INVERSION_FIXED_POINT == 1 and CubeParams().fixed_point == 1
    plain, refined = CubeParams(fixed_point=0), CubeParams()
    assert "fixed_point" not in plain.as_dict() and refined.as_dict()["fixed_point"] == 1
    # the plain key is the key every cube had before the field existed: the six keyed fields only
    assert set(plain.as_dict()) == {"definition", "estimator", "K", "seed", "steps", "channel"}
    assert cube_key(b"a", "abc", plain) != cube_key(b"a", "abc", refined)
    assert cube_key(b"a", "abc", CubeParams(fixed_point=2)) not in {cube_key(b"a", "abc", p) for p in (plain, refined)}
    for p in (plain, refined, CubeParams(fixed_point=3)):
        assert p.as_attrs()["inversion_fixed_point"] == p.fixed_point
        assert CubeParams.from_attrs(p.as_attrs()) == p
    for bad in (-1, 9, 0.5, "1", None):
        with pytest.raises(WorkbenchError, match="fixed-point iterations must be a whole number from 0 to 8"):
            CubeParams(fixed_point=bad)


@pytest.fixture(scope="module")
def tiny_adapter_pixel(tiny_pixel_dir):
    from workbench.adapters import load_model

    return load_model(tiny_pixel_dir, device="cpu")


def test_fluctuation_params_check_their_form_and_the_schedule(tiny_adapter_pixel):
    assert FluctuationParams() == FluctuationParams(window=3, t_b=0, normalise=True)
    with pytest.raises(WorkbenchError, match="window"):
        FluctuationParams(window=1)
    with pytest.raises(WorkbenchError, match="t_b"):
        FluctuationParams(t_b=-1)
    FluctuationParams(window=3).check_schedule(tiny_adapter_pixel, 10)
    with pytest.raises(WorkbenchError, match="window"):
        FluctuationParams(window=8).check_schedule(tiny_adapter_pixel, 4)
