"""The dashboards in a real browser: Playwright driving Debian's Chromium against a live server.

One server and one browser for the module (a store with synthetic cubes, a tiny model for the
edit). What is checked is what a person sees: the page renders without console errors, a click
on the fluctuation map shows that pixel's curve, the timestep slider changes the rate map, two
tabs keep their own state, and a box selection + reference click + Launch shows an edited image.
Screenshots go to the test's temporary folder.
"""
from __future__ import annotations

import logging
import subprocess
import sys
import time

import numpy as np
import pytest

from devtools.browser import CHROMIUM, click_plot, drag_box, launch, pane_text, plot_extent, wait_for_port

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium "
                                                               "(apt-get install chromium)")]


@pytest.fixture(scope="module")
def server(tmp_path_factory, tiny_pixel_dir):
    from cache.store import CubeStore
    from dashboards.app import free_port, serve
    from dashboards.context import AppContext
    from devtools.synthetic import synthetic_cube

    root = tmp_path_factory.mktemp("dash")
    st = CubeStore(root / "store")
    st.put(synthetic_cube(64, 64, 50, name="scene", seed=4))
    pairs = root / "pairs"  # a small saliency data set: image + fixation map pairs, cubes named after them
    pairs.mkdir()
    rng = np.random.default_rng(5)
    from PIL import Image

    for i, name in enumerate(("zz1", "zz2")):
        Image.fromarray(rng.integers(0, 255, (30, 40, 3), dtype=np.uint8)).save(pairs / f"{name}.png")
        fix = np.zeros((30, 40), np.uint8)
        fix[rng.integers(0, 30, 10), rng.integers(0, 40, 10)] = 255
        Image.fromarray(fix).save(pairs / f"{name}_map.png")
        st.put(synthetic_cube(16, 16, 30, name=name, seed=20 + i))
    ctx = AppContext.from_paths(st.path, dataset=pairs, model=str(tiny_pixel_dir), device="cpu")
    port = free_port()
    srv = serve(ctx, port=port, address="127.0.0.1")
    _SERVER_ERRORS.clear()
    for name in ("asyncio", "tornado.application", "tornado.general", "bokeh"):
        logging.getLogger(name).addHandler(_COLLECT)
    wait_for_port(port, 30)
    yield f"http://127.0.0.1:{port}/", st, root
    srv.stop()
    for name in ("asyncio", "tornado.application", "tornado.general", "bokeh"):
        logging.getLogger(name).removeHandler(_COLLECT)


class _Collect(logging.Handler):
    """Server-side errors (task exceptions, callback errors) logged while the browser tests run."""

    def emit(self, record):
        if record.levelno >= logging.ERROR:
            text = record.getMessage()
            if record.exc_info and record.exc_info[1] is not None:
                text += f" {type(record.exc_info[1]).__name__}: {record.exc_info[1]}"
            _SERVER_ERRORS.append(text)


_SERVER_ERRORS: list[str] = []
_COLLECT = _Collect()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        ctx = launch(p, tmp_path_factory.mktemp("chromium-profile"))
        yield ctx
        ctx.close()


def _open(browser, url: str):
    page = browser.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    page.locator(".js-plotly-plot").nth(3).wait_for(state="visible", timeout=60_000)
    page.wait_for_function("() => document.querySelectorAll('*').length > 0")
    return page, errors


def _plots(page):
    return page.locator(".js-plotly-plot")


def _wait_text(loc, pred, timeout: float) -> str:
    deadline = time.time() + timeout
    while time.time() < deadline and not pred(pane_text(loc)):
        time.sleep(0.2)
    return pane_text(loc)


