"""dashboards.edit without a browser: launch, progress, result, save, cancel and errors of the Edit view
(the other views' tests: test_dashboards_<module>.py)."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from dashboards.context import AppContext


@pytest.fixture(scope="module")
def tiny_adapter_pixel(tiny_pixel_dir):
    from workbench.adapters import load_model

    return load_model(tiny_pixel_dir, device="cpu")


def test_edit_launch_progress_result_and_save(tmp_path, tiny_adapter_pixel):
    from dashboards.edit import EditView

    ctx = AppContext.from_paths(tmp_path / "s", adapter=tiny_adapter_pixel)
    v = EditView(ctx, n_iter=2, steps=5)
    assert v.image_path is not None and v.image_path.name.endswith(".jpg")
    assert v.launch() is None and "select a region" in v.message.object
    H, W = v.size
    v.image_pane.selected_data = {"points": [{"x": W / 2, "y": H / 2}],
                                  "range": {"x": [W * 0.3, W * 0.6], "y": [H * 0.3, H * 0.6]}}
    assert v.mask is not None and v.mask.sum() > 0.05 * H * W
    v.task = "transfer"
    assert v.launch() is None and "reference" in v.message.object
    v.image_pane.click_data = {"points": [{"x": W * 0.1, "y": H * 0.9}]}
    assert v.reference == (int(round(W * 0.1)), int(round(H * 0.9)))
    job = v.launch()
    assert job is not None and v.cancel_button.disabled is False
    assert job.wait(600)
    v.poll()
    assert job.error is None, job.error
    r = v.result
    assert r is not None and r.iterations_done == 2 and not r.cancelled
    assert len(v.curve_pane.object.data) == 3  # before, after, reference
    lay = v.result_pane.object.layout  # original | edited, each at the source image's shape, in its pixels
    assert [lay.xaxis.range[1], lay.yaxis.range[0]] == [W - 0.5, H - 0.5] == [lay.xaxis2.range[1], lay.yaxis2.range[0]]
    np.testing.assert_allclose(v.curve_pane.object.data[0].y, r.curve_before, rtol=1e-6)
    assert "iterations" in v.metrics.object and not v.download.disabled
    assert "PSNR outside, source resolution (dB)" in v.metrics.object and "psnr_outside" not in v.metrics.object
    png = Image.open(v.result_png())
    assert png.size == (W, H)  # the source's resolution, not the model's
    path = v.save()
    assert path.is_file() and Image.open(path).size == (W, H)


@pytest.mark.slow
def test_edit_cancel_returns_the_best_so_far(tmp_path, tiny_adapter_pixel):
    import time

    from dashboards.edit import EditView

    ctx = AppContext.from_paths(tmp_path / "s", adapter=tiny_adapter_pixel)
    v = EditView(ctx, n_iter=500, steps=5, task="saliency")
    H, W = v.size
    v.select_lasso([W * 0.2, W * 0.5, W * 0.5, W * 0.2], [H * 0.2, H * 0.2, H * 0.5, H * 0.5])
    job = v.launch()
    deadline = time.time() + 600
    while time.time() < deadline and getattr(job.snapshot().get("progress"), "phase", None) != "optimise":
        time.sleep(0.05)
    v.cancel()
    assert job.wait(600)
    v.poll()
    assert job.error is None, job.error
    assert v.result.cancelled and v.result.iterations_done < 500
    assert "cancelled" in v.metrics.object


def test_edit_errors_from_the_library_are_shown(tmp_path, tiny_adapter_pixel):
    from dashboards.edit import EditView

    ctx = AppContext.from_paths(tmp_path / "s", adapter=tiny_adapter_pixel)
    v = EditView(ctx, n_iter=1, steps=5, task="removal")
    H, W = v.size
    v.select_box(W * 0.2, H * 0.2, W * 0.6, H * 0.6)
    v.set_reference(int(W * 0.4), int(H * 0.4))  # inside the object: the library refuses it
    job = v.launch()
    assert job.wait(120)
    v.poll()
    assert v.message.visible and "inside the object" in v.message.object and v.result is None
