"""The experiments' report: report.html (plotly figures, tables), figures.json (plotly JSON of every
figure), results.json (every number and the configuration), and PNG map grids (PIL).

The HTML embeds plotly.js once (no CDN: it opens offline). Written to `out/*.partial` first, then
renamed, so that an interrupted run never leaves a report that looks complete.
"""
from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

import numpy as np
from PIL import Image
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .figures import line_plot, map_grid

__all__ = ["write_report", "build_figures", "tables_markdown"]

_BASE_ORDER = ("centre_bias", "spectral_residual", "chance")


def _ordered(names) -> list[str]:
    names = list(names)
    first = [n for n in names if n.startswith("fluctuation")]
    mid = [n for n in names if n.startswith("mean_rate")]
    return first + mid + [n for n in _BASE_ORDER if n in names] + [n for n in names if n not in first + mid
                                                                  and n not in _BASE_ORDER]


def build_figures(results: dict) -> dict:
    """name -> plotly Figure for every experiment present in `results`."""
    figs = {}
    if "paired" in results:
        p = results["paired"]["maps"]
        names = _ordered(p)
        fr = [p[n]["fraction"] for n in names]
        lo = [p[n]["fraction"] - p[n]["wilson_95"][0] for n in names]
        hi = [p[n]["wilson_95"][1] - p[n]["fraction"] for n in names]
        f = go.Figure(go.Bar(x=names, y=fr, error_y=dict(type="data", array=hi, arrayminus=lo),
                             name="draw 0 (paper protocol)"))
        f.add_trace(go.Scatter(x=names, y=[p[n]["pair_auc_mean"] for n in names], mode="markers",
                               marker=dict(size=10, symbol="diamond"), name="mean all-pairs P(salient > not)"))
        f.add_hline(y=0.5, line_dash="dot")
        f.update_layout(title="Paired test: fraction of images where the salient pixel's value is higher "
                              "(95% Wilson interval)", yaxis=dict(range=[0, 1], title="fraction"),
                        template="plotly_white")
        figs["paired"] = f
    if "predictor" in results:
        s = results["predictor"]["summary"]
        names = _ordered(s)
        metrics = list(next(iter(s.values())))
        f = make_subplots(rows=1, cols=len(metrics), subplot_titles=metrics)
        for j, m in enumerate(metrics):
            f.add_trace(go.Bar(x=names, y=[s[n][m]["mean"] for n in names], showlegend=False,
                               error_y=dict(type="data", array=[s[n][m]["sem"] for n in names])), row=1, col=j + 1)
        f.update_layout(title="Saliency metrics, mean over images (error bar: s.e.m.); KLD lower is better",
                        template="plotly_white", height=450, width=max(900, 260 * len(metrics)))
        figs["predictor"] = f
    if "curves" in results:
        c = results["curves"]
        ts = c["timesteps"]
        f = go.Figure()
        for key, label, colour in (("salient", "salient pixels", "crimson"), ("non_salient", "non-salient pixels",
                                                                               "steelblue")):
            m, sd = np.array(c[f"{key}_mean"]), np.array(c[f"{key}_sd"])
            f.add_trace(go.Scatter(x=ts + ts[::-1], y=list(m + sd) + list((m - sd)[::-1]), fill="toself",
                                   line=dict(width=0), fillcolor=colour, opacity=0.15, showlegend=False))
            f.add_trace(go.Scatter(x=ts, y=m, name=label, line=dict(color=colour)))
        f.update_layout(title=f"Mean normalised generation curve, top vs bottom {c['frac']:.0%} density "
                              f"({c['n']} images, band: sd)", xaxis_title="timestep t",
                        yaxis_title="rate / sum over t", template="plotly_white")
        figs["curves_mean"] = f
        for ex in c["examples"]:
            f = go.Figure()
            dens = np.array(ex["density"])
            for x, (curve, d) in enumerate(zip(ex["curves"], dens)):
                r = int(255 * d)
                f.add_trace(go.Scatter(x=ts, y=curve, mode="lines", line=dict(color=f"rgb({r},40,{255 - r})", width=1),
                                       name=f"x={x} density={d:.2f}", showlegend=False))
            f.update_layout(title=f"{ex['image']}: curves of {ex['axis']} {ex['index']} (red = salient, blue = not)",
                            xaxis_title="timestep t", yaxis_title="generation rate", template="plotly_white")
            figs[f"curves_{ex['image']}"] = f
    if "perceptual" in results and results["perceptual"].get("example"):
        e = results["perceptual"]["example"]
        f = make_subplots(rows=1, cols=3, subplot_titles=["perceptual state s(t)", "|ds/dt| (alternative curve)",
                                                          "rate curve (ours)"])
        for r, (label, colour) in enumerate((("salient region", "crimson"), ("non-salient region", "steelblue"))):
            for j, key in enumerate(("state", "derivative", "rate")):
                f.add_trace(go.Scatter(x=e["timesteps"], y=e[key][r], name=label, line=dict(color=colour),
                                       showlegend=j == 0), row=1, col=j + 1)
        f.update_layout(title=f"{e['image']}: perceptual generation state ({results['perceptual']['features']} "
                              "features) vs the rate curve", template="plotly_white", width=1200)
        figs["perceptual_example"] = f
        rows = results["perceptual"]["per_image"]
        f = go.Figure()
        for reg in ("salient", "non_salient"):
            f.add_trace(go.Histogram(x=[r[f"agreement_{reg}"]["pearson"] for r in rows], name=reg, opacity=0.6))
        f.update_layout(title="Pearson r between |ds/dt| and the rate curve per image (t > t_b)", barmode="overlay",
                        xaxis_title="r", template="plotly_white")
        figs["perceptual_agreement"] = f
    if "tune" in results:
        rows = results["tune"]["rows"]
        Ls = sorted({r["window"] for r in rows})
        tbs = sorted({r["t_b"] for r in rows})
        f = make_subplots(rows=1, cols=2, subplot_titles=["raw curves", "curves normalised to sum 1"])
        for j, nm in enumerate((False, True)):
            z = [[next((r["AUC_Judd"] for r in rows if r["window"] == L and r["t_b"] == tb and r["normalise"] == nm),
                       None) for tb in tbs] for L in Ls]
            f.add_trace(go.Heatmap(z=z, x=[str(t) for t in tbs], y=[str(L) for L in Ls], coloraxis="coloraxis",
                                   text=[[f"{v:.3f}" if v is not None else "" for v in row] for row in z],
                                   texttemplate="%{text}"), row=1, col=j + 1)
        f.update_layout(title=f"Mean AUC-Judd of the fluctuation map on {len(results['tune']['images'])} "
                              "development images (x: t_b, y: window L)", template="plotly_white",
                        coloraxis=dict(colorscale="Viridis"))
        figs["tune"] = f
    return figs