def _wait_for(plot, js: str, arg=None, timeout: float = 20.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = plot.evaluate(js, arg)
        if v:
            return v
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {js}")


def test_explore_click_slider_and_two_tabs(server, browser, tmp_path):
    url, st, _ = server
    page, errors = _open(browser, url)
    plots = _plots(page)
    fluct, rate, curves = plots.nth(1), plots.nth(2), plots.nth(3)
    page.wait_for_timeout(500)
    page.screenshot(path=str(tmp_path / "explore-loaded.png"), full_page=True)
    assert not errors, errors

    click_plot(page, fluct, 20, 30)
    names = _wait_for(curves, "el => el.data.length === 1 && el.data[0].name")
    assert "x=20, y=30" in names
    marker = _wait_for(fluct, "el => el.data[el.data.length - 1].x.length === 1 && el.data[el.data.length - 1]")
    assert marker["x"][0] == 20 and marker["y"][0] == 30  # the numbered marker on the map
    key = st.find("scene")
    from analysis.fluctuation import DEFAULT_NORMALISE, DEFAULT_T_B

    ds = st.open(key)
    ref = ds["rate"].values[:, 30, 20].astype(np.float64)
    if DEFAULT_NORMALISE:  # the view's default: curves shown as shapes
        ref = ref / ref[ds["timestep"].values > DEFAULT_T_B].sum()
    np.testing.assert_allclose(curves.evaluate("el => Array.from(el.data[0].y)"), ref, rtol=1e-5)

    title0 = rate.evaluate("el => el.layout.title.text")
    z0 = rate.evaluate("el => el.data.find(t => t.type === 'heatmap').z[5][7]")
    handle = page.locator(".explore-t-slider .noUi-handle")
    handle.focus()
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    _wait_for(rate, "(el, t0) => el.layout.title.text !== t0", title0)
    assert "step 3/50" in rate.evaluate("el => el.layout.title.text")
    z1 = rate.evaluate("el => el.data.find(t => t.type === 'heatmap').z[5][7]")
    assert z1 == pytest.approx(float(st.open(key)["rate"].values[2, 5, 7]), rel=1e-5) and z1 != z0

    # a second tab: its own selection; the first tab's curve is unchanged
    page2, errors2 = _open(browser, url)
    plots2 = _plots(page2)
    click_plot(page2, plots2.nth(1), 50, 10)
    assert "x=50, y=10" in _wait_for(plots2.nth(3), "el => el.data.length === 1 && el.data[0].name")
    assert "step 1/50" in plots2.nth(2).evaluate("el => el.layout.title.text")
    page.wait_for_timeout(300)
    assert curves.evaluate("el => el.data.map(d => d.name)") == [names]
    assert not errors and not errors2, errors + errors2
    page2.close()
    page.close()


def test_saliency_tab_scores_the_data_set(server, browser, tmp_path):
    url, _, _ = server
    page, errors = _open(browser, url)
    page.locator(".bk-tab", has_text="Saliency").click()
    rows = page.locator(".saliency-table .tabulator-row")
    deadline = time.time() + 120
    while time.time() < deadline and rows.count() < 2:
        time.sleep(0.3)
    assert rows.count() == 2  # both images of the data set, scored in the background
    names = {rows.nth(i).locator(".tabulator-cell[tabulator-field=\"image\"]").inner_text() for i in range(2)}
    assert names == {"zz1", "zz2"}
    page.wait_for_timeout(500)
    page.screenshot(path=str(tmp_path / "saliency.png"), full_page=True)
    assert not errors, errors
    page.close()


def test_edit_box_reference_launch_shows_the_edited_image(server, browser, tmp_path):
    url, _, root = server
    page, errors = _open(browser, url)
    page.locator(".bk-tab", has_text="Edit").click()
    img = page.locator(".edit-image .js-plotly-plot")
    img.wait_for(state="visible", timeout=30_000)
    for name, value in (("n_iter", "1"), ("steps", "5")):
        box = page.locator(f".nb-{name} input")
        box.fill(value)
        box.press("Enter")
    W, H = plot_extent(img)
    drag_box(page, img, (W * 0.35, H * 0.3), (W * 0.65, H * 0.6))
    status = page.locator(".edit-status")
    text = _wait_text(status, lambda t: "region:" in t, 15)
    page.screenshot(path=str(tmp_path / "edit-selected.png"), full_page=True)
    assert "region:" in text and "no region" not in text, text
    region_px = int(text.split("region:")[1].split("px")[0])
    assert region_px > 0.05 * W * H, text  # the whole box, not one grid point
    click_plot(page, img, W * 0.1, H * 0.9)
    text = _wait_text(status, lambda t: "reference: x=" in t, 15)
    assert "reference: x=" in text and f"region: {region_px} px" in text, text  # the click kept the box
    page.screenshot(path=str(tmp_path / "edit-selected.png"), full_page=True)
    page.locator(".edit-launch button").click()
    text = _wait_text(status, lambda t: t.strip().startswith(("done", "failed", "cancelled")), 600)
    assert text.strip().startswith("done"), text + pane_text(page.locator(".edit-message"))
    result = page.locator(".edit-result .js-plotly-plot")
    _wait_for(result, "el => el.data.length > 0 && el.data[0].type === 'image'")
    page.screenshot(path=str(tmp_path / "edit-done.png"), full_page=True)
    assert not errors, errors
    page.close()


# ----------------------------------------------------------------------------------- what a newcomer hit
def test_image_panel_click_adds_a_curve_without_console_errors(server, browser):
    url, st, _ = server
    page, errors = _open(browser, url)
    plots = _plots(page)
    image, curves = plots.nth(0), plots.nth(3)
    page.wait_for_timeout(500)
    click_plot(page, image, 10, 40)  # the photo itself (an image trace under an invisible pick layer)
    names = _wait_for(curves, "el => el.data.length === 1 && el.data[0].name")
    assert names.startswith("x=10, y=40")
    ds = st.open(st.find("scene"))
    ref = ds["rate"].values[:, 40, 10].astype(np.float64)
    from analysis.fluctuation import DEFAULT_NORMALISE, DEFAULT_T_B

    if DEFAULT_NORMALISE:
        ref = ref / ref[ds["timestep"].values > DEFAULT_T_B].sum()
    np.testing.assert_allclose(curves.evaluate("el => Array.from(el.data[0].y)"), ref, rtol=1e-5)
    click_plot(page, image, 30, 5)
    _wait_for(curves, "el => el.data.length === 2")
    page.wait_for_timeout(300)
    assert not errors, errors  # no "can't serialize typed array", no null .length
    page.close()


def test_checkbox_captions_toggle_their_boxes(server, browser):
    url, _, _ = server
    page, errors = _open(browser, url)
    for caption in ("Compare clicked pixels", "Same colour range at every timestep"):
        label = page.get_by_text(caption, exact=True)
        box = page.locator("label", has_text=caption).locator("input[type=checkbox]")
        assert box.count() == 1, caption  # the caption and its box in one <label>
        before = box.is_checked()
        label.click()
        page.wait_for_timeout(300)
        assert box.is_checked() != before, caption
        label.click()
        page.wait_for_timeout(300)
        assert box.is_checked() == before, caption
    assert not errors, errors
    page.close()


def _edit_setup(page, n_iter: int, steps: int = 5):
    page.locator(".bk-tab", has_text="Edit").click()
    img = page.locator(".edit-image .js-plotly-plot")
    img.wait_for(state="visible", timeout=30_000)
    for name, value in (("n_iter", str(n_iter)), ("steps", str(steps))):
        box = page.locator(f".nb-{name} input")
        box.fill(value)
        box.press("Enter")
    W, H = plot_extent(img)
    drag_box(page, img, (W * 0.35, H * 0.3), (W * 0.65, H * 0.6))
    status = page.locator(".edit-status")
    _wait_text(status, lambda t: "region:" in t, 15)
    click_plot(page, img, W * 0.1, H * 0.9)
    _wait_text(status, lambda t: "reference: x=" in t, 15)
    return status


def test_two_tabs_one_closed_mid_edit_the_other_runs(server, browser):
    url, _, _ = server
    _SERVER_ERRORS.clear()
    page_a, errors_a = _open(browser, url)
    status_a = _edit_setup(page_a, 2000)
    assert not page_a.locator(".edit-message").is_visible()  # the "select a region first" alert is not left over
    page_a.locator(".edit-launch button").click()
    text = _wait_text(status_a, lambda t: t.strip().startswith("optimising"), 180)
    assert text.strip().startswith("optimising") and "/2000" in text and "nan" not in text, text

    page_b, errors_b = _open(browser, url)
    status_b = _edit_setup(page_b, 1)
    page_b.locator(".edit-launch button").click()
    text = _wait_text(status_b, lambda t: "queued" in t, 20)
    assert "queued: 1 computation ahead" in text, text  # one queue per server, the position shown
    page_a.close()  # the tab with the long edit goes away mid-edit: its job is cancelled
    text = _wait_text(status_b, lambda t: not t.strip().startswith("queued"), 60)
    assert not text.strip().startswith("queued"), text  # tab A's edit was cancelled (2000 iterations would take long)
    text = _wait_text(status_b, lambda t: t.strip().startswith(("done", "failed")), 300)
    assert text.strip().startswith("done"), text
    page_b.wait_for_timeout(500)
    assert not errors_b, errors_b
    time.sleep(2)
    assert not [e for e in _SERVER_ERRORS if "WebSocketClosed" in e or "never retrieved" in e], _SERVER_ERRORS
    page_b.close()


def test_saliency_notices_cubes_from_an_external_workbench_cubes(server, browser, tiny_pixel_dir):
    url, st, root = server
    page, errors = _open(browser, url)
    page.locator(".bk-tab", has_text="Saliency").click()
    rows = page.locator(".saliency-table .tabulator-row")
    deadline = time.time() + 120
    while time.time() < deadline and rows.count() < 2:
        time.sleep(0.3)
    assert rows.count() == 2
    from PIL import Image

    rng = np.random.default_rng(9)
    pairs = root / "pairs"
    Image.fromarray(rng.integers(0, 255, (30, 40, 3), dtype=np.uint8)).save(pairs / "zz3.png")
    fix = np.zeros((30, 40), np.uint8)
    fix[rng.integers(0, 30, 10), rng.integers(0, 40, 10)] = 255
    Image.fromarray(fix).save(pairs / "zz3_map.png")
    done = subprocess.run([sys.executable, "-m", "workbench.cli", "cubes", str(pairs / "zz3.png"), "--store",
                           str(st.path), "--model", str(tiny_pixel_dir), "--steps", "4", "--K", "2", "--device", "cpu"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    headers = page.locator(".saliency-table .tabulator-col-title").all_inner_texts()
    assert "AUC-Judd" in headers and "sAUC" in headers and "NSS − centre bias" in headers, headers
    widths = page.locator(".saliency-table .tabulator-col-title").evaluate_all(
        "els => els.filter(e => e.innerText.trim()).map(e => e.scrollWidth <= e.clientWidth + 1)")
    assert all(widths), headers  # every header shown in full, none cut to "AU..."
    page.locator(".saliency-refresh button").click()
    # zz3's cube is of another kind (the tiny model, K 2, 4 steps): offered under "Cubes scored", and scored
    # once chosen (the synthetic cubes of zz1 and zz2 stay the default: more images have them)
    variant = page.locator(".saliency-variant select")
    deadline = time.time() + 300  # re-read and re-scored in the background (minutes on a loaded machine)
    options: list = []
    while time.time() < deadline and not any("K 2 ·" in o for o in options):
        time.sleep(0.5)
        options = variant.locator("option").all_inner_texts()
    label = next((o for o in options if "K 2 ·" in o), None)
    assert label is not None and "4 steps" in label, options
    assert label.endswith("(1 image)"), label
    variant.select_option(label=label)
    deadline = time.time() + 120
    names: set = set()
    while time.time() < deadline and names != {"zz3"}:
        time.sleep(0.5)
        # one read of all the cells: the table is replaced while it is re-scored
        names = set(page.locator(".saliency-table .tabulator-cell[tabulator-field=\"image\"]").all_inner_texts())
    assert names == {"zz3"}
    assert "K 2 · 4 steps" in pane_text(page.locator(".saliency-scored"))
    assert not errors, errors
    page.close()


@pytest.fixture(scope="module")
def bare_server(tmp_path_factory):
    """A server whose data set has no cube in its (empty) store."""
    from PIL import Image

    from cache.store import CubeStore
    from dashboards.app import free_port, serve
    from dashboards.context import AppContext

    root = tmp_path_factory.mktemp("bare")
    st = CubeStore(root / "store")
    pairs = root / "pairs"
    pairs.mkdir()
    rng = np.random.default_rng(2)
    Image.fromarray(rng.integers(0, 255, (30, 40, 3), dtype=np.uint8)).save(pairs / "lone.png")
    fix = np.zeros((30, 40), np.uint8)
    fix[5, 5] = 255
    Image.fromarray(fix).save(pairs / "lone_map.png")
    port = free_port()
    srv = serve(AppContext.from_paths(st.path, dataset=pairs, device="cpu"), port=port, address="127.0.0.1")
    wait_for_port(port, 30)
    for name in ("asyncio", "tornado.application", "tornado.general", "bokeh"):
        logging.getLogger(name).addHandler(_COLLECT)
    yield f"http://127.0.0.1:{port}/"
    srv.stop()
    for name in ("asyncio", "tornado.application", "tornado.general", "bokeh"):
        logging.getLogger(name).removeHandler(_COLLECT)


def test_export_with_nothing_matched_says_so(bare_server, browser):
    _SERVER_ERRORS.clear()
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(bare_server)
    page.locator(".bk-tab", has_text="Saliency").wait_for(timeout=60_000)
    page.locator(".bk-tab", has_text="Saliency").click()
    export = page.locator(".saliency-export button")
    export.wait_for(timeout=30_000)
    deadline = time.time() + 60
    while time.time() < deadline and "no image" not in export.inner_text():
        time.sleep(0.3)
    assert "no image to export" in export.inner_text() and export.is_disabled()
    message = page.get_by_text("has a cube in")
    assert message.count() >= 1 and "Re-read the store" in message.first.inner_text()
    export.click(force=True)
    page.wait_for_timeout(1000)
    assert not [e for e in _SERVER_ERRORS if "StopIteration" in e], _SERVER_ERRORS
    assert not errors, errors
    page.close()


@pytest.mark.slow
def test_an_idle_server_with_one_tab_open_stays_quiet(tmp_path, browser):
    """< 2 % of one core over 20 s with one untouched tab (the issue asks 60 s; the process's CPU time
    over 20 s is the same measure, and `python -m bench.bench_dashboard --idle 60` takes the full minute)."""
    psutil = pytest.importorskip("psutil")
    from cache.store import CubeStore
    from dashboards.app import free_port
    from devtools.synthetic import synthetic_cube

    st = CubeStore(tmp_path / "store")
    st.put(synthetic_cube(64, 64, 50, name="idle", seed=3))
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "workbench.cli", "dashboard", "--store", str(st.path), "--port",
                             str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        assert wait_for_port(port, 60), proc.stderr.read().decode()[-2000:]
        page, errors = _open(browser, f"http://127.0.0.1:{port}/")
        server = psutil.Process(proc.pid)
        # let the first render settle: on a loaded machine it takes longer than a fixed pause
        settle_until = time.time() + 30
        while time.time() < settle_until:
            s0 = sum(server.cpu_times()[:2])
            page.wait_for_timeout(2000)
            if sum(server.cpu_times()[:2]) - s0 < 0.02:
                break
        c0, t0 = sum(server.cpu_times()[:2]), time.perf_counter()
        time.sleep(20)
        c1, t1 = sum(server.cpu_times()[:2]), time.perf_counter()
        share = (c1 - c0) / (t1 - t0)
        assert share < 0.02, f"idle server used {100 * share:.1f} % of a core (load average {__import__('os').getloadavg()})"
        assert not errors, errors
        page.close()
    finally:
        proc.terminate()
        proc.wait(30)


# ------------------------------------------------------------------------------ dashboards that never lie
_BAD = {"new_steps": ("0", "-1", "99999999", "", "abc", "1"), "new_K": ("0", "-5", "99999999", "", "abc"),
        "new_until_stable": ("-1", "1.5", "1e300", "", "abc"),
        "n_iter": ("0", "-1", "99999999", "", "abc"), "lr": ("0", "-1", "1e300", "", "abc"),
        "steps": ("0", "-1", "2", "99999999", "", "abc")}


def _check_refused(page, name: str, value: str) -> None:
    box = page.locator(f".nb-{name} input")
    box.fill(value)
    box.press("Enter")
    note = page.locator(f".nb-{name}-note")
    text = _wait_text(note, lambda t: bool(t.strip()), 10)
    assert "must be" in text or "empty" in text, (name, value, text)  # one line that says what is allowed
    assert box.input_value() == value, (name, value)  # what was typed stays, never silently replaced
    colour = box.evaluate("el => getComputedStyle(el).borderTopColor")
    assert colour == "rgb(211, 47, 47)", (name, value, colour)  # the red border


def test_every_number_box_refuses_bad_values_visibly(server, browser):
    url, _, _ = server
    _SERVER_ERRORS.clear()
    page, errors = _open(browser, url)
    for tab, names in (("Explore", ("new_steps", "new_K", "new_until_stable")), ("Edit", ("n_iter", "lr", "steps"))):
        page.locator(".bk-tab", has_text=tab).click()
        for name in names:
            box = page.locator(f".nb-{name} input")
            box.wait_for(timeout=30_000)
            good = box.input_value()
            for value in _BAD[name]:
                _check_refused(page, name, value)
            box.fill(good)  # a valid value clears the message and the border
            box.press("Enter")
            note = page.locator(f".nb-{name}-note")
            deadline = time.time() + 10
            while time.time() < deadline and note.is_visible():
                time.sleep(0.2)
            assert not note.is_visible(), name
            assert box.evaluate("el => getComputedStyle(el).borderTopColor") != "rgb(211, 47, 47)", name
    page.wait_for_timeout(500)
    assert not _SERVER_ERRORS, _SERVER_ERRORS  # no traceback for any value a person can type
    assert not errors, errors
    page.close()


def _overlaps(a: dict, b: dict) -> bool:
    return not (a["right"] <= b["left"] or b["right"] <= a["left"] or a["bottom"] <= b["top"] or b["bottom"] <= a["top"])


_RECTS = """el => { const r = e => { if (!e) return null; const b = e.getBoundingClientRect();
    return {left: b.left, right: b.right, top: b.top, bottom: b.bottom, width: b.width}; };
    return {title: r(el.querySelector('.gtitle')), bar: r(el.querySelector('.modebar'))}; }"""


def test_explore_at_1200px_markers_everywhere_axes_follow_the_cube_and_tables_fit(server, browser, tmp_path):
    url, st, _ = server
    page, errors = _open(browser, url)
    page.set_viewport_size({"width": 1200, "height": 900})
    page.wait_for_timeout(1500)
    plots = _plots(page)
    for i in range(3):  # no map title under the toolbar at 1200 px
        plots.nth(i).hover()
        page.wait_for_timeout(200)
        rects = plots.nth(i).evaluate(_RECTS)
        assert rects["title"] and rects["bar"] and not _overlaps(rects["title"], rects["bar"]), rects
    page.screenshot(path=str(tmp_path / "explore-1200.png"), full_page=True)

    click_plot(page, plots.nth(1), 20, 30)
    _wait_for(plots.nth(3), "el => el.data.length >= 1")
    for i in range(3):  # the numbered marker on every map, filled, with a white outline
        m = _wait_for(plots.nth(i), "el => { const t = el.data[el.data.length - 1]; return t.x.length === 1 && t; }")
        assert m["marker"]["symbol"] == "circle" and m["marker"]["line"]["color"] == "white", m["marker"]

    select = page.locator(".explore-controls select").first
    label = next(o for o in select.locator("option").all_inner_texts() if o.startswith("zz1"))
    assert "K 32" in label and "30 steps" in label  # the cube named fully
    select.select_option(label=label)
    rng = _wait_for(plots.nth(1), "el => el._fullLayout && el._fullLayout.xaxis && el._fullLayout.xaxis.range[1] < 20 "
                                  "&& el._fullLayout.xaxis.range")
    assert rng == pytest.approx([-0.5, 15.5], abs=1e-6)  # the 64-px cube's axes are gone
    assert plots.nth(1).evaluate("el => el._fullLayout.yaxis.range") == pytest.approx([15.5, -0.5], abs=1e-6)

    page.locator(".bk-tab", has_text="Saliency").click()
    rows = page.locator(".saliency-table .tabulator-row")
    deadline = time.time() + 120
    while time.time() < deadline and rows.count() < 2:
        time.sleep(0.3)
    for width in (1200, 1500, 1920):  # the per-image table fits: no sideways scroll inside it
        page.set_viewport_size({"width": width, "height": 900})
        page.wait_for_timeout(800)
        for table in (".saliency-table", ".saliency-averages"):
            holder = page.locator(f"{table} .tabulator-tableholder")
            sw, cw = holder.evaluate("el => [el.scrollWidth, el.clientWidth]")
            assert sw <= cw + 1, (width, table, sw, cw)
        page.screenshot(path=str(tmp_path / f"saliency-{width}.png"), full_page=True)
    assert not errors, errors
    page.close()
