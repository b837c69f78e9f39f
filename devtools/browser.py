"""Driving the dashboards in Debian's Chromium with Playwright: the one place that knows how to
start the browser offline and where a plotly data point lies on screen. Used by the browser tests,
the latency benchmark and the README screenshots (never `playwright`'s own browser download)."""
from __future__ import annotations

from pathlib import Path

__all__ = ["CHROMIUM", "CHROMIUM_ARGS", "launch", "wait_for_port", "plot_point", "click_plot", "drag_box", "plot_extent",
           "pane_text"]

CHROMIUM = Path("/usr/bin/chromium")
#: headless and offline: no sandbox (root in CI), no background or update traffic
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run"]


def launch(playwright, profile_dir: str | Path, *, width: int = 1500, height: int = 1000):
    """A headless Chromium context with a fresh profile in `profile_dir` (close it when done)."""
    return playwright.chromium.launch_persistent_context(str(profile_dir), executable_path=str(CHROMIUM),
                                                         headless=True, args=CHROMIUM_ARGS,
                                                         viewport={"width": width, "height": height})


def wait_for_port(port: int, timeout: float = 60.0, host: str = "127.0.0.1") -> bool:
    """Wait until a server listens on `port` (True) or `timeout` seconds pass (False).

    Only a TCP connection, never an HTTP request: a GET of a Panel page opens a Bokeh session that no
    browser ever connects to, which the server discards about 17 s later with a full `gc.collect()`
    (0.3 s of CPU with torch loaded), a burst an idle-CPU measurement would take for the server's own."""
    import socket
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=2):
                return True
        except OSError:
            time.sleep(0.3)
    return False


def plot_point(plot, x: float, y: float) -> tuple[float, float]:
    """Screen position (px) of data point (x, y) of a plotly plot (a Playwright locator)."""
    return tuple(plot.evaluate(
        """(el, [x, y]) => { const fl = el._fullLayout, r = el.getBoundingClientRect();
            return [r.left + fl.xaxis._offset + fl.xaxis.l2p(x), r.top + fl.yaxis._offset + fl.yaxis.l2p(y)]; }""",
        [x, y]))


def click_plot(page, plot, x: float, y: float, *, settle_ms: int = 0) -> None:
    """Click data point (x, y): move there in a few steps first, since plotly reports the hovered point."""
    px, py = plot_point(plot, x, y)
    page.mouse.move(px - 20, py - 20)
    page.mouse.move(px, py, steps=5)
    page.wait_for_timeout(250)
    page.mouse.click(px, py)
    if settle_ms:
        page.wait_for_timeout(settle_ms)


def plot_extent(plot) -> tuple[float, float]:
    """(W, H) in data units of a plotly image/heatmap shown with pixel-centred axes."""
    return tuple(plot.evaluate("el => [el._fullLayout.xaxis.range[1] + 0.5, el._fullLayout.yaxis.range[0] + 0.5]"))


def drag_box(page, plot, start: tuple[float, float], end: tuple[float, float]) -> None:
    """A box selection from data point `start` (x, y) to `end`, dragged in small steps."""
    x0, y0 = plot_point(plot, *start)
    x1, y1 = plot_point(plot, *end)
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move(x1, y1, steps=8)
    page.mouse.up()


def pane_text(loc) -> str:
    """The text a Panel pane shows (it lives in the component's shadow root)."""
    return loc.evaluate("""el => { const root = el.shadowRoot || el;
        return Array.from(root.children).filter(c => !['STYLE', 'LINK'].includes(c.tagName))
                    .map(c => c.innerText || c.textContent).join(' '); }""")
