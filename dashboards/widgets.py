"""Widgets the dashboards need beyond Panel's defaults.

`checkbox(view.param.x, caption)`: a check box whose caption toggles it. Bokeh's Checkbox draws
its caption as a separate element beside the input, so a click on the words does nothing (a
newcomer's first attempt); a one-option CheckBoxGroup wraps input and caption in one `<label>`.
It is linked both ways to the Boolean parameter.

`number_box(view.param.x, label, check)`: a number box that never lies. Panel's number inputs keep
an out-of-range number on screen while the parameter silently keeps its old value (and an emptied
box logs a server traceback); here the typed text goes through `check` (the shared validation of
`workbench.validate`, so the box and the command line refuse the same values): a valid number sets
the parameter, anything else leaves it unchanged, draws the box with a red border and says why in
one line under it, until a valid number is typed.
"""
from __future__ import annotations

import panel as pn

from workbench.errors import WorkbenchError

__all__ = ["checkbox", "number_box", "NumberBox", "INVALID_CSS"]

#: the red border of a refused number (on the widget's host element, class "invalid")
INVALID_CSS = ":host(.invalid) input { border: 2px solid #d32f2f !important; background: #fff5f5; }"


def checkbox(parameter, caption: str, **kw) -> pn.widgets.CheckBoxGroup:
    """A check box for Boolean `parameter` (e.g. `view.param.compare`) whose caption is clickable."""
    owner, name = parameter.owner, parameter.name
    box = pn.widgets.CheckBoxGroup(options=[caption], value=[caption] if getattr(owner, name) else [],
                                   inline=True, margin=(4, 10), **kw)
    box.param.watch(lambda e: setattr(owner, name, caption in e.new), "value")
    owner.param.watch(lambda e: setattr(box, "value", [caption] if e.new else []), name)
    return box


def _parse(text: str, integer: bool):
    """The typed text as an int (whole numbers) or float; a string stays a string (the check refuses it)."""
    t = (text or "").strip()
    try:
        return int(t) if integer else float(t)
    except ValueError:
        try:  # "1e3" or "5.0" for a whole number: the check decides whether it is whole
            f = float(t)
        except ValueError:
            return t
        return int(f) if integer and f.is_integer() and abs(f) < 2 ** 63 else f


class NumberBox:
    """A text box bound to a numeric parameter through a validation function, with its message line.

    `check(value) -> value` raises WorkbenchError with one line when the value is refused. `box` is the
    TextInput (CSS classes `nb-<parameter name>` and, while refused, `invalid`); `note` the message
    (lay it out under the box, or under a row of boxes); `column()` gives the two stacked."""

    def __init__(self, parameter, label: str, check, *, integer: bool = True, width: int = 90):
        owner, name = parameter.owner, parameter.name
        self._owner, self._name, self._check, self._integer = owner, name, check, integer
        self.box = pn.widgets.TextInput(label=label, value=self._text(getattr(owner, name)), width=width,
                                        css_classes=[f"nb-{name}"], stylesheets=[INVALID_CSS])
        self.note = pn.pane.HTML("", visible=False, margin=(0, 10), sizing_mode="stretch_width",
                                 styles={"color": "#d32f2f", "font-size": "12px"}, css_classes=[f"nb-{name}-note"])
        self._error_type = WorkbenchError
        self.box.param.watch(self._on_text, "value")
        owner.param.watch(self._on_param, name)

    def column(self) -> pn.Column:
        """The box with its message line under it."""
        return pn.Column(self.box, self.note, margin=0, sizing_mode="stretch_width")

    def _text(self, v) -> str:
        return str(v) if self._integer else f"{v:g}"

    @property
    def error(self) -> str | None:
        """The message shown under the box (None while the typed value is valid)."""
        return self.note.object if self.note.visible else None

    def _on_text(self, event) -> None:
        value = _parse(event.new, self._integer)
        try:
            if value == "":
                raise self._error_type(f"{self.box.label} is empty: type a number")
            value = self._check(value)
        except self._error_type as exc:
            self._flag(str(exc))
            return
        self._flag(None)
        setattr(self._owner, self._name, value)

    def _on_param(self, event) -> None:
        if self.note.visible:  # a refused text stays on screen until the user fixes it
            return
        text = self._text(event.new)
        if _parse(self.box.value, self._integer) != event.new:
            self.box.value = text

    def _flag(self, message: str | None) -> None:
        classes = [c for c in self.box.css_classes if c != "invalid"]
        self.box.css_classes = classes + (["invalid"] if message else [])
        self.note.object = "" if message is None else message.replace("<", "&lt;")
        self.note.visible = message is not None


def number_box(parameter, label: str, check, **kw) -> NumberBox:
    """A validated number box for `parameter` (see NumberBox)."""
    return NumberBox(parameter, label, check, **kw)