def _fmt(v, d=3):
    return f"{v:.{d}f}" if isinstance(v, float) else str(v)


def tables_markdown(results: dict) -> str:
    """The paired-test and metric tables as Markdown (for READMEs and the console)."""
    out = []
    if "paired" in results:
        p = results["paired"]
        out.append(f"Paired test ({len(p['images'])} images; rule: {p['rule']['description']}; "
                   f"frac={p['rule']['frac']}, seed={p['rule']['seed']}, draws={p['rule']['draws']})\n")
        out.append("| map | wins / n (draw 0) | fraction | 95% CI | sign-test p | mean over draws | "
                   "all-pairs P(sal > non) | images with P > 0.5 (sign p) |")
        out.append("|---|---|---|---|---|---|---|---|")
        for n in _ordered(p["maps"]):
            m = p["maps"][n]
            out.append(f"| {n} | {m['wins']} / {m['n']} | {m['fraction']:.3f} | [{m['wilson_95'][0]:.3f}, "
                       f"{m['wilson_95'][1]:.3f}] | {m['sign_p']:.3g} | {m['fraction_mean_over_draws']:.3f} | "
                       f"{m['pair_auc_mean']:.3f} | {m['pair_auc_images_above_half']} / {m['n']} "
                       f"({m['pair_auc_sign_p']:.3g}) |")
        out.append("")
    if "predictor" in results:
        s = results["predictor"]["summary"]
        metrics = list(next(iter(s.values())))
        out.append(f"Saliency metrics, mean ± s.e.m. over {next(iter(next(iter(s.values())).values()))['n']} "
                   "images (KLD: lower is better)\n")
        out.append("| map | " + " | ".join(metrics) + " |")
        out.append("|---|" + "---|" * len(metrics))
        for n in _ordered(s):
            out.append(f"| {n} | " + " | ".join(f"{s[n][m]['mean']:.3f} ± {s[n][m]['sem']:.3f}" for m in metrics)
                       + " |")
        out.append("")
    if "tune" in results:
        t = results["tune"]
        b = t["best"]
        out.append(f"Fluctuation (L, t_b) sweep on {len(t['images'])} images ({t['variant']}); criterion "
                   f"{t['criterion']}; best: L={b['window']}, t_b={b['t_b']}, normalise={b['normalise']} "
                   f"(AUC_Judd {b['AUC_Judd']:.3f} ± {b['AUC_Judd_sem']:.3f})\n")
        out.append("| L | t_b | normalise | AUC_Judd | NSS | CC | all-pairs P(sal > non) |")
        out.append("|---|---|---|---|---|---|---|")
        for r in sorted(t["rows"], key=lambda r: -r["AUC_Judd"]):
            out.append(f"| {r['window']} | {r['t_b']} | {r['normalise']} | {r['AUC_Judd']:.3f} ± {r['AUC_Judd_sem']:.3f}"
                       f" | {r['NSS']:.3f} | {r['CC']:.3f} | {r['pair_auc']:.3f} |")
        out.append("")
    if "protocol" in results:
        for name, pr in results["protocol"].items():
            out.append(f"Paper protocol (Appendix B.1: a maximal vs a minimal ground-truth pixel, raw curves), {name}\n")
            out.append("| L | t_b | wins / n (draw 0) | fraction [95% CI] | sign p | mean over draws |")
            out.append("|---|---|---|---|---|---|")
            for r in pr["settings"]:
                out.append(f"| {r['window']} | {r['t_b']:g} | {r['wins']} / {r['n']} | {r['fraction']:.3f} "
                           f"[{r['wilson_95'][0]:.3f}, {r['wilson_95'][1]:.3f}] | {r['sign_p']:.3g} | "
                           f"{r['fraction_mean_over_draws']:.3f} |")
            out.append("")
    if "perceptual" in results:
        q = results["perceptual"]
        a = q["agreement_mean"]
        out.append(f"Perceptual state ({q['features']} features, {len(q['per_image'])} images): mean Pearson r "
                   f"of |ds/dt| with the rate curve: salient region {a['salient']['pearson']:.3f}, non-salient "
                   f"{a['non_salient']['pearson']:.3f}; mean TV distance {a['salient']['tv']:.3f} / "
                   f"{a['non_salient']['tv']:.3f}.")
        for k, v in q["salient_region_fluctuates_more"].items():
            out.append(f"- salient region's {k} fluctuates more: {v['wins']} / {v['n']} = {v['fraction']:.3f} "
                       f"[{v['wilson_95'][0]:.3f}, {v['wilson_95'][1]:.3f}], sign p = {v['sign_p']:.3g}")
        out.append("")
    return "\n".join(out)


