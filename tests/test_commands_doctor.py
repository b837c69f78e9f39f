"""`workbench doctor` (workbench.commands.doctor): the report, the stored measurement, bad flags."""
from __future__ import annotations

import json

import pytest

from workbench import precision

from test_precision import no_forced  # noqa: F401  (a fixture: no forced dtype, a private cache folder)


def test_doctor_reports_and_stores_the_measurement(no_forced, tiny_pixel_dir, capsys):
    from workbench.cli import main
    from workbench.commands.doctor import estimate_cube_seconds

    out = no_forced / "doctor.json"
    assert main(["doctor", "--model", str(tiny_pixel_dir), "--device", "cpu", "--repeats", "1", "--json",
                 str(out)]) == 0
    text = capsys.readouterr().out
    for want in ("cpu flags", "avx2", "threads", "s/probe-step", "--dtype auto picks", "50 steps"):
        assert want in text
    rep = json.loads(out.read_text())
    assert rep["auto"] in ("float32", "bfloat16") and [r["K"] for r in rep["cube_seconds"]] == [8, 16, 64]
    p, e = rep["probe_step_s"][rep["auto"]], rep["evaluation_s"][rep["auto"]]
    assert rep["cube_seconds"][1]["steps_50_s"] == pytest.approx(50 * (e + 16 * p), rel=1e-3, abs=0.01)
    assert estimate_cube_seconds(0.1, 0.05, 16, 50) == pytest.approx(50 * (0.05 + 1.6))
    assert next(iter(json.loads(precision.cache_file().read_text()).values()))["model"] == rep["model"]


def test_doctor_bad_threads(capsys):
    from workbench.cli import main

    assert main(["doctor", "--threads", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("workbench doctor: error: --threads")
