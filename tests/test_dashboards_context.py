"""dashboards.context: the shared server state: one adapter, memoised values, forgetting by prefix."""
from __future__ import annotations

from dashboards.context import AppContext


def test_memo_computes_once_and_forget_drops_by_prefix(tmp_path):
    ctx = AppContext.from_paths(tmp_path / "st", device="cpu", adapter="the adapter")
    assert ctx.adapter() == "the adapter" and ctx.device == "cpu" and ctx.catalog.path == tmp_path / "st"
    calls = []

    def compute(v):
        calls.append(v)
        return v

    assert ctx.memo(("metrics", 1), lambda: compute("a")) == "a"
    assert ctx.memo(("metrics", 1), lambda: compute("b")) == "a"
    assert ctx.memo(("other", 1), lambda: compute("c")) == "c"
    ctx.forget("metrics")
    assert ctx.memo(("metrics", 1), lambda: compute("d")) == "d"
    assert ctx.memo(("other", 1), lambda: compute("e")) == "c"
    assert calls == ["a", "c", "d"]
