"""Dashboard latency benchmark: first page load, click-to-curve, slider-to-map in Chromium.

    python -m bench.bench_dashboard [--size 512] [--steps 50] [--events 20] [--idle 60] [--json out.json]

Writes a synthetic `size`x`size`x`steps` cube into a temporary CubeStore, serves the dashboard
(`dashboards.app.serve`, 127.0.0.1) and drives Debian's Chromium (/usr/bin/chromium, headless)
with Playwright. Latencies are measured inside the page: from the `mousedown` / `keydown`
event (a capturing listener on the document) to the first animation frame at which the plot
shows the new state (the clicked pixel's curve in the curve plot; the new timestep's title in
the rate map), so they include the websocket round trip, the server's work (Python) and
Plotly's redraw. Both display resolutions are measured side by side in one run: maps
block-averaged to 256 per side (the default) and sent at full resolution. The server-side share
(the view's Python work, no browser) is measured separately on the same cube. Idle CPU: the
`workbench dashboard` command serving the same store, one tab open and untouched for `--idle`
seconds; the server process's CPU time over that window, as a share of one core.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from devtools.browser import CHROMIUM, launch, plot_point, wait_for_port
from bench.measure import load_average

__all__ = ["main"]

_ARM = """([kind]) => { window.__t0 = null; window.__t1 = null;
  document.addEventListener(kind, () => { window.__t0 = performance.now(); }, {capture: true, once: true}); }"""
_WATCH = """([idx, js]) => { window.__lat = null;
  const el = window.__plots()[idx];
  const ok = new Function('el', 'return ' + js);
  const tick = () => { if (window.__t0 !== null && ok(el)) { window.__lat = performance.now() - window.__t0; }
                       else requestAnimationFrame(tick); };
  requestAnimationFrame(tick); }"""
_PLOTS = """() => { window.__plots = () => { const out = [];
  const walk = root => { root.querySelectorAll('*').forEach(n => { if (n.classList && n.classList.contains('js-plotly-plot')) out.push(n);
                                                           if (n.shadowRoot) walk(n.shadowRoot); }); };
  walk(document); return out; }; }"""


def _stats(xs: list[float]) -> dict:
    a = np.asarray(xs, dtype=np.float64)
    return {"n": int(a.size), "median_ms": float(np.median(a)), "p90_ms": float(np.percentile(a, 90)),
            "min_ms": float(a.min()), "max_ms": float(a.max())}


def _latency(page, timeout_ms: int = 30_000) -> float:
    page.wait_for_function("() => window.__lat !== null", timeout=timeout_ms, polling=20)
    return float(page.evaluate("() => window.__lat"))


def measure_browser(url: str, size: int, steps: int, events: int, shot: str | None = None) -> dict:
    """First load, click-to-curve and slider-to-map latencies (ms) of the dashboard at `url`."""
    from playwright.sync_api import sync_playwright

    out: dict = {}
    with sync_playwright() as p, tempfile.TemporaryDirectory() as profile:
        ctx = launch(p, profile)
        page = ctx.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        t = time.perf_counter()
        page.goto(url, timeout=300_000)
        plots = page.locator(".js-plotly-plot")
        plots.nth(3).wait_for(state="visible", timeout=120_000)
        fl = plots.nth(1)
        fl.evaluate("el => new Promise(r => { const ok = () => el.data && el.data.some(d => d.type === 'heatmap'); "
                    "const f = () => ok() ? r() : requestAnimationFrame(f); f(); })")
        out["first_load_s"] = time.perf_counter() - t
        page.evaluate(_PLOTS)
        page.wait_for_timeout(500)
        rng = np.random.default_rng(0)
        clicks = []
        for i in range(events):
            x, y = (int(v) for v in rng.integers(8, size - 8, 2))
            px, py = plot_point(fl, x, y)
            page.mouse.move(px - 15, py - 10)
            page.mouse.move(px, py, steps=4)
            page.wait_for_timeout(120)
            # the map may be block-averaged: the clicked cell is the block's, so wait for a new last curve
            prev = plots.nth(3).evaluate("el => el.data.length ? el.data[el.data.length - 1].name : ''")
            page.evaluate(_ARM, ["mousedown"])
            js = f"el.data.length > 0 && el.data[el.data.length - 1].name !== {json.dumps(prev)}"
            page.evaluate(_WATCH, [3, js])
            page.mouse.click(px, py)
            clicks.append(_latency(page))
        out["click_to_curve"] = _stats(clicks)
        handle = page.locator(".explore-t-slider .noUi-handle")
        handle.focus()
        slides = []
        for k in range(2, min(events + 2, steps + 1)):
            page.evaluate(_ARM, ["keydown"])
            js = f"el.layout.title.text.includes('(step {k}/{steps})')"
            page.evaluate(_WATCH, [2, js])
            page.keyboard.press("ArrowRight")
            slides.append(_latency(page))
            page.wait_for_timeout(80)
        out["slider_to_map"] = _stats(slides)
        if shot:
            page.screenshot(path=shot, full_page=True)
        out["console_errors"] = errors
        t = time.perf_counter()
        page2 = ctx.new_page()
        page2.goto(url, timeout=300_000)
        page2.locator(".js-plotly-plot").nth(3).wait_for(state="visible", timeout=120_000)
        out["second_load_s"] = time.perf_counter() - t
        ctx.close()
    return out


def measure_server(ctx, max_side: int, events: int) -> dict:
    """The view's Python work alone (no browser): a click, and a timestep change."""
    from dashboards.explore import ExploreView

    v = ExploreView(ctx, max_side=max_side)
    H, W = v.shape
    rng = np.random.default_rng(1)
    clicks, slides = [], []
    for i in range(events):
        y, x = (int(c) for c in rng.integers(0, min(H, W), 2))
        t = time.perf_counter()
        v.click(y, x)
        clicks.append(1e3 * (time.perf_counter() - t))
        t = time.perf_counter()
        v.t_index = (v.t_index + 1) % (v.dataset.sizes["t"])
        slides.append(1e3 * (time.perf_counter() - t))
    return {"click_to_curve": _stats(clicks), "slider_to_map": _stats(slides)}


