"""Screenshots of the three views for the documentation, taken in headless Chromium on a real store.

    python -m devtools.screenshots --store runs/cubestore --dataset ../shared/data/osie \\
        --image 1654 --out docs/img [--widths 1200,1920] [--edit-iter 20] [--edit-steps 10] [--edit-launch]

Serves the dashboard on 127.0.0.1 (any free port), opens it in Debian's Chromium
(/usr/bin/chromium) and, like a person would, once per window width in --widths: picks the cube of
`--image`, clicks three pixels, ticks the significance mask and moves the timestep slider
(dash-explore-<width>.png); opens Saliency and clicks the first row (dash-saliency-<width>.png);
opens Edit, draws a box and clicks a reference pixel (dash-edit-<width>.png). With --edit-launch
(the last width only) it launches the edit with the model and waits until the status gives the time
left (--edit-wait left) or until the result (--edit-wait done), then cancels a running edit.
`python -m devtools.demo OUT` makes a synthetic store and data set to run this on without either.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from .browser import click_plot, drag_box, launch, pane_text, plot_extent

__all__ = ["main"]


def _explore(page, image: str | None, path: Path) -> None:
    plots = page.locator(".js-plotly-plot")
    page.locator(".bk-tab", has_text="Explore").click()
    plots.nth(3).wait_for(state="visible", timeout=180_000)
    if image:
        sel = page.locator(".explore-controls select").first
        label = next(o for o in sel.evaluate("s => Array.from(s.options).map(o => o.text)")
                     if o.startswith(image + " "))
        sel.select_option(label=label)
        page.wait_for_timeout(3000)
    fl = plots.nth(1)
    W, H = plot_extent(fl)
    if not fl.evaluate("el => el.data[el.data.length - 1].x.length"):
        for fx, fy in ((0.3, 0.35), (0.62, 0.55), (0.8, 0.2), (0.45, 0.8)):
            click_plot(page, fl, round(W * fx), round(H * fy), settle_ms=700)
        box = page.locator("label", has_text="Only pixels with significant F").locator("input[type=checkbox]")
        if box.count() and box.is_enabled():
            box.check()
        handle = page.locator(".explore-t-slider .noUi-handle")
        handle.focus()
        for _ in range(12):
            page.keyboard.press("ArrowRight")
    page.wait_for_timeout(5000)  # a loaded server takes a while to redraw
    page.mouse.move(5, 5)
    page.screenshot(path=str(path), full_page=True)
    print(f"wrote {path}")


def _saliency(page, path: Path) -> None:
    page.locator(".bk-tab", has_text="Saliency").click()
    deadline = time.time() + 900
    page.wait_for_timeout(3000)
    while time.time() < deadline:  # scoring runs in the background
        if page.locator(".saliency-table .tabulator-row").count() > 0:
            break
        page.wait_for_timeout(1000)
    page.locator(".saliency-table .tabulator-row").first.click()  # the best-predicted image
    page.wait_for_timeout(3000)
    page.mouse.move(5, 5)
    page.screenshot(path=str(path), full_page=True)
    print(f"wrote {path}")


def _edit(page, args, path: Path, launch_it: bool) -> None:
    page.locator(".bk-tab", has_text="Edit").click()
    img = page.locator(".edit-image .js-plotly-plot")
    img.wait_for(state="visible", timeout=60_000)
    if args.edit_image:
        page.locator(".edit-image-select select").select_option(label=Path(args.edit_image).name)
        page.wait_for_timeout(1500)
    for name, value in (("n_iter", args.edit_iter), ("steps", args.edit_steps)):
        box = page.locator(f".nb-{name} input")
        box.fill(str(value))
        box.press("Enter")
    W, H = plot_extent(img)
    drag_box(page, img, (W * 0.56, H * 0.55), (W * 0.72, H * 0.75))
    page.wait_for_timeout(800)
    click_plot(page, img, W * 0.2, H * 0.85, settle_ms=800)
    status = page.locator(".edit-status")
    if launch_it:
        page.locator(".edit-launch button").click()
        want = ("done", "failed") if args.edit_wait == "done" else ("done", "failed", "cancel")
        deadline = time.time() + 1800
        while time.time() < deadline:
            text = pane_text(status).strip()
            if text.startswith(want) or (args.edit_wait == "left" and " left" in text):
                break
            page.wait_for_timeout(2000)
    page.wait_for_timeout(1500)
    page.mouse.move(5, 5)
    page.screenshot(path=str(path), full_page=True)
    print(f"wrote {path} ({pane_text(status).strip()[:100]})")
    if launch_it and not pane_text(status).strip().startswith(("done", "failed")):
        page.locator(".bk-btn", has_text="Cancel").click()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m devtools.screenshots", description=__doc__.split("\n")[0])
    ap.add_argument("--store", required=True)
    ap.add_argument("--dataset", default=None)
    ap.add_argument("--model", default=None)
    ap.add_argument("--image", default=None, help="name (stem) of the cube to show in Explore")
    ap.add_argument("--edit-image", default=None, help="image file for Edit (default: the first sample)")
    ap.add_argument("--edit-iter", type=int, default=20)
    ap.add_argument("--edit-steps", type=int, default=10)
    ap.add_argument("--edit-launch", action="store_true", help="launch the edit (the last width only)")
    ap.add_argument("--edit-wait", choices=("left", "done"), default="left")
    ap.add_argument("--widths", default="1200,1920")
    ap.add_argument("--out", default="docs/img")
    ap.add_argument("--views", default="explore,saliency,edit")
    args = ap.parse_args(argv)
    from playwright.sync_api import sync_playwright

    from dashboards.app import free_port, serve
    from dashboards.context import AppContext

    ctx = AppContext.from_paths(args.store, dataset=args.dataset, model=args.model)
    port = free_port()
    srv = serve(ctx, port=port)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    views = args.views.split(",")
    widths = [int(w) for w in args.widths.split(",")]
    try:
        with sync_playwright() as p, tempfile.TemporaryDirectory() as profile:
            bctx = launch(p, profile, width=widths[0], height=1000)
            for n, width in enumerate(widths):
                page = bctx.new_page()
                page.set_viewport_size({"width": width, "height": 1000})
                page.goto(f"http://127.0.0.1:{port}/", timeout=300_000)
                page.locator(".js-plotly-plot").nth(3).wait_for(state="visible", timeout=300_000)
                if "explore" in views:
                    _explore(page, args.image, out / f"dash-explore-{width}.png")
                if "saliency" in views:
                    _saliency(page, out / f"dash-saliency-{width}.png")
                if "edit" in views:
                    _edit(page, args, out / f"dash-edit-{width}.png", args.edit_launch and n == len(widths) - 1)
                page.close()
            bctx.close()
    finally:
        srv.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
