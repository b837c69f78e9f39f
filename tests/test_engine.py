"""Engine: loaders, forward AD through both families, DDIM, rate definitions against dense Jacobians."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from workbench.adapters import PixelAdapter, StableDiffusionAdapter, load_model
from workbench.ddim import ddim_loop, invert, generate, make_schedule, step_coefficients
from workbench.errors import WorkbenchError
from workbench.estimators import ProbeOptions, element_rates
from workbench.rates import RATE_DEFINITIONS, RateSpec, exact_element_rates, rate_function, rates_of
from workbench.curves import pixel_curves


def dense_jacobian(adapter, f, x):
    with adapter.autodiff():
        return torch.autograd.functional.jacobian(lambda z: f(z[None])[0], x).reshape(-1, x.numel())


def test_loaders_pick_the_family(tiny_pixel_dir, tiny_sd_dir):
    assert isinstance(load_model(tiny_pixel_dir, device="cpu"), PixelAdapter)
    sd = load_model(tiny_sd_dir, device="cpu")
    assert isinstance(sd, StableDiffusionAdapter)
    assert sd.scale == 2 and sd.image_size == (16, 16) and sd.model_shape == (4, 8, 8)
    # the empty-prompt embedding came from the saved tokenizer + text encoder
    assert sd.prompt_embedding.shape == (1, 16, 32)


@pytest.mark.parametrize("definition", ["h", "eps", "step"])
def test_exact_rates_are_dense_jacobian_column_norms(tiny_adapter, definition):
    sched = make_schedule(tiny_adapter, 8)
    x = torch.randn(tiny_adapter.model_shape, generator=torch.Generator().manual_seed(1))
    i = 4
    got = exact_element_rates(tiny_adapter, sched, i, x, RateSpec(definition))
    J = dense_jacobian(tiny_adapter, rate_function(tiny_adapter, sched, i, definition), x)
    torch.testing.assert_close(got.flatten(), J.norm(dim=0), rtol=1e-4, atol=1e-6)


def test_rate_definitions_follow_their_formulas(tiny_adapter):
    sched = make_schedule(tiny_adapter, 8)
    i = 5
    x = torch.randn(tiny_adapter.model_shape, generator=torch.Generator().manual_seed(2))
    v = torch.randn((3, *tiny_adapter.model_shape), generator=torch.Generator().manual_seed(3))
    t = int(sched.timesteps[i])
    Jeps = dense_jacobian(tiny_adapter, lambda z: tiny_adapter.eps(z, t), x)
    Jh = dense_jacobian(tiny_adapter, lambda z: tiny_adapter.h(z, t), x)
    A, B = step_coefficients(float(sched.alphas[i]), sched.alpha_below(i))
    V = v.flatten(1).T
    want = {"eps": (Jeps @ V).norm(dim=0), "h": (Jh @ V).norm(dim=0),
            "step": (A * V + B * (Jeps @ V)).norm(dim=0)}
    for d, w in want.items():
        torch.testing.assert_close(rates_of(tiny_adapter, sched, i, x, v, RateSpec(d)), w, rtol=1e-4, atol=1e-6)
    # projected: ||Jh P_k v|| with P_k from the exact SVD; rSVD with enough iterations finds it
    k = 4
    _, S, Vh = torch.linalg.svd(Jh.double())
    P = Vh[:k].T @ Vh[:k]
    want_p = (Jh.double() @ P @ V.double()).norm(dim=0).float()
    got_p = rates_of(tiny_adapter, sched, i, x, v, RateSpec("projected", k=k, iters=8))
    torch.testing.assert_close(got_p, want_p, rtol=2e-2, atol=1e-4)


def test_pixel_curves_match_per_timestep_exact_maps(tiny_adapter):
    sched = make_schedule(tiny_adapter, 6)
    traj = invert(tiny_adapter, torch.randn(tiny_adapter.model_shape), sched)
    curves = pixel_curves(tiny_adapter, traj, [(1, 2), (3, 0)], RateSpec("h"))
    for i in range(6):
        m = exact_element_rates(tiny_adapter, sched, i, traj.states[i], RateSpec("h")).mean(0)
        torch.testing.assert_close(curves[:, i], torch.stack([m[1, 2], m[3, 0]]), rtol=1e-4, atol=1e-6)


def test_hutchinson_is_close_to_exact(tiny_pixel_dir):
    from scipy.stats import spearmanr

    ad = load_model(tiny_pixel_dir, device="cpu")
    sched = make_schedule(ad, 8)
    x = torch.randn(ad.model_shape, generator=torch.Generator().manual_seed(4))
    ex = exact_element_rates(ad, sched, 3, x)
    est = element_rates(ad, sched, 3, x, opts=ProbeOptions(K=256, seed=0))
    assert spearmanr(ex.flatten(), est.flatten())[0] > 0.97


def test_inversion_matches_diffusers_schedulers(tiny_pixel_dir):
    from diffusers import DDIMInverseScheduler, DDIMScheduler

    ad = load_model(tiny_pixel_dir, device="cpu")
    sched = make_schedule(ad, 10)
    x0 = torch.rand(1, *ad.model_shape, generator=torch.Generator().manual_seed(5)) * 2 - 1
    ours = ddim_loop(ad, x0, sched, direction="invert")
    inv = DDIMInverseScheduler.from_config(ad.scheduler_config, clip_sample=False, set_alpha_to_one=False)
    inv.set_timesteps(10)
    x = x0.clone()
    with torch.no_grad():
        for t in inv.timesteps:
            x = inv.step(ad.eps(x, int(t)), t, x).prev_sample
    torch.testing.assert_close(ours, x, rtol=1e-4, atol=1e-4)
    gen = DDIMScheduler.from_config(ad.scheduler_config, clip_sample=False, set_alpha_to_one=False)
    gen.set_timesteps(10)
    y = ours.clone()
    with torch.no_grad():
        for t in gen.timesteps:
            y = gen.step(ad.eps(y, int(t)), t, y, eta=0.0).prev_sample
    torch.testing.assert_close(generate(ad, ours, sched), y, rtol=1e-4, atol=1e-4)


def test_invert_then_generate_round_trips_a_smooth_model(tiny_pixel_dir):
    ad = load_model(tiny_pixel_dir, device="cpu")
    with torch.no_grad():
        ad.unet.conv_out.weight.zero_()  # constant eps: DDIM inversion is then exact
    sched = make_schedule(ad, 20)
    x0 = torch.rand(ad.model_shape) * 2 - 1
    traj = invert(ad, x0, sched)
    rec = generate(ad, traj.x_T[None], sched)[0]
    assert (rec - x0).abs().max() < 1e-3


def test_forward_ad_context_restores_the_model(tiny_sd_dir):
    ad = load_model(tiny_sd_dir, device="cpu")
    hooks_before = sum(len(m._forward_pre_hooks) for m in ad.unet.modules())
    with ad.autodiff():
        assert sum(len(m._forward_pre_hooks) for m in ad.unet.modules()) > hooks_before
    assert sum(len(m._forward_pre_hooks) for m in ad.unet.modules()) == hooks_before


def test_missing_model_dir_is_a_one_line_error(tmp_path):
    with pytest.raises(WorkbenchError, match="no model at"):
        load_model(tmp_path / "nope", device="cpu")
    (tmp_path / "empty").mkdir()
    with pytest.raises(WorkbenchError, match="unet/config.json"):
        load_model(tmp_path / "empty", device="cpu")


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "workbench.cli", *args], capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("case", ["missing", "empty", "not_image", "outside", "no_model"])
def test_cli_bad_inputs_exit_nonzero_with_one_line(tmp_path, tiny_pixel_dir, case):
    from PIL import Image

    img = tmp_path / "ok.png"
    Image.new("RGB", (20, 10), (100, 50, 20)).save(img)
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "text.png").write_text("not an image")
    args = {"missing": [str(tmp_path / "none.png"), "--pixel", "1,1", "--model", str(tiny_pixel_dir)],
            "empty": [str(tmp_path / "empty.png"), "--pixel", "1,1", "--model", str(tiny_pixel_dir)],
            "not_image": [str(tmp_path / "text.png"), "--pixel", "1,1", "--model", str(tiny_pixel_dir)],
            "outside": [str(img), "--pixel", "20,3", "--model", str(tiny_pixel_dir)],
            "no_model": [str(img), "--pixel", "1,1", "--model", str(tmp_path / "nomodel")]}[case]
    r = _cli("curve", *args)
    assert r.returncode == 2
    lines = [ln for ln in r.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("workbench curve: error:"), r.stderr
    assert "Traceback" not in r.stderr


def test_cli_curve_prints_a_curve(tmp_path, tiny_pixel_dir):
    from PIL import Image

    img = tmp_path / "ok.png"
    Image.new("RGB", (32, 32), (100, 50, 20)).save(img)
    r = _cli("curve", str(img), "--pixel", "5,7", "--model", str(tiny_pixel_dir), "--steps", "6", "--json",
             "--plot", str(tmp_path / "c.html"))
    assert r.returncode == 0, r.stderr
    import json

    out = json.loads(r.stdout.splitlines()[0])
    assert len(out["curve"]) == 6 and all(v > 0 for v in out["curve"])
    assert (tmp_path / "c.html").exists()


def test_fingerprint_depends_on_the_weights_not_the_path(tmp_path, tiny_pixel_dir):
    import shutil

    copy = shutil.copytree(tiny_pixel_dir, tmp_path / "elsewhere" / "same-model")
    a, b = load_model(tiny_pixel_dir, device="cpu"), load_model(copy, device="cpu")
    assert a.fingerprint() == b.fingerprint()
    with torch.no_grad():
        b.unet.conv_out.bias.add_(1e-3)
    del b._fp
    assert a.fingerprint() != b.fingerprint()


def test_repo_id_resolves_from_the_local_hf_cache_only(tmp_path, tiny_pixel_dir, monkeypatch):
    import shutil

    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(WorkbenchError, match="local Hugging Face cache"):
        load_model("someone/tiny-pixel", device="cpu")
    repo = tmp_path / "hub" / "models--someone--tiny-pixel"
    shutil.copytree(tiny_pixel_dir, repo / "snapshots" / "abc123")
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("abc123")
    assert isinstance(load_model("someone/tiny-pixel", device="cpu"), PixelAdapter)


def test_cli_curve_is_exact_with_se_zero_and_projected_has_no_se(tmp_path, tiny_pixel_dir, capsys):
    """`workbench curve` says its h curve is exact (se 0), and it is: central differences of the model's
    h map along the pixel's unit tangents give the same column norms; `projected` gives no SE."""
    import json

    from PIL import Image

    from workbench.cli import main
    from workbench.pipeline import prepare_image

    rng = np.random.default_rng(4)
    img = tmp_path / "n.png"
    Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(img)
    base = [str(img), "--pixel", "5,7", "--model", str(tiny_pixel_dir), "--steps", "4"]
    assert main(["curve", *base, "--json", "--plot", str(tmp_path / "c.html")]) == 0
    out = json.loads(capsys.readouterr().out.splitlines()[0])
    assert out["exact"] is True and out["rate_se"] == [0.0] * 4 and "exact" in out["se_note"]
    assert "(exact)" in (tmp_path / "c.html").read_text()
    ad = load_model(tiny_pixel_dir, device="cpu")
    prep = prepare_image(ad, Image.open(img), steps=4)
    (my, mx), C = out["model_pixel"][::-1], ad.model_shape[0]
    ref = []
    for i, t in enumerate(prep.trajectory.schedule.timesteps.tolist()):
        x = prep.trajectory.states[i].double()
        norms = []
        for c in range(C):
            e = torch.zeros_like(x)
            e[c, my, mx] = 1e-3
            with torch.no_grad():
                up, down = (ad.h((x + s * e).float()[None], t)[0].double() for s in (1, -1))
            norms.append(float(((up - down) / 2e-3).norm()))
        ref.append(np.mean(norms))
    np.testing.assert_allclose(out["curve"], ref, rtol=2e-2)

    assert main(["curve", *base, "--rate", "projected", "--k", "4", "--plot", str(tmp_path / "p.html")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(ln.startswith("# projected rate") and "no SE" in ln for ln in lines)
    rows = [ln.split("\t") for ln in lines if ln and ln[0].isdigit()]
    assert lines[2] == "timestep\trate\tse" and len(rows) == 4 and all(r[2] == "nan" for r in rows)
