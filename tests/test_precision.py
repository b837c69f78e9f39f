"""workbench.precision: the dtype `auto` picks, from injected measurements (no timing here)."""
from __future__ import annotations

import json

import pytest
import torch

from workbench import precision
from workbench.precision import AUTO_ENV, Measurement


class FakeAdapter:
    """What resolve_model touches of an adapter: dtype, device, fingerprint."""

    def __init__(self, dtype):
        self.dtype, self.device = dtype, torch.device("cpu")

    def fingerprint(self) -> str:
        return "weights-123"


@pytest.fixture
def no_forced(monkeypatch, tmp_path):
    monkeypatch.delenv(AUTO_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    return tmp_path


def loader(log: list):
    def load(dt):
        log.append(str(dt).removeprefix("torch."))
        return FakeAdapter(dt)
    return load


@pytest.mark.parametrize("f32,bf16,want", [(1.0, 4.7, "float32"),   # AVX2-only EPYC: emulated bf16
                                            (1.0, 0.5, "bfloat16"),  # native bf16 (AMX, CUDA)
                                            (1.0, 0.95, "float32"),  # inside the noise margin: keep float32
                                            (1.0, 0.9, "bfloat16")])
def test_choice_never_the_slower(f32, bf16, want):
    m = Measurement(seconds={"float32": f32, "bfloat16": bf16}, machine="m", model="w")
    assert m.choice() == want
    assert m.seconds[m.choice()] <= m.seconds["float32"]  # never the slower dtype


def test_auto_measures_once_then_reads_the_cache(no_forced):
    calls, loads = [], []

    def measure(ads):
        calls.append(sorted(ads))
        assert {k: str(a.dtype) for k, a in ads.items()} == {"float32": "torch.float32",
                                                             "bfloat16": "torch.bfloat16"}
        return {"float32": 0.2, "bfloat16": 0.9}

    ad, m, note = precision.resolve_model(loader(loads), "auto", measure=measure)
    assert ad.dtype == torch.float32 and m.choice() == "float32" and note.startswith("auto: float32")
    assert ad.dtype_choice == note and "4.50x" in note
    cache = precision.cache_file()
    assert cache.is_file() and cache.parent.parent == no_forced / "xdg"
    entry = next(iter(json.loads(cache.read_text()).values()))
    assert entry["seconds"] == {"float32": 0.2, "bfloat16": 0.9} and entry["model"] == "weights-123"
    loads.clear()
    ad2, m2, _ = precision.resolve_model(loader(loads), "auto", measure=lambda ads: pytest.fail("measured twice"))
    assert len(calls) == 1 and loads == ["float32"] and ad2.dtype == torch.float32 and m2 == m


def test_auto_picks_bfloat16_where_faster(no_forced):
    loads = []
    ad, m, note = precision.resolve_model(loader(loads), "auto", measure=lambda ads: {"float32": 1.0, "bfloat16": 0.4})
    assert ad.dtype == torch.bfloat16 and note.startswith("auto: bfloat16") and loads[-1] == "bfloat16"


def test_another_machine_measures_again(no_forced, monkeypatch):
    n = []
    precision.resolve_model(loader([]), "auto", measure=lambda ads: n.append(1) or {"float32": 1, "bfloat16": 2})
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")  # a limited instruction set is another machine
    precision.resolve_model(loader([]), "auto", measure=lambda ads: n.append(1) or {"float32": 1, "bfloat16": 2})
    assert len(n) == 2


def test_explicit_dtypes_load_as_asked_without_measuring(no_forced):
    for name in ("float32", "float16"):
        loads = []
        ad, m, note = precision.resolve_model(loader(loads), name, measure=lambda ads: pytest.fail("measured"),
                                              warn=lambda line: pytest.fail(line))
        assert loads == [name] and str(ad.dtype) == f"torch.{name}" and m is None and note == "explicit"


def test_explicit_bfloat16_warns_once_with_the_ratio(no_forced, monkeypatch):
    monkeypatch.setattr(precision, "native_bf16", lambda info: False)
    lines = []
    ad, m, _ = precision.resolve_model(loader([]), "bfloat16", measure=lambda ads: {"float32": 1.0, "bfloat16": 4.7},
                                       warn=lines.append)
    assert ad.dtype == torch.bfloat16 and len(lines) == 1 and "4.7x" in lines[0] and "\n" not in lines[0]
    monkeypatch.setattr(precision, "native_bf16", lambda info: True)
    lines.clear()
    precision.resolve_model(loader([]), "bfloat16", measure=lambda ads: pytest.fail("measured"), warn=lines.append)
    assert lines == []


def test_forced_by_environment(no_forced, monkeypatch):
    monkeypatch.setenv(AUTO_ENV, "float32")
    ad, m, note = precision.resolve_model(loader([]), "auto", measure=lambda ads: pytest.fail("measured"))
    assert ad.dtype == torch.float32 and m is None and AUTO_ENV in note
    monkeypatch.setenv(AUTO_ENV, "float64x")
    with pytest.raises(precision.WorkbenchError, match=AUTO_ENV):
        precision.resolve_model(loader([]), "auto")


def test_native_bf16_flags():
    base = {"device": "cpu", "cpu_capability": "AVX512", "onednn_max_cpu_isa": ""}
    assert not precision.native_bf16({**base, "flags": ["avx2", "avx512f"]})
    assert precision.native_bf16({**base, "flags": ["avx2", "avx512f", "amx_bf16"]})
    assert not precision.native_bf16({**base, "flags": ["amx_bf16"], "cpu_capability": "AVX2"})  # limited
    assert not precision.native_bf16({**base, "flags": ["amx_bf16"], "onednn_max_cpu_isa": "AVX2"})
    assert precision.native_bf16({"device": "cuda"})


def test_damaged_cache_is_measured_again(no_forced):
    path = precision.cache_file()
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    _, m, _ = precision.resolve_model(loader([]), "auto", measure=lambda ads: {"float32": 1.0, "bfloat16": 3.0})
    assert m.choice() == "float32" and json.loads(path.read_text())


def test_train_autocast_uses_the_same_rule(no_forced):
    from workbench.tiny import tiny_pixel_unet

    unet = tiny_pixel_unet()
    on, m = precision.train_autocast(unet, (2, 3, 16, 16), "cpu", measure=lambda timers: {"float32": 1.0,
                                                                                          "bfloat16": 3.0})
    assert on is False and m.what == "train-step"
    on2, _ = precision.train_autocast(unet, (2, 3, 16, 16), "cpu", measure=lambda t: pytest.fail("measured twice"))
    assert on2 is False
    on3, _ = precision.train_autocast(unet, (4, 3, 16, 16), "cpu", measure=lambda timers: {"float32": 1.0,
                                                                                           "bfloat16": 0.5})
    assert on3 is True


def test_timers_run_on_a_tiny_model(tiny_pixel_dir):
    """The real timers run (their values are not asserted: speed targets live in bench/)."""
    from workbench.adapters import load_model

    ad = load_model(tiny_pixel_dir, device="cpu")
    s = precision.measure_dtypes({"float32": precision.time_probe_step(ad, probes=2),
                                  "model": precision.time_model_step(ad)}, repeats=1)
    assert set(s) == {"float32", "model"} and all(v > 0 for v in s.values())


def test_training_autocast_by_default_follows_the_measurement(no_forced, monkeypatch, tmp_path):
    """TrainConfig(bf16=None), the default: train() asks train_autocast and records what ran."""
    import numpy as np
    from PIL import Image

    from workbench import train as train_mod

    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(photos / f"p{i}.png")
    asked = []

    def fake(model, shape, device, **kw):
        asked.append(tuple(shape))
        return True, Measurement(seconds={"float32": 1.0, "bfloat16": 0.5}, machine="m", model="x", what="train-step")

    monkeypatch.setattr(train_mod, "train_autocast", fake)
    cfg = train_mod.TrainConfig(data_dir=str(photos), checkpoint_dir=str(tmp_path / "ck"), resolution=8, batch_size=2,
                                held_out=1, init=None, max_steps=1)
    assert cfg.bf16 is None
    latest = train_mod.train(cfg)
    assert asked == [(2, 3, 8, 8)]
    assert json.loads((latest / "state.json").read_text())["config"]["bf16"] is True
