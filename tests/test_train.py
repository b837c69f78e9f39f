"""workbench.train and `workbench train`: resume, signals, and bad inputs."""
from __future__ import annotations

import hashlib
import json
import os
import signal
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from workbench.cli import main
from workbench.train import (CHECKPOINT_MARKER, TrainConfig, export_model, random_crops, train)

FAST = ["--resolution", "8", "--batch-size", "2", "--held-out", "1", "--init", "scratch", "--nice", "0",
        "--no-bf16"]


@pytest.fixture()
def photos(tmp_path) -> Path:
    d = tmp_path / "photos"
    d.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(d / f"p{i}.png")
    return d


def _tree_hash(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _one_error_line(capsys, rc: int, expect: str) -> None:
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert len(err) == 1 and err[0].startswith("workbench train: error:") and expect in err[0], err


def _cfg(photos: Path, ckpt: Path, **kw) -> TrainConfig:
    base = dict(data_dir=str(photos), checkpoint_dir=str(ckpt), resolution=8, batch_size=2, held_out=1,
                init=None, bf16=False, max_steps=2)
    return TrainConfig(**{**base, **kw})


def test_resume_continues_the_step_count_and_keeps_foreign_files(photos, tmp_path):
    ckpt = tmp_path / "ck"
    ckpt.mkdir()
    (ckpt / "notes.txt").write_text("mine")
    latest = train(_cfg(photos, ckpt, max_steps=2))
    assert json.loads((latest / "state.json").read_text())["step"] == 2
    assert (latest / CHECKPOINT_MARKER).is_file()
    before = (latest / "ema.safetensors").read_bytes()
    train(_cfg(photos, ckpt, max_steps=3))
    assert json.loads((latest / "state.json").read_text())["step"] == 3
    assert (latest / "ema.safetensors").read_bytes() != before
    assert (ckpt / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in ckpt.iterdir()) == ["latest", "notes.txt"]


def test_should_stop_finishes_the_step_and_checkpoints(photos, tmp_path):
    latest = train(_cfg(photos, tmp_path / "ck", max_steps=100), should_stop=lambda: True)
    assert json.loads((latest / "state.json").read_text())["step"] == 1


def test_init_from_an_exported_model_carries_weights_and_steps(photos, tmp_path):
    latest = train(_cfg(photos, tmp_path / "a", max_steps=2))
    export_model(latest, tmp_path / "model")
    card = json.loads((tmp_path / "model" / "model_card.json").read_text())
    assert card["steps"] == 2 and card["cpu_s"] > 0 and card["origin"]["init_step"] == 0
    from safetensors.torch import load_file

    exported = load_file(tmp_path / "model" / "unet" / "diffusion_pytorch_model.safetensors")
    latest_b = train(_cfg(photos, tmp_path / "b", max_steps=3, init=str(tmp_path / "model"), lr=1e-12))
    assert json.loads((latest_b / "state.json").read_text())["step"] == 3  # 2 inherited + 1
    ema_b = load_file(latest_b / "ema.safetensors")
    assert all(torch.allclose(ema_b[k], v, atol=1e-6) for k, v in exported.items())


def test_small_crops_keep_the_full_size_pixel_scale():
    img = torch.zeros(3, 100, 100, dtype=torch.uint8)
    img[:, :, ::2] = 255  # a 1-pixel stripe pattern survives only a 1:1 crop
    g = torch.Generator().manual_seed(0)
    crops = random_crops([img], 4, 8, 1.0, g, full_resolution=800)  # side = 100 * 8/800 = 1 -> max(8, 1) = 8
    assert crops.std() > 0.9  # unresampled stripes: values +-1


def test_photo_aspect_crop_of_the_whole_photo_is_the_workbench_resize():
    """At fraction 1 and full size a photo-aspect crop is the whole 4:3 photo squeezed to a square,
    as the workbench feeds a photo to the model; a square crop would cut its sides off."""
    g = torch.Generator().manual_seed(0)
    img = torch.randint(0, 256, (3, 60, 80), generator=g, dtype=torch.uint8)
    whole = torch.nn.functional.interpolate(img.float()[None] / 127.5 - 1, size=(16, 16), mode="bilinear",
                                            antialias=True, align_corners=False)[0].clamp(-1, 1)
    crops = random_crops([img], 6, 16, 1.0, g, full_resolution=16, photo_aspect=True)
    for c in crops:
        assert torch.allclose(c, whole, atol=1e-5) or torch.allclose(c, whole.flip(-1), atol=1e-5)
    square = random_crops([img], 6, 16, 1.0, g, full_resolution=16)
    assert not any(torch.allclose(c, whole, atol=1e-2) or torch.allclose(c, whole.flip(-1), atol=1e-2)
                   for c in square)


def test_small_photo_aspect_crops_are_windows_of_the_full_size_rendering():
    img = torch.zeros(3, 60, 80, dtype=torch.uint8)
    img[:, ::2, :] = 255  # rows alternate: a window at 1:1 keeps them, a squeezed whole photo blurs them
    g = torch.Generator().manual_seed(0)
    crops = random_crops([img], 4, 15, 1.0, g, full_resolution=60, photo_aspect=True)  # 15 of 60 rows -> 1:1
    assert crops.std() > 0.9
    whole = random_crops([img], 4, 15, 1.0, g, full_resolution=15, photo_aspect=True)  # 60 rows -> 15: averaged
    assert whole.std() < 0.5


@pytest.mark.parametrize("signum,rc", [(signal.SIGTERM, 0), (signal.SIGINT, 130)])
def test_signal_stops_cleanly_with_a_checkpoint(photos, tmp_path, signum, rc):
    ckpt = tmp_path / "ck"
    timer = threading.Timer(1.5, os.kill, (os.getpid(), signum))
    timer.start()
    try:
        code = main(["train", str(photos), "--checkpoints", str(ckpt), "--steps", "100000000", *FAST])
    finally:
        timer.cancel()
    assert code == rc
    assert json.loads((ckpt / "latest" / "state.json").read_text())["step"] >= 1


# --- bad inputs: one stderr line, exit 2, nothing lost -----------------------------------------------

def test_foreign_files_in_latest_are_refused_and_kept(photos, tmp_path, capsys):
    ckpt = tmp_path / "ck"
    (ckpt / "latest" / "sub").mkdir(parents=True)
    (ckpt / "latest" / "precious.txt").write_text("keep me")
    (ckpt / "latest" / "sub" / "data.csv").write_text("1,2")
    before = _tree_hash(ckpt)
    rc = main(["train", str(photos), "--checkpoints", str(ckpt), "--steps", "1", *FAST])
    _one_error_line(capsys, rc, "did not write")
    assert _tree_hash(ckpt) == before


def test_checkpoints_naming_a_file(photos, tmp_path, capsys):
    f = tmp_path / "notes.txt"
    f.write_text("mine")
    rc = main(["train", str(photos), "--checkpoints", str(f), "--steps", "1", *FAST])
    _one_error_line(capsys, rc, "is a file")
    assert f.read_text() == "mine"


def test_symlink_loop_in_the_data_folder(photos, tmp_path, capsys):
    (photos / "loop.jpg").symlink_to(photos / "loop.jpg")
    rc = main(["train", str(photos), "--checkpoints", str(tmp_path / "ck"), "--steps", "1", *FAST])
    _one_error_line(capsys, rc, "loop.jpg")
    assert not (tmp_path / "ck").exists()


@pytest.mark.parametrize("flag,value,expect", [("--batch-size", "0", "--batch-size"),
                                               ("--resolution", "0", "--resolution"),
                                               ("--resolution", "12", "multiple of 8"),
                                               ("--steps", "0", "--steps"),
                                               ("--min-crop-fraction", "0", "--min-crop-fraction"),
                                               ("--min-crop-fraction", "1.5", "--min-crop-fraction"),
                                               ("--min-crop-fraction", "nan", "--min-crop-fraction")])
def test_bad_numbers(photos, tmp_path, capsys, flag, value, expect):
    args = ["train", str(photos), "--checkpoints", str(tmp_path / "ck"), *FAST, flag, value]
    _one_error_line(capsys, main(args), expect)
    assert not (tmp_path / "ck").exists()


@pytest.mark.parametrize("garbage", ["{not json", "[]", '{"step": "x", "elapsed_s": 0}', ""])
def test_garbage_state_json_is_refused_and_kept(photos, tmp_path, capsys, garbage):
    ckpt = tmp_path / "ck"
    latest = train(_cfg(photos, ckpt, max_steps=1))
    (latest / "state.json").write_text(garbage)
    before = _tree_hash(ckpt)
    rc = main(["train", str(photos), "--checkpoints", str(ckpt), "--steps", "5", *FAST])
    _one_error_line(capsys, rc, "state.json")
    assert _tree_hash(ckpt) == before


@pytest.mark.slow
def test_device_train_tiny_runs_on_the_cpu(tmp_path):
    from bench.device_train import main as device_main

    assert device_main(["--tiny", "--device", "cpu", "--out", str(tmp_path / "out")]) == 0
    figures = json.loads((tmp_path / "out" / "figures.json").read_text())
    assert figures["steps_this_run"] == 2
    assert np.isfinite(figures["models"][0]["heldout_eps_mse_mean"])
    exported = next((tmp_path / "out").glob("model-step*"))  # the recipe: v-prediction
    assert json.loads((exported / "scheduler" / "scheduler_config.json").read_text())["prediction_type"] == "v_prediction"


def test_warm_up_restarts_with_the_optimiser_of_a_started_model(photos, tmp_path):
    from workbench import train as train_mod

    seen = []
    real = train_mod.train_step

    def spy(*a, **kw):
        seen.append(a[7].lr)  # the StepOptions
        return real(*a, **kw)

    latest = train(_cfg(photos, tmp_path / "a", max_steps=2))
    export_model(latest, tmp_path / "model")  # card: steps = 2
    train_mod.train_step = spy
    try:
        train(_cfg(photos, tmp_path / "b", max_steps=4, init=str(tmp_path / "model"), warmup_steps=10))
    finally:
        train_mod.train_step = real
    assert seen == pytest.approx([3e-4 * 1 / 10, 3e-4 * 2 / 10])


def test_bench_train_selects_variants_by_the_beginning_of_their_names():
    from bench.bench_train import VARIANTS, select_variants

    assert select_variants(None) == list(VARIANTS)
    assert select_variants("current") == ["current (64px, b32, fp32)"]  # the name holds commas
    assert select_variants("current,bf16 autocast") == ["current (64px, b32, fp32)", "bf16 autocast"]
    assert select_variants("32px crops") == ["32px crops, b32", "32px crops, b32, bf16"]


def test_v_target_is_the_definition_and_inverts_to_eps_and_x0():
    from workbench.adapters import to_epsilon
    from workbench.train import noised, train_target

    g = torch.Generator().manual_seed(0)
    x0, noise = torch.rand(3, 3, 4, 4, generator=g) * 2 - 1, torch.randn(3, 3, 4, 4, generator=g)
    abar = torch.linspace(0.999, 0.001, 10, dtype=torch.float64).float()
    t = torch.tensor([0, 5, 9])
    v = train_target(x0, t, noise, abar, "v")
    a = np.array([0.999, 0.999 - 5 * 0.998 / 9, 0.001])[:, None, None, None]
    expect = np.sqrt(a) * noise.numpy() - np.sqrt(1 - a) * x0.numpy()
    np.testing.assert_allclose(v.numpy(), expect, rtol=1e-5, atol=1e-6)
    xt = noised(x0, t, noise, abar)
    s, n = (torch.from_numpy(np.sqrt(v_)).float() for v_ in (a, 1 - a))
    torch.testing.assert_close(to_epsilon(v, xt, s, n, "v_prediction"), noise, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(s * xt - n * v, x0, atol=1e-5, rtol=1e-5)
    assert torch.equal(train_target(x0, t, noise, abar, "epsilon"), noise)


def test_min_snr_weights_by_hand():
    from workbench.train import snr_weights

    abar = torch.tensor([0.5, 0.9, 0.01], dtype=torch.float64)  # SNR 1, 9, 1/99
    t = torch.tensor([0, 1, 2])
    np.testing.assert_allclose(snr_weights(t, abar, "epsilon", 5.0).numpy(), [1.0, 5 / 9, 1.0], rtol=1e-12)
    np.testing.assert_allclose(snr_weights(t, abar, "v", 5.0).numpy(), [0.5, 0.5, (1 / 99) / (1 / 99 + 1)],
                               rtol=1e-12)
    np.testing.assert_allclose(snr_weights(t, abar, "v", None).numpy(), [1, 1, 1])


def test_finetune_from_epsilon_into_v_exports_a_v_prediction_scheduler(photos, tmp_path, capsys):
    from workbench.adapters import load_model

    latest = train(_cfg(photos, tmp_path / "a", max_steps=1, prediction="epsilon"))
    export_model(latest, tmp_path / "eps")
    latest_v = train(_cfg(photos, tmp_path / "b", max_steps=2, init=str(tmp_path / "eps"), prediction="v",
                          snr_gamma=5.0))
    export_model(latest_v, tmp_path / "v")
    sched = json.loads((tmp_path / "v" / "scheduler" / "scheduler_config.json").read_text())
    assert sched["prediction_type"] == "v_prediction"
    assert json.loads((tmp_path / "eps" / "scheduler" / "scheduler_config.json").read_text())[
        "prediction_type"] == "epsilon"
    assert load_model(str(tmp_path / "v"), device="cpu").prediction_type == "v_prediction"
    before = _tree_hash(tmp_path / "b")
    rc = main(["train", str(photos), "--checkpoints", str(tmp_path / "b"), "--steps", "5", "--prediction", "epsilon",
               *FAST])
    _one_error_line(capsys, rc, "--prediction v")
    assert _tree_hash(tmp_path / "b") == before


@pytest.mark.parametrize("flag,value", [("--snr-gamma", "0"), ("--snr-gamma", "nan"), ("--ema-decay", "1")])
def test_bad_objective_numbers(photos, tmp_path, capsys, flag, value):
    rc = main(["train", str(photos), "--checkpoints", str(tmp_path / "ck"), *FAST, flag, value])
    _one_error_line(capsys, rc, flag)
