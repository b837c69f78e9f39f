"""The editing loop's cancellation: every phase stops within one network evaluation of a request,
and `_finish` (the evaluation) takes one object, not sixteen arguments."""
from __future__ import annotations

import inspect
import time

import numpy as np
import pytest
import torch
from PIL import Image

from workbench.editing import EditConfig, run_edit
from workbench.editing import loop
from workbench.editing.loop import EditCancelled

from test_editing import FAST, _image, _mask  # the edit tests' small inputs


@pytest.fixture(scope="module")
def pix(tiny_pixel_dir):
    from workbench.adapters import load_model

    return load_model(tiny_pixel_dir, device="cpu")


class _Abort(Exception):
    pass


def _slow(adapter, seconds: float):
    """Make every denoiser call take `seconds` (a stand-in for a big model on a slow CPU)."""
    return adapter.unet.register_forward_pre_hook(lambda *_: time.sleep(seconds))


def test_a_raising_callback_abandons_the_evaluation_within_a_heartbeat(pix):
    """The dashboard aborts a closed tab's job by raising from its progress callback: the evaluation
    (curves of many pixels, the edited image re-inverted) must report often enough to be stopped."""
    seen, marks = [], []

    def callback(info):
        seen.append(info)
        if info.phase == "evaluate":
            marks.append(time.perf_counter())
            if len(marks) == 2:  # the first heartbeat after the evaluation began
                raise _Abort()

    cfg = EditConfig(task="removal", n_iter=1, **{**FAST, "curve_pixels": 40})
    handle = _slow(pix, 0.02)
    try:
        t0 = time.perf_counter()
        with pytest.raises(_Abort):
            run_edit(pix, _image(), _mask(), cfg, ref_xy=(1, 14), callback=callback, baselines=False)
    finally:
        handle.remove()
    assert len(marks) == 2 and marks[1] - marks[0] < 0.3 + 0.1, marks  # a heartbeat within 0.3 s of work
    assert not any(m._forward_pre_hooks for m in pix.unet.children())
    assert time.perf_counter() - t0 < 60


def test_stop_during_the_inversion_raises_without_evaluating(pix):
    cfg = EditConfig(task="removal", n_iter=5, **{**FAST, "steps": 20})
    stages = []
    handle = _slow(pix, 0.03)
    try:
        with pytest.raises(EditCancelled, match="nothing to keep"):
            run_edit(pix, _image(), _mask(), cfg, callback=lambda i: stages.append(i.phase),
                     should_stop=lambda: True, baselines=False)
    finally:
        handle.remove()
    assert "evaluate" not in stages and "optimise" not in stages


def test_stop_mid_iteration_keeps_the_best_so_far(pix):
    """A stop request in the middle of a long iteration ends it there (not at its end) and evaluates."""
    cfg = EditConfig(task="removal", n_iter=3, **{**FAST, "steps": 12})
    optimised = []
    state = {"armed_at": None}

    def callback(info):
        if info.phase == "optimise":
            optimised.append(info.done)
            state["armed_at"] = time.perf_counter()

    def should_stop():  # true 0.2 s into the second iteration: after its start-of-iteration check
        return state["armed_at"] is not None and time.perf_counter() - state["armed_at"] > 0.2

    handle = _slow(pix, 0.02)
    try:
        res = run_edit(pix, _image(), _mask(), cfg, callback=callback, should_stop=should_stop, baselines=False)
    finally:
        handle.remove()
    assert res.cancelled and res.iterations_done == 1 and optimised == [1]
    assert np.asarray(res.edited).shape == (16, 16, 3)


def test_finish_takes_at_most_eight_parameters():
    assert len(inspect.signature(loop._finish).parameters) <= 8
    assert len(inspect.signature(loop._optimise).parameters) <= 8
    assert len(inspect.signature(loop.run_edit).parameters) <= 8
