"""cache.schema: labels, source bounds and value constraints by hand."""
from __future__ import annotations

import numpy as np
import pytest

from cache import schema
from workbench.errors import WorkbenchError

from test_cache_store import synthetic_cube


def test_step_index_and_source_bounds():
    assert schema.step_index(4).tolist() == [3, 2, 1, 0]
    # 3 model rows of scale 2 over a 6-pixel model image squeezed from a 9-pixel source: 3 source pixels a row
    np.testing.assert_array_equal(schema.source_bounds(3, 6, 2, 9), [[0, 3], [3, 6], [6, 9]])


def test_slot_labels_disambiguate_repeated_names():
    assert schema.slot_labels([{"name": "a"}, {"source_image": "/x/b.png"}]) == ["a", "b"]
    slots = [{"source_image": "/d/cats/img.png"}, {"source_image": "/d/dogs/img.png"},
             {"source_image": "/e/cats/img.png"}, {"source_image": "/d/x/other.png"}]
    labels = schema.slot_labels(slots)
    assert labels[1] == "dogs/img" and labels[3] == "other" and labels[0] == "cats/img#1"
    assert len(set(labels)) == 4 and labels[2].startswith("cats/img")


def test_value_problem_names_what_no_cube_can_hold():
    assert schema.value_problem(schema.VAR_RATE, np.array([0.0, 1.0])) is None
    assert schema.value_problem(schema.VAR_RATE, np.array([np.nan])) == "it holds NaN/inf rates"
    assert schema.value_problem(schema.VAR_RATE, np.array([-1e-9])) == "it holds negative rates"
    assert schema.value_problem(schema.VAR_RATE_SE, np.array([np.nan])) is None  # NaN SE: none was computed
    assert schema.value_problem(schema.VAR_RATE_SE, np.array([np.inf])) == "it holds infinite standard errors"
    assert schema.value_problem(schema.VAR_SUM_S, np.array([-1.0])) == "it holds negative sums of squares"


def test_check_cube_accepts_a_cube_and_names_what_is_missing():
    ds = synthetic_cube()
    schema.check_cube(ds)
    with pytest.raises(WorkbenchError, match="not a curve cube: missing image"):
        schema.check_cube(ds.drop_vars(schema.VAR_IMAGE))
    with pytest.raises(WorkbenchError, match="lacks the attributes key"):
        schema.check_cube(_without(ds, "key"))


def _without(ds, attr):
    out = ds.copy()
    out.attrs = {k: v for k, v in ds.attrs.items() if k != attr}
    return out
