"""The information experiment's outputs: results.json, report.html (tables + figures inline) and the
PNG figures bits_vs_t.png, feature_ranking.png, per_image_scatter.png (drawn with PIL: no plotting
dependency). Every file is written to a temporary name, then renamed."""
from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from .figures import line_plot
from .report import _atomic, _json_default, _md_table_html, html_head

__all__ = ["write_information_report", "information_markdown", "bits_vs_t_png", "ranking_png", "scatter_png"]

_COLOURS = [(200, 30, 50), (40, 100, 180), (30, 150, 60), (150, 80, 160)]


def _fmt_ig(e: dict) -> str:
    return f"{e['mean']:+.4f} [{e['ci95'][0]:+.4f}, {e['ci95'][1]:+.4f}]"


def information_markdown(res: dict) -> str:
    """Markdown tables of every figure of the results (bits per fixation over the centre bias, 95 % CI)."""
    cb = res["centre_bias"]
    out = [f"Grid {res['grid'][0]}x{res['grid'][1]} cells; training images with cubes: {len(res['images']['train'])}; "
           f"held-out images: {len(res['images']['held_out'])}; centre bias: KDE of {cb['n_train_images']} training "
           f"images' fixations (bandwidth {cb['bandwidth']}, eps {cb['eps']}), "
           f"log-likelihood over uniform {_fmt_ig(cb['ll_over_uniform'])} bits/fixation.", "",
           "| feature family | IG over centre bias, bits/fix [95% CI] | n train | n held-out | blur (cells) | lambda |",
           "|---|---|---|---|---|---|"]
    for k, e in res["families"].items():
        out.append(f"| {k} | {_fmt_ig(e)} | {e['n_train']} | {e['n_test']} | {e['sigma']:g} | {e['lam']:g} |")
    out += ["", "| key: curves + low-level minus low-level | difference, bits/fix [95% CI] | images improved | "
                "Wilcoxon p |", "|---|---|---|---|"]
    for r, k in res.get("key", {}).items():
        d = k["difference"]
        out.append(f"| rate {r} ({k['n_train']} train, {k['n_test']} held-out) | {_fmt_ig(d)} | "
                   f"{d['fraction_positive']:.2f} | {d['wilcoxon_p']:.3g} |")
    out += ["", "| single feature (+ centre bias) | IG, bits/fix [95% CI] | blur |", "|---|---|---|"]
    for k, e in sorted(res["single"].items(), key=lambda kv: -kv[1]["mean"]):
        out.append(f"| {k} | {_fmt_ig(e)} | {e['sigma']:g} |")
    if res.get("map_density"):
        out += ["", "| map as a density (blur, softmax, centre-bias mixture) | IG, bits/fix [95% CI] | sigma | alpha "
                    "| w |", "|---|---|---|---|---|"]
        for k, e in res["map_density"].items():
            out.append(f"| {k} | {_fmt_ig(e)} | {e['sigma']:g} | {e['alpha']:.3f} | {e['w']:.3f} |")
    for r, rows in res.get("per_timestep", {}).items():
        if rows:
            best = max(rows, key=lambda x: x["mean"])
            out += ["", f"Bits vs t [{r}]: best timestep t={best['t']} with {best['mean']:+.4f} "
                        f"[{best['ci95'][0]:+.4f}, {best['ci95'][1]:+.4f}]; range {min(x['mean'] for x in rows):+.4f} "
                        f"to {max(x['mean'] for x in rows):+.4f} over {len(rows)} timesteps."]
    for r, p in res.get("protocol", {}).items():
        out += ["", f"| paper protocol [{r}]: L, t_b | fraction (draw 0) [Wilson 95%] | sign p | mean over draws |",
                "|---|---|---|---|"]
        for s in p["settings"]:
            out.append(f"| L={s['window']}, t_b={s['t_b']:g} | {s['fraction']:.2f} [{s['wilson_95'][0]:.2f}, "
                       f"{s['wilson_95'][1]:.2f}] ({s['wins']}/{s['n']}) | {s['sign_p']:.3g} | "
                       f"{s['fraction_mean_over_draws']:.3f} |")
    run = res.get("run", {})
    if run:
        out += ["", f"Run: {run['seconds']:.0f} s, load average {run['load_average_start'][0]:.1f} at the start, "
                    f"{run['load_average_end'][0]:.1f} at the end."]
    return "\n".join(out)


def bits_vs_t_png(res: dict) -> Image.Image | None:
    """Information gain of each timestep's rate map alone (95 % CI band), one line per rate definition."""
    series, ts = [], None
    for j, (r, rows) in enumerate(res.get("per_timestep", {}).items()):
        if not rows:
            continue
        rows = sorted(rows, key=lambda x: x["t"])
        t = [x["t"] for x in rows]
        if ts is not None and t != ts:
            continue
        ts = t
        m = np.array([x["mean"] for x in rows])
        half = np.array([(x["ci95"][1] - x["ci95"][0]) / 2 for x in rows])
        series.append({"y": m, "band": half, "label": f"rate {r}", "colour": _COLOURS[j % len(_COLOURS)]})
    if not series:
        return None
    lo = res["families"].get("lowlevel")
    if lo:
        series.append({"y": np.full(len(ts), lo["mean"]), "label": "low-level (all)", "colour": (120, 120, 120)})
    series.append({"y": np.zeros(len(ts)), "label": "centre bias", "colour": (0, 0, 0)})
    return line_plot(ts, series, title="information gain of the rate map at each timestep (+ centre bias)",
                     xlabel="timestep t", ylabel="bits/fix")


