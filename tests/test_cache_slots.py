"""cache.slots: a slot whose done flag was never set is never served."""
from __future__ import annotations

import pytest

from cache import slots
from cache.store import CubeStore, group_spec_of
from workbench.errors import WorkbenchError

from test_cache_store import synthetic_cube


def test_incomplete_slot_is_never_served(tmp_path):
    store = CubeStore(tmp_path / "st")
    a, b = synthetic_cube(1, name="a"), synthetic_cube(2, name="b")
    spec = group_spec_of(a)
    spec = slots.GroupSpec(spec.shape, spec.image_shape, spec.timesteps, spec.alphas, spec.attrs,
                           spec.slots + group_spec_of(b).slots)
    path = slots.create_group(store.group_path("b-test"), spec)
    slots.write_slot(path, 0, a.rate.values, a.image.values)
    # slot 1 half-written: data present, done flag never set
    import zarr

    zarr.open_group(str(path), mode="r+")["rate"][1] = b.rate.values
    assert store.keys() == [a.attrs["key"]]
    with pytest.raises(WorkbenchError, match="no complete cube"):
        store.open(b.attrs["key"])
    many = store.open_many()
    assert many.sizes["image_id"] == 1 and list(many["key"].values) == [a.attrs["key"]]
