"""dashboards.widgets: a checkbox follows its parameter both ways; a number box refuses bad text and says why."""
from __future__ import annotations

import pytest

from dashboards.context import AppContext

from test_dashboards_views import wide_ctx  # noqa: F401  (a fixture)


def test_checkbox_widget_follows_its_parameter_both_ways(wide_ctx):
    from dashboards.explore import ExploreView
    from dashboards.widgets import checkbox

    v = ExploreView(wide_ctx)
    box = checkbox(v.param.compare, "Compare clicked pixels")
    assert box.value == ["Compare clicked pixels"] and v.compare
    box.value = []
    assert v.compare is False
    v.compare = True
    assert box.value == ["Compare clicked pixels"]


@pytest.mark.parametrize("text", ["0", "-1", "99999999", "", "  ", "abc", "1.5"])
def test_number_box_refuses_and_says_why_without_changing_the_parameter(tmp_path, text):
    from dashboards.explore import ExploreView

    v = ExploreView(AppContext.from_paths(tmp_path / "s"))
    box = {b.box.label: b for b in v.number_boxes()}["K"]
    before = v.new_K
    box.box.value = text
    assert v.new_K == before  # the old value is kept ...
    assert box.error and ("K must be" in box.error or "empty" in box.error), box.error  # ... and it says why
    assert "invalid" in box.box.css_classes and box.box.value == text
    box.box.value = "7"
    assert v.new_K == 7 and box.error is None and "invalid" not in box.box.css_classes
    v.new_K = 9  # the parameter set elsewhere shows in the box
    assert box.box.value == "9"