def _text_width(d: ImageDraw.ImageDraw, s: str) -> int:
    return int(d.textlength(s))


def ranking_png(res: dict, width: int = 760) -> Image.Image:
    """Horizontal bars: IG of every single feature and feature family, sorted, with 95 % CI whiskers."""
    rows = [(f"[family] {k}", e) for k, e in res["families"].items()] + list(res["single"].items())
    rows.sort(key=lambda kv: kv[1]["mean"])
    rows = rows[::-1]
    bar_h, left, top = 16, 260, 30
    H = top + bar_h * len(rows) + 40
    im = Image.new("RGB", (width, H), "white")
    d = ImageDraw.Draw(im)
    lo = min(0.0, min(e["ci95"][0] for _, e in rows))
    hi = max(1e-6, max(e["ci95"][1] for _, e in rows))
    span = hi - lo

    def x(v):
        return left + (v - lo) / span * (width - left - 20)

    d.text((8, 8), "information gain over the centre bias (bits/fixation, 95% CI), held-out images", fill="black")
    d.line([x(0), top - 4, x(0), H - 30], fill="black")
    for i, (k, e) in enumerate(rows):
        y = top + i * bar_h
        c = (90, 90, 90) if k.startswith("[family]") else (
            (40, 100, 180) if k.startswith("low:") else (200, 30, 50))
        d.rectangle([min(x(0), x(e["mean"])), y + 3, max(x(0), x(e["mean"])), y + bar_h - 3], fill=c)
        d.line([x(e["ci95"][0]), y + bar_h // 2, x(e["ci95"][1]), y + bar_h // 2], fill="black")
        d.text((4, y + 2), k[:42], fill="black")
    for k in range(5):
        v = lo + k * span / 4
        d.line([x(v), H - 30, x(v), H - 26], fill="black")
        d.text((x(v) - 14, H - 22), f"{v:.3f}", fill="black")
    return im


def scatter_png(res: dict, size: int = 420) -> Image.Image | None:
    """Per held-out image: IG of low-level alone (x) vs curves + low-level (y), primary rate."""
    fam = res["families"]
    r = res["rates"][0]
    a, b = fam.get("lowlevel"), fam.get(f"curves[{r}]+lowlevel")
    if not a or not b or len(a["per_image"]) != len(b["per_image"]):
        return None
    xs, ys = np.array(a["per_image"]), np.array(b["per_image"])
    lo, hi = float(min(xs.min(), ys.min())), float(max(xs.max(), ys.max()))
    hi = hi if hi > lo else lo + 1
    m = 50
    im = Image.new("RGB", (size, size), "white")
    d = ImageDraw.Draw(im)

    def p(u, v):
        return m + (u - lo) / (hi - lo) * (size - m - 15), size - m - (v - lo) / (hi - lo) * (size - m - 15)

    d.rectangle([m, 15, size - 15, size - m], outline="black")
    d.line([p(lo, lo), p(hi, hi)], fill=(150, 150, 150))
    for u, v in zip(xs, ys):
        cx, cy = p(u, v)
        d.ellipse([cx - 3, cy - 3, cx + 3, cy + 3], fill=(200, 30, 50) if v > u else (40, 100, 180))
    d.text((m, 2), f"per image IG (bits/fix): x low-level, y curves[{r}] + low-level", fill="black")
    d.text((m, size - 30), f"{lo:.2f}", fill="black")
    d.text((size - 50, size - 30), f"{hi:.2f}", fill="black")
    return im


def _png_bytes(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def write_information_report(res: dict, out: str | Path) -> Path:
    """Write results.json, tables.md, the PNG figures and report.html under `out`; returns report.html."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    figs = {"bits_vs_t.png": bits_vs_t_png(res), "feature_ranking.png": ranking_png(res),
            "per_image_scatter.png": scatter_png(res)}
    pngs = {k: _png_bytes(v) for k, v in figs.items() if v is not None}
    for k, b in pngs.items():
        _atomic(out / k, b)
    _atomic(out / "results.json", json.dumps(res, indent=1, default=_json_default).encode())
    md = information_markdown(res)
    _atomic(out / "tables.md", md.encode())
    parts = [*html_head("information gain of generation curves",
                        "Where people look: information gain over the centre bias", res["config"], 1200),
             _md_table_html(md)]
    for k, b in pngs.items():
        parts.append(f"<h2>{html.escape(k)}</h2><img alt='{html.escape(k)}' "
                     f"src='data:image/png;base64,{base64.b64encode(b).decode()}'/>")
    parts.append("</body></html>")
    _atomic(out / "report.html", "\n".join(parts).encode())
    return out / "report.html"
