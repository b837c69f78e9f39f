"""Screenshots of the three views for the README, taken in headless Chromium on a real store.

    python -m devtools.screenshots --store runs/cubestore --dataset /work/shared/data/osie \\
        --image 1654 --out docs/img [--edit-iter 20] [--edit-steps 10]

Serves the dashboard on 127.0.0.1 (any free port), opens it in Debian's Chromium
(/usr/bin/chromium) and, like a person would: picks the cube of `--image`, clicks three
pixels and moves the timestep slider (dash-explore.png); opens Saliency (dash-saliency.png);
opens Edit, draws a box, clicks a reference pixel, launches a transfer with the model and
waits for the result (dash-edit.png).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from .browser import click_plot, drag_box, launch, pane_text, plot_extent

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m devtools.screenshots", description=__doc__.split("\n")[0])
    ap.add_argument("--store", required=True)
    ap.add_argument("--dataset", default=None)
    ap.add_argument("--model", default=None)
    ap.add_argument("--image", default=None, help="name (stem) of the cube to show in Explore")
    ap.add_argument("--edit-image", default=None, help="image file for Edit (default: the first sample)")
    ap.add_argument("--edit-iter", type=int, default=20)
    ap.add_argument("--edit-steps", type=int, default=10)
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
    try:
        with sync_playwright() as p, tempfile.TemporaryDirectory() as profile:
            bctx = launch(p, profile, width=1600)
            page = bctx.new_page()
            page.goto(f"http://127.0.0.1:{port}/", timeout=300_000)
            plots = page.locator(".js-plotly-plot")
            plots.nth(3).wait_for(state="visible", timeout=180_000)
            if "explore" in views:
                if args.image:
                    sel = page.locator(".explore-controls select").first
                    label = next(o for o in sel.evaluate("s => Array.from(s.options).map(o => o.text)")
                                 if o.startswith(args.image + " "))
                    sel.select_option(label=label)
                    page.wait_for_timeout(2500)
                fl = plots.nth(1)
                H = fl.evaluate("el => el._fullLayout.yaxis.range[0] + 0.5")
                for fx, fy in ((0.3, 0.35), (0.62, 0.55), (0.8, 0.2)):
                    click_plot(page, fl, round(H * fx), round(H * fy), settle_ms=600)
                handle = page.locator(".explore-t-slider .noUi-handle")
                handle.focus()
                for _ in range(12):
                    page.keyboard.press("ArrowRight")
                page.wait_for_timeout(1500)
                page.mouse.move(5, 5)
                page.screenshot(path=str(out / "dash-explore.png"), full_page=True)
                print(f"wrote {out / 'dash-explore.png'}")
            if "saliency" in views:
                page.locator(".bk-tab", has_text="Saliency").click()
                deadline = time.time() + 900
                page.wait_for_timeout(3000)
                while time.time() < deadline:  # scoring runs in the background
                    if page.locator(".saliency-table .tabulator-row").count() > 0:
                        break
                    page.wait_for_timeout(1000)
                page.locator(".saliency-table .tabulator-row").first.click()  # the best-predicted image
                page.wait_for_timeout(2500)
                page.screenshot(path=str(out / "dash-saliency.png"), full_page=True)
                print(f"wrote {out / 'dash-saliency.png'}")
            if "edit" in views:
                page.locator(".bk-tab", has_text="Edit").click()
                img = page.locator(".edit-image .js-plotly-plot")
                img.wait_for(state="visible", timeout=60_000)
                if args.edit_image:
                    page.locator(".edit-image-select select").select_option(label=Path(args.edit_image).name)
                    page.wait_for_timeout(1500)
                for name, value in (("n_iter", args.edit_iter), ("steps", args.edit_steps)):
                    box = page.locator(f".edit-{name} input")
                    box.fill(str(value))
                    box.press("Enter")
                W, H = plot_extent(img)
                drag_box(page, img, (W * 0.56, H * 0.55), (W * 0.72, H * 0.75))
                page.wait_for_timeout(800)
                click_plot(page, img, W * 0.2, H * 0.85, settle_ms=600)
                page.locator(".edit-launch button").click()
                status = page.locator(".edit-status")
                deadline = time.time() + 1800
                while time.time() < deadline and not pane_text(status).strip().startswith(("done", "failed")):
                    page.wait_for_timeout(2000)
                page.wait_for_timeout(1500)
                page.mouse.move(5, 5)
                page.screenshot(path=str(out / "dash-edit.png"), full_page=True)
                print(f"wrote {out / 'dash-edit.png'} ({pane_text(status).strip()[:80]})")
            bctx.close()
    finally:
        srv.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
