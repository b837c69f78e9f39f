"""Model families: prediction types against diffusers' schedulers, prompts, SDXL, DiT, PixArt and SD3
(flow matching) end to end, and each family's exact rates against dense Jacobians computed
independently (full network calls with forward hooks, reverse-mode `torch.autograd.functional.jacobian`)."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from workbench.adapters import load_model
from workbench.ddim import ddim_loop, generate, invert, make_schedule
from workbench.rates import RateSpec, exact_element_rates

FAMILIES = ("sdxl", "dit", "pixart", "sd3")


@pytest.fixture(scope="module")
def family_dirs(tmp_path_factory):
    import os

    from workbench import tiny

    os.environ.setdefault("WORKBENCH_CACHE", str(tmp_path_factory.mktemp("wbcache")))
    root = tmp_path_factory.mktemp("families")
    return {"sdxl": tiny.save_tiny_sdxl_model(root / "sdxl"), "dit": tiny.save_tiny_dit_model(root / "dit"),
            "pixart": tiny.save_tiny_pixart_model(root / "pixart"), "sd3": tiny.save_tiny_sd3_model(root / "sd3")}


@pytest.fixture(scope="module")
def pixel8_dir(tmp_path_factory):
    """A tiny pixel model at 8x8 (192 inputs: dense Jacobians stay cheap)."""
    from workbench.tiny import save_tiny_pixel_model

    return save_tiny_pixel_model(tmp_path_factory.mktemp("pix8"), sample_size=8)


def _with_prediction_type(src, dst, prediction_type):
    shutil.copytree(src, dst)
    cfg_file = dst / "scheduler" / "scheduler_config.json"
    cfg_file.write_text(json.dumps(json.loads(cfg_file.read_text()) | {"prediction_type": prediction_type}))
    return dst


def _column_norms(f, x, ad=None):
    """Column norms of the dense Jacobian of f at x (reverse mode, all rows in one vectorised pass)."""
    ctx = ad.autodiff() if ad is not None else torch.enable_grad()
    with ctx:
        J = torch.autograd.functional.jacobian(lambda z: f(z[None])[0], x, vectorize=True).reshape(-1, x.numel())
    return J.double().norm(dim=0)


# --- 1. prediction types --------------------------------------------------------------------------------
@pytest.mark.parametrize("prediction_type", ["v_prediction", "sample"])
def test_prediction_types_match_diffusers_ddim_schedulers(tmp_path, pixel8_dir, prediction_type):
    from diffusers import DDIMInverseScheduler, DDIMScheduler

    ad = load_model(_with_prediction_type(pixel8_dir, tmp_path / "m", prediction_type), device="cpu")
    assert ad.prediction_type == prediction_type
    sched = make_schedule(ad, 10)
    x0 = torch.rand(1, *ad.model_shape, generator=torch.Generator().manual_seed(5)) * 2 - 1
    ours = ddim_loop(ad, x0, sched, direction="invert")
    inv = DDIMInverseScheduler.from_config(ad.scheduler_config, clip_sample=False, set_alpha_to_one=False)
    inv.set_timesteps(10)
    x = x0.clone()
    with torch.no_grad():
        for t in inv.timesteps:  # diffusers converts the raw output itself
            x = inv.step(ad.denoiser(x, t).sample, t, x).prev_sample
    torch.testing.assert_close(ours, x, rtol=1e-4, atol=1e-4)
    gen = DDIMScheduler.from_config(ad.scheduler_config, clip_sample=False, set_alpha_to_one=False)
    gen.set_timesteps(10)
    y = ours.clone()
    with torch.no_grad():
        for t in gen.timesteps:
            y = gen.step(ad.denoiser(y, t).sample, t, y, eta=0.0).prev_sample
    torch.testing.assert_close(generate(ad, ours, sched), y, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("prediction_type", ["v_prediction", "sample"])
@pytest.mark.parametrize("definition", ["eps", "step"])
def test_converted_eps_rates_are_dense_jacobian_column_norms(tmp_path, pixel8_dir, prediction_type, definition):
    ad = load_model(_with_prediction_type(pixel8_dir, tmp_path / "m", prediction_type), device="cpu")
    sched = make_schedule(ad, 8)
    i = 4
    t = int(sched.timesteps[i])
    a = float(sched.alphas[i])
    sa, sb = a ** 0.5, (1 - a) ** 0.5
    x = torch.randn(ad.model_shape, generator=torch.Generator().manual_seed(1))

    def eps(z):  # the contract written out: eps = sqrt(a) v + sqrt(1-a) x, or (x - sqrt(a) x0) / sqrt(1-a)
        out = ad.denoiser(z, torch.tensor([t])).sample
        return sa * out + sb * z if prediction_type == "v_prediction" else (z - sa * out) / sb

    a_s = sched.alpha_below(i)
    A, B = (a_s / a) ** 0.5, (1 - a_s) ** 0.5 - (a_s * (1 - a) / a) ** 0.5
    f = eps if definition == "eps" else (lambda z: A * z + B * eps(z))
    got = exact_element_rates(ad, sched, i, x, RateSpec(definition))
    torch.testing.assert_close(got.flatten().double(), _column_norms(f, x, ad), rtol=1e-4, atol=1e-6)


def test_unknown_prediction_type_is_a_one_line_error(tmp_path, pixel8_dir):
    from workbench.errors import WorkbenchError

    with pytest.raises(WorkbenchError, match="prediction_type 'banana'"):
        load_model(_with_prediction_type(pixel8_dir, tmp_path / "m", "banana"), device="cpu")


# --- 2. prompts -----------------------------------------------------------------------------------------
def _clip_embedding(root, text):
    from transformers import CLIPTextModel, CLIPTokenizer

    tok = CLIPTokenizer.from_pretrained(root / "tokenizer")
    enc = CLIPTextModel.from_pretrained(root / "text_encoder")
    ids = tok([text], padding="max_length", max_length=tok.model_max_length, truncation=True, return_tensors="pt")
    with torch.no_grad():
        return enc(ids.input_ids)[0]


def test_prompt_conditions_the_network_and_guidance_mixes_two_predictions(tiny_sd_dir):
    ad = load_model(tiny_sd_dir, device="cpu", prompt="a red cat", negative_prompt="blur", guidance_scale=3.0)
    x = torch.randn(2, *ad.model_shape, generator=torch.Generator().manual_seed(0))
    t = torch.tensor([500, 500])
    c, u = _clip_embedding(tiny_sd_dir, "a red cat"), _clip_embedding(tiny_sd_dir, "blur")
    assert not torch.allclose(c, _clip_embedding(tiny_sd_dir, ""))
    with torch.no_grad():
        ec = ad.denoiser(x, t, encoder_hidden_states=c.expand(2, -1, -1)).sample
        eu = ad.denoiser(x, t, encoder_hidden_states=u.expand(2, -1, -1)).sample
        torch.testing.assert_close(ad.eps(x, 500), eu + 3.0 * (ec - eu), rtol=1e-4, atol=1e-5)
    plain = load_model(tiny_sd_dir, device="cpu", prompt="a red cat")
    with torch.no_grad():
        torch.testing.assert_close(plain.eps(x, 500), ec, rtol=1e-4, atol=1e-5)
    info = ad.conditioning()
    assert info["prompt"] == "a red cat" and info["guidance_scale"] == 3.0 and len(info["prompt_fingerprint"]) == 16


def test_prompted_rates_are_those_of_the_conditioned_network(tiny_sd_dir):
    ad = load_model(tiny_sd_dir, device="cpu", prompt="a red cat")
    sched = make_schedule(ad, 6)
    i, x = 3, torch.randn(ad.model_shape, generator=torch.Generator().manual_seed(2))
    t = int(sched.timesteps[i])
    c = _clip_embedding(tiny_sd_dir, "a red cat")
    got = exact_element_rates(ad, sched, i, x, RateSpec("eps"))
    want = _column_norms(lambda z: ad.denoiser(z, torch.tensor([t]), encoder_hidden_states=c).sample, x, ad)
    torch.testing.assert_close(got.flatten().double(), want, rtol=1e-4, atol=1e-6)


def test_prompt_is_part_of_the_cube_key_and_metadata(tmp_path, tiny_sd_dir):
    from cache.keys import model_identity

    default = load_model(tiny_sd_dir, device="cpu")
    assert model_identity(default) == default.fingerprint()  # the paper's setting keeps its keys
    ids = {model_identity(load_model(tiny_sd_dir, device="cpu", **kw)) for kw in
           [{}, {"prompt": "a red cat"}, {"prompt": "a red dog"}, {"prompt": "a red cat", "guidance_scale": 2.0},
            {"prompt": "a red cat", "guidance_scale": 2.0, "negative_prompt": "blur"}]}
    assert len(ids) == 5


def test_pixel_model_refuses_a_prompt(pixel8_dir):
    from workbench.errors import WorkbenchError

    with pytest.raises(WorkbenchError, match="takes no prompt"):
        load_model(pixel8_dir, device="cpu", prompt="a cat")


def test_cli_prompt_reaches_the_model(tmp_path, pixel8_dir):
    import subprocess
    import sys

    img = tmp_path / "ok.png"
    Image.new("RGB", (8, 8), (100, 50, 20)).save(img)
    r = subprocess.run([sys.executable, "-m", "workbench.cli", "curve", str(img), "--pixel", "1,1", "--model",
                        str(pixel8_dir), "--prompt", "a cat", "--steps", "3"], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    lines = [ln for ln in r.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("workbench curve: error:") and "takes no prompt" in lines[0]


# --- 3./4. families: dense Jacobians --------------------------------------------------------------------
def _hooked_h(ad, z, t):
    """h by a forward hook on the full network call (the U-Net's mid block, or the transformer's middle block)."""
    seen = []
    mod = (ad.denoiser.transformer_blocks[ad.h_blocks - 1] if hasattr(ad.denoiser, "transformer_blocks")
           else ad.denoiser.mid_block)
    hd = mod.register_forward_hook(lambda _m, _a, out: seen.append(out))
    try:
        ad.eps(z, t)
    finally:
        hd.remove()
    out = seen[0][-1] if isinstance(seen[0], tuple) else seen[0]
    if out.ndim == 3:  # tokens -> patch grid
        p = ad.denoiser.config.patch_size
        out = out.transpose(1, 2).reshape(out.shape[0], -1, z.shape[-2] // p, z.shape[-1] // p)
    return out


def _direct_velocity(ad, z, t):
    c = ad.cond
    sigma = float(ad.signal_noise(t)[1])
    return ad.denoiser(z, encoder_hidden_states=c["encoder_hidden_states"], pooled_projections=c["pooled_projections"],
                       timestep=torch.tensor([sigma * 1000.0])).sample, sigma


@pytest.mark.parametrize("family", [pytest.param("sdxl", marks=pytest.mark.slow), "dit", "pixart",
                                    pytest.param("sd3", marks=pytest.mark.slow)])
@pytest.mark.parametrize("definition", ["h", "step"])
def test_family_exact_rates_are_dense_jacobian_column_norms(family_dirs, family, definition):
    ad = load_model(family_dirs[family], device="cpu", prompt="" if family == "dit" else "a red cat")
    sched = make_schedule(ad, 6)
    i, x = 3, torch.randn(ad.model_shape, generator=torch.Generator().manual_seed(3))
    t = int(sched.timesteps[i])
    if definition == "h":
        f = lambda z: _hooked_h(ad, z, t)  # noqa: E731
    elif family == "sd3":  # the Euler step of the velocity ODE, written out
        sigma_s = float(ad.signal_noise(int(sched.timesteps[i - 1]))[1])

        def f(z):
            v, sigma_t = _direct_velocity(ad, z, t)
            return z + (sigma_s - sigma_t) * v
    else:
        A, B = sched.step_coefficients(i)
        f = lambda z: A * z + B * ad.eps(z, t)  # noqa: E731
    got = exact_element_rates(ad, sched, i, x, RateSpec(definition))
    torch.testing.assert_close(got.flatten().double(), _column_norms(f, x, ad), rtol=1e-4, atol=1e-6)


def test_flow_matching_generation_matches_diffusers_euler_and_inversion_runs_it_backwards(family_dirs):
    from diffusers import FlowMatchEulerDiscreteScheduler
    from workbench.flow import unshifted_sigmas

    ad = load_model(family_dirs["sd3"], device="cpu")
    sched = make_schedule(ad, 8)
    x_T = torch.randn(1, *ad.model_shape, generator=torch.Generator().manual_seed(4))
    fm = FlowMatchEulerDiscreteScheduler.from_config(ad.scheduler_config)
    fm.set_timesteps(sigmas=unshifted_sigmas(1000)[sched.timesteps].flip(0).float().tolist())
    torch.testing.assert_close(fm.sigmas[:-1].double(), sched.noise.flip(0), rtol=1e-5, atol=1e-6)
    y = x_T.clone()
    with torch.no_grad():
        for t in fm.timesteps:
            v = ad.denoiser(y, encoder_hidden_states=ad.cond["encoder_hidden_states"],
                            pooled_projections=ad.cond["pooled_projections"], timestep=t[None]).sample
            y = fm.step(v, t, y).prev_sample
    torch.testing.assert_close(generate(ad, x_T, sched), y, rtol=1e-4, atol=1e-4)
    # inversion: x_t = x_s + (sigma_t - sigma_s) v(x_s, t), from sigma = 0 up
    x0 = torch.randn(ad.model_shape, generator=torch.Generator().manual_seed(5))
    traj = invert(ad, x0, sched, fixed_point=0)  # the plain step; refinement: test_workbench_ddim
    x, sig = x0[None], 0.0
    with torch.no_grad():
        for i, t in enumerate(sched.timesteps.tolist()):
            v, sigma_t = _direct_velocity(ad, x, t)
            x = x + (sigma_t - sig) * v
            sig = sigma_t
            torch.testing.assert_close(traj.states[i], x[0], rtol=1e-4, atol=1e-5)


# --- end to end: load -> invert -> curve -> cube -> edit ------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("family", FAMILIES)
def test_family_end_to_end(family_dirs, family, tmp_path):
    from cache.build import compute_cube
    from cache.params import CubeParams
    from workbench.curves import pixel_curves
    from workbench.editing import EditConfig, run_edit
    from workbench.pipeline import prepare_image

    ad = load_model(family_dirs[family], device="cpu", prompt="3" if family == "dit" else "a red cat")
    H, W = ad.image_size
    rng = np.random.default_rng(0)
    img = Image.fromarray(rng.integers(0, 255, (H, W, 3), dtype=np.uint8))
    prep = prepare_image(ad, img, steps=4)
    curves = pixel_curves(ad, prep.trajectory, [(1, 2)], RateSpec("h"))
    assert curves.shape == (1, 4) and torch.isfinite(curves).all() and (curves > 0).all()
    cube = compute_cube(ad, img, CubeParams(K=4, steps=4))
    assert cube["rate"].shape == (4, *ad.model_shape[1:]) and np.isfinite(cube["rate"].values).all()
    assert cube.attrs["prompt"] == ad.prompt and len(cube.attrs["prompt_fingerprint"]) == 16
    _open_in_explore(cube, tmp_path)
    mask = np.zeros((H, W), bool)
    mask[4:10, 4:10] = True
    res = run_edit(ad, img, mask, EditConfig(task="removal", n_iter=2, steps=4, t_b=100, blend_t=500,
                                             curve_pixels=2, refresh_every=4), baselines=False)
    assert res.iterations_done == 2 and res.edited.size == (W, H)


def _open_in_explore(cube, tmp_path):
    """The family's cube in a store, opened in the Explore dashboard: a click shows that pixel's curve
    and the metadata names the prompt."""
    from cache.store import CubeStore
    from dashboards.context import AppContext
    from dashboards.explore import ExploreView

    store = CubeStore(tmp_path / "store")
    key = store.put(cube)
    view = ExploreView(AppContext.from_paths(store.path, device="cpu"), normalise=False)
    view.cube = key
    view.click(1, 2)
    # the curves are the plot's last traces (the ±2 SE bands are drawn below them)
    np.testing.assert_allclose(view.curve_pane.object.data[-1].y, store.open(key)["rate"].values[:, 1, 2],
                               rtol=1e-6)
    assert cube.attrs["prompt"] in view.meta.object


# --- 5. half precision ----------------------------------------------------------------------------------
def test_bfloat16_rates_agree_with_float32(tiny_sd_dir):
    ad32 = load_model(tiny_sd_dir, device="cpu")
    ad16 = load_model(tiny_sd_dir, device="cpu", dtype=torch.bfloat16)
    assert ad16.denoiser.dtype == torch.bfloat16 and next(ad16.vae.parameters()).dtype == torch.float32
    x0 = torch.randn(ad32.model_shape, generator=torch.Generator().manual_seed(6))
    s32, s16 = make_schedule(ad32, 6), make_schedule(ad16, 6)
    tr32, tr16 = invert(ad32, x0, s32), invert(ad16, x0, s16)
    assert tr16.states.dtype == torch.float32  # trajectories accumulate in float32
    assert (tr16.states - tr32.states).norm() / tr32.states.norm() < 0.05
    r32 = exact_element_rates(ad32, s32, 3, tr32.states[3], RateSpec("h"))
    r16 = exact_element_rates(ad16, s16, 3, tr32.states[3], RateSpec("h"))
    assert torch.isfinite(r16).all()
    rel = ((r16.float() - r32).abs() / r32).median()
    assert rel < 0.05, rel


# --- 7. the device check, on tiny models on the CPU -----------------------------------------------------
@pytest.mark.slow
def test_device_check_tiny_runs_every_section(tmp_path):
    from bench.device_check import main

    res = main(["--tiny", "--device", "cpu", "--out", str(tmp_path), "--edit-iters", "2"])
    assert all(sec["ok"] for sec in res["sections"].values()), res["sections"]
    assert res["sections"]["sd21_cube_4K"]["K"] == 4 * res["sections"]["sd21_cube_K"]["K"]
    assert res["sections"]["sd21_dtype_agreement"]["bfloat16"]["spearman"] > 0.99
    saved = json.loads((tmp_path / "device_check_tiny.json").read_text())
    assert set(saved["sections"]) == set(res["sections"])
    assert "| sdxl_cube_K | vjps_per_s |" in (tmp_path / "device_check_tiny.md").read_text()
