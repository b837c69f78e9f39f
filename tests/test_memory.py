"""Memory budget, device-correct tensors, half precision, whole-embedding fingerprints, load-time layout errors."""
from __future__ import annotations

import subprocess
import sys
import textwrap
import weakref

import numpy as np
import pytest
import torch
from PIL import Image

from workbench import memory
from workbench.errors import WorkbenchError


# --- the budget ----------------------------------------------------------------------------------
@pytest.mark.parametrize("text, want", [("6GB", 6_000_000_000), ("512MB", 512_000_000), ("1.5GiB", 1.5 * 2**30),
                                        ("6g", 6e9), ("1000", 1000), (" 2 kib ", 2048)])
def test_parse_size(text, want):
    assert memory.parse_size(text) == int(want)


@pytest.mark.parametrize("bad", ["lots", "6 parsecs", "-1GB", "0", ""])
def test_parse_size_refuses_nonsense_in_one_line(bad):
    with pytest.raises(WorkbenchError, match="memory size must be"):
        memory.parse_size(bad)


def test_cli_refuses_a_bad_max_memory_before_loading_anything(tmp_path):
    from workbench.cli import main

    assert main(["curve", str(tmp_path / "x.png"), "--pixel", "1,1", "--max-memory", "lots"]) == 2


class _Fake:
    """Just what the budget reads of an adapter."""

    model_shape, dtype, device = (3, 8, 8), torch.float32, torch.device("cpu")