def measure_idle(store: Path, seconds: float) -> dict:
    """CPU share (of one core) of a `workbench dashboard` process with one untouched tab, over `seconds`."""
    import subprocess

    import psutil
    from playwright.sync_api import sync_playwright

    from dashboards.app import free_port

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "workbench.cli", "dashboard", "--store", str(store), "--port",
                             str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, 120)
        with sync_playwright() as p, tempfile.TemporaryDirectory() as profile:
            ctx = launch(p, profile)
            page = ctx.new_page()
            page.goto(f"http://127.0.0.1:{port}/", timeout=300_000)
            page.locator(".js-plotly-plot").nth(3).wait_for(state="visible", timeout=120_000)
            page.wait_for_timeout(5000)
            server = psutil.Process(proc.pid)
            c0, t0, load0 = sum(server.cpu_times()[:2]), time.perf_counter(), load_average()
            time.sleep(seconds)
            c1, t1 = sum(server.cpu_times()[:2]), time.perf_counter()
            ctx.close()
        return {"seconds": t1 - t0, "cpu_s": c1 - c0, "share_of_one_core": (c1 - c0) / (t1 - t0),
                "load_before": load0, "load_after": load_average()}
    finally:
        proc.terminate()
        proc.wait(30)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.bench_dashboard", description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, default=512, help="cube grid size (default 512)")
    ap.add_argument("--steps", type=int, default=50, help="timesteps of the cube (default 50)")
    ap.add_argument("--events", type=int, default=20, help="clicks and slider steps per configuration")
    ap.add_argument("--json", default="bench/results/dashboard.json", help="where to write the figures")
    ap.add_argument("--screenshot", default=None, help="save a screenshot of the Explore view after the run")
    ap.add_argument("--idle", type=float, default=60, help="seconds of idle CPU measurement, one tab open (0: skip)")
    ap.add_argument("--only-default", action="store_true", help="measure the default display (256 per side) only")
    args = ap.parse_args(argv)
    if not CHROMIUM.exists():
        print(f"bench_dashboard: {CHROMIUM} is missing: apt-get install chromium", file=sys.stderr)
        return 2
    from cache.store import CubeStore
    from dashboards.app import free_port, serve
    from dashboards.context import AppContext
    from devtools.synthetic import synthetic_cube

    res: dict = {"cube": [args.steps, args.size, args.size], "events": args.events, "host": platform.node(),
                 "cpus": os.cpu_count(), "load_before": load_average()}
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        st = CubeStore(Path(tmp) / "store")
        st.put(synthetic_cube(args.size, args.size, args.steps, name="bench"))
        res["write_cube_s"] = time.perf_counter() - t
        for max_side in ((256,) if args.only_default else (256, args.size)):
            ctx = AppContext.from_paths(st.path, device="cpu")
            ctx.max_side = max_side
            port = free_port()
            srv = serve(ctx, port=port)
            time.sleep(1.0)
            label = f"display {min(max_side, args.size)}"
            shot = args.screenshot if max_side == 256 else None
            res[label] = {"browser": measure_browser(f"http://127.0.0.1:{port}/", args.size, args.steps,
                                                     args.events, shot),
                          "server_only": measure_server(ctx, max_side, args.events)}
            srv.stop()
        if args.idle > 0:
            res["idle"] = measure_idle(st.path, args.idle)
    res["load_after"] = load_average()
    print(f"dashboard latency, cube {args.steps}x{args.size}x{args.size}, {args.events} events each "
          f"(load average {res['load_before'][0]:.1f} -> {res['load_after'][0]:.1f}, {os.cpu_count()} CPUs)")
    print(f"{'display':>12} {'measure':>16} {'browser median':>15} {'p90':>8} {'server median':>14}")
    for label in [k for k in res if k.startswith("display")]:
        b, s = res[label]["browser"], res[label]["server_only"]
        for m in ("click_to_curve", "slider_to_map"):
            print(f"{label:>12} {m:>16} {b[m]['median_ms']:>12.0f} ms {b[m]['p90_ms']:>5.0f} ms "
                  f"{s[m]['median_ms']:>11.0f} ms")
        print(f"{label:>12} {'first load':>16} {b['first_load_s']:>13.2f} s   (second tab {b['second_load_s']:.2f} s)"
              f"{'  console errors: ' + str(len(b['console_errors'])) if b['console_errors'] else ''}")
    if "idle" in res:
        i = res["idle"]
        print(f"idle server, one tab open: {100 * i['share_of_one_core']:.2f} % of one core over {i['seconds']:.0f} s "
              f"(load average {i['load_before'][0]:.1f} -> {i['load_after'][0]:.1f})")
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
