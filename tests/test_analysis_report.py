"""analysis.report: what the experiments' report writes (files, numbers, order, escaping) for known results."""
from __future__ import annotations

import json
import types

import numpy as np
from PIL import Image

from analysis.datasets import SaliencyItem
from analysis.report import build_figures, tables_markdown, write_report


def _paired(wins, n):
    f = wins / n
    return {"wins": wins, "n": n, "fraction": f, "wilson_95": [f - 0.1, f + 0.1], "sign_p": 0.5,
            "fraction_mean_over_draws": f, "pair_auc_mean": 0.6, "pair_auc_images_above_half": wins,
            "pair_auc_sign_p": 0.25}


def _results():
    maps = {"centre_bias": _paired(6, 10), "fluctuation[h,hutchinson]": _paired(np.int64(7), 10),
            "chance": _paired(5, 10), "mean_rate[h]": _paired(4, 10)}
    summ = {name: {"NSS": {"mean": np.float32(0.5) if name.startswith("fl") else 0.25, "sem": 0.125, "n": 10},
                   "KLD": {"mean": 1.5, "sem": 0.0625, "n": 10}} for name in maps}
    tune_rows = [{"window": L, "t_b": tb, "normalise": nm, "AUC_Judd": 0.6 + L / 100 + tb / 1e4,
                  "AUC_Judd_sem": 0.01, "NSS": 0.3, "CC": 0.2, "pair_auc": 0.55}
                 for L in (3, 5) for tb in (0, 100) for nm in (False, True)]
    return {"config": {"data": "/d", "note": "<script>alert(1)</script>"},
            "paired": {"images": [f"im{i}" for i in range(10)], "maps": maps,
                       "rule": {"description": "top vs bottom", "frac": 0.05, "seed": 0, "draws": 20}},
            "predictor": {"summary": summ},
            "tune": {"rows": tune_rows, "best": max(tune_rows, key=lambda r: r["AUC_Judd"]), "images": ["a", "b"],
                     "variant": "h", "criterion": "AUC_Judd"}}


def test_tables_put_the_fluctuation_first_and_print_the_numbers():
    md = tables_markdown(_results())
    lines = md.splitlines()
    paired = [ln for ln in lines if ln.startswith("| ") and " / 10 |" in ln]
    assert [ln.split("|")[1].strip() for ln in paired] == ["fluctuation[h,hutchinson]", "mean_rate[h]",
                                                             "centre_bias", "chance"]
    assert paired[0] == ("| fluctuation[h,hutchinson] | 7 / 10 | 0.700 | [0.600, 0.800] | 0.5 | 0.700 | 0.600 | "
                         "7 / 10 (0.25) |")
    assert "| fluctuation[h,hutchinson] | 0.500 ± 0.125 | 1.500 ± 0.062 |" in md
    assert "mean ± s.e.m. over 10 images" in md
    # the sweep's table is sorted by AUC-Judd, best first, and names the best setting
    sweep = [ln for ln in lines if ln.startswith("| 5 |") or ln.startswith("| 3 |")]
    assert len(sweep) == 8 and sweep[0].startswith("| 5 | 100 |")
    assert "best: L=5, t_b=100, normalise=False (AUC_Judd 0.660 ± 0.010)" in md


def test_figures_follow_the_results():
    figs = build_figures(_results())
    assert set(figs) == {"paired", "predictor", "tune"}
    bar = figs["paired"].data[0]
    assert list(bar.x)[0] == "fluctuation[h,hutchinson]" and bar.y[0] == 0.7
    assert build_figures({"config": {}}) == {}


def test_write_report_writes_every_file_whole_and_escapes(tmp_path):
    img = tmp_path / "im0.png"
    Image.fromarray(np.zeros((12, 16, 3), np.uint8)).save(img)
    it = SaliencyItem("im0", img, np.zeros((12, 16), bool), np.full((12, 16), 0.5, np.float32))
    m = np.linspace(0, 1, 12 * 16, dtype=np.float32).reshape(12, 16)
    prep = types.SimpleNamespace(items=[it], grid_maps={"fluctuation[h,hutchinson]": [m[:6, :8]]},
                                 maps={"centre_bias": [m], "spectral_residual": [m]})
    out = tmp_path / "out"
    page = write_report(_results(), prep, out)
    assert page == out / "report.html"
    assert sorted(p.name for p in out.iterdir()) == ["figures.json", "maps.png", "report.html", "results.json",
                                                     "tables.md"]
    back = json.loads((out / "results.json").read_text())
    assert back["paired"]["maps"]["fluctuation[h,hutchinson]"]["wins"] == 7  # numpy ints and floats written as numbers
    assert back["predictor"]["summary"]["fluctuation[h,hutchinson]"]["NSS"]["mean"] == 0.5
    assert set(json.loads((out / "figures.json").read_text())) == {"paired", "predictor", "tune"}
    assert (out / "tables.md").read_text() == tables_markdown(_results())
    html = page.read_text()
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert html.count("window.PlotlyConfig") == 1  # plotly.js embedded once (offline), not per figure
    with Image.open(out / "maps.png") as grid:
        assert grid.width > 5 * 16  # five panels side by side