@pytest.mark.skipif(memory._hwm() is None, reason="no /proc/self/status here: the peak RSS cannot be read")
def test_chunks_follow_the_measured_sample_cost():
    fake = _Fake()
    size = 100_000_000
    probe = lambda: np.ones(size // 8).sum()  # noqa: E731  one sample: a 100 MB temporary
    cost = memory.sample_cost(fake, "test-100MB", probe)
    assert 0.9 * size < cost < 1.6 * size
    memory._release_freed()  # chunk_for trims the heap before it reads the RSS: measure the same way
    used = memory.in_use("cpu")
    budget = memory.MemoryBudget(used + 10 * cost, "test")
    n = memory.chunk_for(fake, "test-100MB", probe, cap=1000, budget=budget)
    assert int(memory.SAFETY * 10) - 2 <= n <= int(memory.SAFETY * 10)
    assert memory.chunk_for(fake, "test-100MB", probe, cap=3, budget=budget) == 3
    with pytest.raises(WorkbenchError, match="--max-memory"):
        # below what is in use: no sample fits, however far the heap trim lowers the RSS meanwhile
        memory.chunk_for(fake, "test-100MB", probe, cap=64, budget=memory.MemoryBudget(cost // 2, "test"))


def test_budget_on_the_adapter_is_the_default(tiny_pixel_dir):
    from workbench.adapters import load_model

    ad = load_model(tiny_pixel_dir, device="cpu")
    assert "automatic" in memory.budget_of(ad).source
    ad.memory_budget = memory.MemoryBudget(123, "--max-memory 123")
    assert memory.budget_of(ad).bytes == 123
    assert memory.budget_of(ad, memory.MemoryBudget(7, "x")).bytes == 7
    with pytest.raises(WorkbenchError, match="memory budget"):  # far below the model itself
        from workbench.curves import pixel_curves
        from workbench.pipeline import prepare_image

        ad.memory_budget = None
        prep = prepare_image(ad, Image.new("RGB", (16, 16), (90, 120, 30)), steps=3)
        pixel_curves(ad, prep.trajectory, [(2, 3)], budget=memory.MemoryBudget(1, "test"))


_PEAK_SCRIPT = textwrap.dedent("""
    import resource, sys, torch
    torch.set_num_threads(1)
    from diffusers import UNet2DModel
    from workbench.adapters import PixelAdapter
    from workbench.default_model import default_scheduler_config
    from workbench.ddim import make_schedule, invert
    from workbench.estimators import ProbeOptions, rate_cube
    from workbench.memory import MemoryBudget, in_use
    torch.manual_seed(0)
    unet = UNet2DModel(sample_size=64, in_channels=3, out_channels=3, layers_per_block=1,
                       block_out_channels=(32, 64), down_block_types=("DownBlock2D", "AttnDownBlock2D"),
                       up_block_types=("AttnUpBlock2D", "UpBlock2D"), norm_num_groups=8, attention_head_dim=16)
    ad = PixelAdapter(unet, default_scheduler_config(), device="cpu")
    traj = invert(ad, torch.rand(3, 64, 64) * 2 - 1, make_schedule(ad, 1))
    base = in_use("cpu")
    budget = None if sys.argv[1] == "none" else MemoryBudget(base + int(float(sys.argv[1]) * 1e6), "test")
    rate_cube(ad, traj, opts=ProbeOptions(K=64, chunk=64 if budget is None else None), budget=budget)
    print(base)
""")


@pytest.mark.slow
def test_peak_rss_stays_under_a_small_budget():
    """A 64x64 pixel U-Net, K=64 probes: unbudgeted (64 probes per pass) vs 250 MB above what is in use;
    the peak RSS of the child (RUSAGE_CHILDREN of a wrapper process that runs only it)."""
    code = ("import resource, subprocess, sys; r = subprocess.run([sys.executable, '-c', sys.argv[1], sys.argv[2]], "
            "check=True, capture_output=True, text=True); "
            "print(r.stdout.split()[-1], resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024)")
    # the two runs side by side (one thread each): each peak is its own wrapper's RUSAGE_CHILDREN
    runs = [subprocess.Popen([sys.executable, "-c", code, _PEAK_SCRIPT, arg], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True) for arg in ("250", "none")]
    peaks = []
    for run in runs:
        out, err = run.communicate(timeout=900)
        assert run.returncode == 0, err[-2000:]
        peaks.append(tuple(int(v) for v in out.split()[-2:]))
    (base, small), (_, free) = peaks
    assert small <= base + 250e6, (base, small)  # under the budget
    assert free > small + 250e6, (free, small)  # and the budget made a real difference


# --- devices -------------------------------------------------------------------------------------
_FACTORIES = {torch.tensor, torch.arange, torch.zeros, torch.ones, torch.empty, torch.full, torch.randn, torch.rand,
              torch.randint, torch.randperm, torch.linspace, torch.eye}
_INDEXING = {torch.Tensor.__getitem__, torch.Tensor.__setitem__, torch.Tensor.index_put_, torch.Tensor.to,
             torch.Tensor.cpu, torch.Tensor.copy_, torch.Tensor.numpy, torch.Tensor.tolist, torch.Tensor.item,
             torch.Tensor.__bool__, torch.Tensor.__int__, torch.Tensor.__float__, torch.Tensor.__len__,
             torch.Tensor.__format__, torch.Tensor.__repr__}


class HostTensorAudit(torch.overrides.TorchFunctionMode):
    """Records every op that combines a tensor made on the host (a factory without `device=`, or `.cpu()`)
    with a tensor on the model's device: on CUDA those ops fail with a device mismatch. The model's
    device is written `device` (e.g. torch.device("cpu", 0)) so that `.to(device)` is told from `.cpu()`
    on a CPU-only machine. A tensor placed with a plain "cpu" device (as `t.device` reads here) could
    be either: it is neutral, never counted on either side."""

    HOST, NEUTRAL = "host", "neutral"

    def __init__(self, device: torch.device):
        super().__init__()
        self.device, self.kind, self.mixed = device, {}, []  # id -> (weakref, HOST | NEUTRAL)

    def _kind(self, t) -> str:
        entry = self.kind.get(id(t)) if isinstance(t, torch.Tensor) else None
        return entry[1] if entry is not None and entry[0]() is t else "device"

    def _placed(self, dev, source) -> str:
        if isinstance(dev, torch.Tensor):
            return self._kind(dev)
        if torch.device(dev) == self.device:
            return "device"
        return self.HOST if source == self.HOST else self.NEUTRAL

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        tensors = [a for a in (*args, *kwargs.values()) if isinstance(a, torch.Tensor)]
        for a in (*args, *kwargs.values()):
            if isinstance(a, (list, tuple)):
                tensors += [b for b in a if isinstance(b, torch.Tensor)]
        outs = [o for o in (out if isinstance(out, (tuple, list)) else (out,)) if isinstance(o, torch.Tensor)]
        if func in _FACTORIES:
            kind = self.HOST if kwargs.get("device") is None else self._placed(kwargs["device"], None)
        elif func is torch.Tensor.cpu:
            kind = self.HOST
        elif func is torch.Tensor.to:
            dev = kwargs.get("device", next((a for a in args[1:] if isinstance(a, (str, torch.device, torch.Tensor))),
                                            None))
            kind = self._kind(args[0]) if dev is None else self._placed(dev, self._kind(args[0]))
        else:
            kinds = {self._kind(t) for t in tensors if t.ndim > 0} - {self.NEUTRAL}
            if func not in _INDEXING and kinds == {self.HOST, "device"}:
                import traceback

                where = [f for f in traceback.extract_stack()[:-1] if "/workbench/" in f.filename]
                self.mixed.append((getattr(func, "__name__", str(func)), where[-1] if where else None))
            kind = self.HOST if kinds == {self.HOST} else ("device" if kinds else self.NEUTRAL)
        for o in outs:
            if kind == "device":
                self.kind.pop(id(o), None)
            else:
                self.kind[id(o)] = (weakref.ref(o), kind)
        return out


def test_edit_curve_and_cube_never_mix_host_and_device_tensors(tiny_pixel_dir):
    from workbench.adapters import load_model
    from workbench.curves import pixel_curves
    from workbench.editing import EditConfig, run_edit
    from workbench.estimators import ProbeOptions, rate_cube
    from workbench.pipeline import prepare_image

    dev = torch.device("cpu", 0)  # the "device": tensors sit on the CPU, but `.to(dev)` is told from `.cpu()`
    ad = load_model(tiny_pixel_dir, device="cpu")
    ad.device = dev
    img = Image.fromarray((np.random.default_rng(0).random((16, 16, 3)) * 255).astype(np.uint8))
    mask = np.zeros((16, 16), bool)
    mask[4:10, 5:11] = True
    audit = HostTensorAudit(dev)
    with audit:
        prep = prepare_image(ad, img, steps=3)
        pixel_curves(ad, prep.trajectory, [(2, 3)], chunk=2)
        rate_cube(ad, prep.trajectory, opts=ProbeOptions(K=4, chunk=4))
        run_edit(ad, img, mask, EditConfig(task="removal", n_iter=2, steps=3, refresh_every=1, curve_pixels=2,
                                           pixels_per_iter=2), ref_xy=(1, 1), baselines=False)
    assert not audit.mixed, audit.mixed


def test_the_audit_catches_a_host_tensor_added_to_a_device_tensor():
    dev = torch.device("cpu", 0)
    audit = HostTensorAudit(dev)
    with audit:
        on_device = torch.zeros(3).to(dev)
        chans = torch.randint(4, (3,), generator=torch.Generator().manual_seed(0))
        _ = chans * 2 + on_device  # the old editing loop's `chans * H * W + ys * W + xs`
    assert audit.mixed


# --- half precision ------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_edit_optimises_in_float32(tiny_pixel_dir, dtype):
    """x_T is a float32 Parameter whatever the model's dtype: Adam's eps (1e-8) is not rounded away,
    and the result moves away from the original (float16 Adam state returned the original or NaN)."""
    from workbench.adapters import load_model
    from workbench.editing import EditConfig, run_edit

    ad = load_model(tiny_pixel_dir, device="cpu", dtype=dtype)
    img = Image.fromarray((np.random.default_rng(1).random((16, 16, 3)) * 255).astype(np.uint8))
    mask = np.zeros((16, 16), bool)
    mask[4:10, 5:11] = True
    try:
        res = run_edit(ad, img, mask, EditConfig(task="saliency", n_iter=3, steps=3, refresh_every=2, lr=0.05,
                                                 curve_pixels=2, feature_weight=0.0), baselines=False)
    except WorkbenchError as exc:  # float16 derivatives overflowing must say so in one line
        assert dtype == torch.float16 and "float32" in str(exc) and "\n" not in str(exc)
        return
    except RuntimeError as exc:  # an op without a CPU half kernel in this torch build
        pytest.skip(f"{dtype} not supported on this CPU: {str(exc).splitlines()[0]}")
    assert res.x_T.dtype == torch.float32
    assert torch.isfinite(res.x_T).all()
    assert not torch.equal(res.x_T, res.x_T_original.float())


def test_nonfinite_rates_raise_one_line(tiny_pixel_dir):
    from workbench.adapters import load_model
    from workbench.curves import check_finite

    ad = load_model(tiny_pixel_dir, device="cpu")
    ad.dtype = torch.float16
    with pytest.raises(WorkbenchError, match="--dtype float32") as e:
        check_finite(torch.tensor([1.0, float("nan")]), ad)
    assert "\n" not in str(e.value)
    assert check_finite(torch.ones(3), ad).sum() == 3


# --- fingerprints and layouts --------------------------------------------------------------------
def _sd_adapter(embedding: torch.Tensor, unet=None):
    from workbench.adapters import StableDiffusionAdapter
    from workbench.default_model import default_scheduler_config
    from workbench.tiny import tiny_sd_unet, tiny_vae

    return StableDiffusionAdapter(unet or tiny_sd_unet(), tiny_vae(), default_scheduler_config(), embedding,
                                  device="cpu")


def test_fingerprint_covers_the_whole_prompt_embedding():
    from cache.keys import model_identity

    a = torch.randn(1, 77, 32, generator=torch.Generator().manual_seed(0))  # 9856 bytes
    b = a.clone()
    b[0, -1, -1] += 1.0  # differs only after byte 4096
    assert a.numpy().tobytes()[:4096] == b.numpy().tobytes()[:4096]
    assert _sd_adapter(a).fingerprint() != _sd_adapter(b).fingerprint()
    assert model_identity(_sd_adapter(a)) != model_identity(_sd_adapter(b))
    assert _sd_adapter(a).fingerprint() == _sd_adapter(a.clone()).fingerprint()


def test_wrong_width_text_encoder_is_a_load_time_error():
    with pytest.raises(WorkbenchError, match="cross_attention_dim") as e:
        _sd_adapter(torch.zeros(1, 16, 48))  # the tiny U-Net attends to 32-wide text
    assert "\n" not in str(e.value)


def test_class_conditioned_unet_is_a_load_time_error():
    from workbench.tiny import tiny_sd_unet

    unet = tiny_sd_unet()
    unet.register_to_config(class_embed_type="timestep")
    with pytest.raises(WorkbenchError, match="class or image conditioning"):
        _sd_adapter(torch.zeros(1, 16, 32), unet)


# --- edits at the source resolution --------------------------------------------------------------
def test_edit_result_at_source_size_keeps_the_source_outside_the_feathered_band(tiny_pixel_dir):
    from scipy.ndimage import distance_transform_edt

    from workbench.adapters import load_model
    from workbench.editing.composite import default_feather
    from workbench.editing.config import EditConfig
    from workbench.editing.loop import run_edit

    adapter = load_model(tiny_pixel_dir, device="cpu")
    rng = np.random.default_rng(0)
    source = Image.fromarray((rng.random((45, 60, 3)) * 255).astype(np.uint8))  # 4:3, not the model's square
    mask = np.zeros((45, 60), bool)
    mask[15:30, 20:40] = True
    cfg = EditConfig(task="removal", n_iter=2, steps=5, t_b=100, blend_t=500, curve_pixels=2, refresh_every=4)
    res = run_edit(adapter, source, mask, cfg, ref_xy=(2, 2), baselines=False)
    out, src = np.asarray(res.edited_source), np.asarray(source)
    assert out.shape == src.shape
    far = distance_transform_edt(~mask) >= default_feather((45, 60), adapter.image_size)
    assert np.array_equal(out[far], src[far])  # outside the band: the input, bit for bit


def test_transformer_fingerprint_covers_the_whole_default_conditioning():
    from diffusers import PixArtTransformer2DModel

    from workbench.default_model import default_scheduler_config
    from workbench.adapters import TransformerAdapter
    from workbench.tiny import tiny_vae

    torch.manual_seed(0)
    net = PixArtTransformer2DModel(num_attention_heads=2, attention_head_dim=8, in_channels=4, out_channels=8,
                                   num_layers=2, cross_attention_dim=16, caption_channels=32, sample_size=8,
                                   patch_size=2, norm_type="ada_norm_single", use_additional_conditions=False,
                                   norm_num_groups=4)
    vae = tiny_vae()

    def adapter(emb):
        cond = {"encoder_hidden_states": emb, "encoder_attention_mask": torch.ones(1, emb.shape[1])}
        return TransformerAdapter(net, vae, default_scheduler_config(), family="pixart", empty=cond)

    a = torch.randn(1, 120, 32, generator=torch.Generator().manual_seed(0))  # 15360 bytes
    b = a.clone()
    b[0, -1, -1] += 1.0  # differs only after byte 4096 (the old hash stopped there)
    assert adapter(a).fingerprint() != adapter(b).fingerprint()
    assert adapter(a).fingerprint() == adapter(a.clone()).fingerprint()
