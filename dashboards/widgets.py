"""Widgets the dashboards need beyond Panel's defaults.

`checkbox(view.param.x, caption)`: a check box whose caption toggles it. Bokeh's Checkbox draws
its caption as a separate element beside the input, so a click on the words does nothing (a
newcomer's first attempt); a one-option CheckBoxGroup wraps input and caption in one `<label>`.
It is linked both ways to the Boolean parameter.
"""
from __future__ import annotations

import panel as pn

__all__ = ["checkbox"]


def checkbox(parameter, caption: str, **kw) -> pn.widgets.CheckBoxGroup:
    """A check box for Boolean `parameter` (e.g. `view.param.compare`) whose caption is clickable."""
    owner, name = parameter.owner, parameter.name
    box = pn.widgets.CheckBoxGroup(options=[caption], value=[caption] if getattr(owner, name) else [],
                                   inline=True, margin=(4, 10), **kw)
    box.param.watch(lambda e: setattr(owner, name, caption in e.new), "value")
    owner.param.watch(lambda e: setattr(box, "value", [caption] if e.new else []), name)
    return box