def _md_table_html(md: str) -> str:
    lines, out, in_table = md.splitlines(), [], False
    for ln in lines:
        if ln.startswith("|"):
            cells = [html.escape(c.strip()) for c in ln.strip("|").split("|")]
            if set("".join(cells)) <= set("-"):
                continue
            if not in_table:
                out.append("<table><tr>" + "".join(f"<th>{c}</th>" for c in cells) + "</tr>")
                in_table = True
            else:
                out.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
        else:
            if in_table:
                out.append("</table>")
                in_table = False
            if ln.strip():
                out.append(f"<p>{html.escape(ln)}</p>")
    if in_table:
        out.append("</table>")
    return "\n".join(out)


def grid_png(prep, n: int = 4):
    """image | fixation density | fluctuation (model grid) | centre bias | spectral residual, first n images."""
    name = next(iter(prep.grid_maps))
    rows, labels = [], []
    for i, it in enumerate(prep.items[:n]):
        with Image.open(it.image_path) as im:
            img = im.convert("RGB")
        rows.append([img, it.density, prep.grid_maps[name][i], prep.maps["centre_bias"][i],
                     prep.maps["spectral_residual"][i]])
        labels.append(it.name)
    return map_grid(rows, ["image", "fixation density", name, "centre bias", "spectral residual"], row_labels=labels)


def write_report(results: dict, prep, out) -> Path:
    """Write report.html, figures.json, results.json, maps.png under `out` (atomically per file)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    figs = build_figures(results)
    png = grid_png(prep)
    buf = io.BytesIO()
    png.save(buf, format="PNG", optimize=True)
    _atomic(out / "maps.png", buf.getvalue())
    if "curves" in results:
        c = results["curves"]
        lp = line_plot(c["timesteps"], [
            {"y": c["salient_mean"], "band": c["salient_sd"], "label": f"top {c['frac']:.0%} density", "colour": (200, 30, 50)},
            {"y": c["non_salient_mean"], "band": c["non_salient_sd"], "label": f"bottom {c['frac']:.0%}",
             "colour": (40, 100, 180)}],
            title=f"mean normalised generation curve ({c['n']} images, band: sd)", xlabel="timestep t",
            ylabel="rate / sum")
        b2 = io.BytesIO()
        lp.save(b2, format="PNG", optimize=True)
        _atomic(out / "curves.png", b2.getvalue())
    _atomic(out / "figures.json", json.dumps({k: json.loads(f.to_json()) for k, f in figs.items()}).encode())
    _atomic(out / "results.json", json.dumps(results, indent=1, default=_json_default).encode())
    md = tables_markdown(results)
    _atomic(out / "tables.md", md.encode())
    parts = [*html_head("saliency experiments", "Fluctuation and saliency: experiments", results["config"], 1400),
             _md_table_html(md),
             f"<img alt='maps' src='data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}'/>"]
    for i, (k, f) in enumerate(figs.items()):
        parts.append(f"<h2>{html.escape(k)}</h2>")
        parts.append(f.to_html(full_html=False, include_plotlyjs=(i == 0)))
    parts.append("</body></html>")
    _atomic(out / "report.html", "\n".join(parts).encode())
    return out / "report.html"


def html_head(title: str, heading: str, config: dict, max_width: int) -> list[str]:
    """The opening of a report page: head, table style, the heading and the configuration as code."""
    cfg = html.escape(json.dumps(config, default=_json_default))
    return [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
            f"<style>body{{font-family:sans-serif;margin:2em;max-width:{int(max_width)}px}} "
            "table{border-collapse:collapse} td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px}"
            "</style></head><body>",
            f"<h1>{html.escape(heading)}</h1>", f"<p><code>{cfg}</code></p>"]


def _atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".partial")
    tmp.write_bytes(data)
    tmp.replace(path)


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    return str(o)
