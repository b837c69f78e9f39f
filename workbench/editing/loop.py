"""Generation-curve matching (the paper's Algorithm 1) as one loop for every task.

invert -> reference curve (a pixel's, or none for pseudo-curve / saliency / blending losses) ->
representative source-pixel curve c_s -> per iteration: sample (pixel, channel) pairs uniformly in
the source region and a timestep t ~ c_s (restricted to t > t_b), generate differentiably from x_T
down to t (blended with the original outside the mask at t >= blend_t), rate by a JVP, loss, Adam
step on x_T (second-order AD) -> every k iterations blend x_T and refresh the curves -> generate and
decode the best x_T. Progress goes to `callback`; `should_stop()` cancels and keeps the best so far.

Cancellation reaches every phase: a watch on the denoiser's modules (`_Watch`) runs between network
evaluations, at most every `HEARTBEAT_S` seconds of work. Before the optimisation it raises
`EditCancelled` when `should_stop()` (there is nothing to keep yet); during the optimisation it ends
the current iteration early and the best x_T so far is evaluated; during the evaluation it reports a
heartbeat through `callback` (phase "evaluate"), so a caller whose callback raises (the dashboard's
job when its tab closed) abandons the evaluation within one network evaluation.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from PIL import Image

from ..adapters import ModelAdapter
from ..cancel import checked_calls
from ..errors import WorkbenchError
from ..images import read_image, to_rgb, to_uint8
from ..memory import MemoryBudget, autodiff_chunk
from ..pipeline import PreparedImage, prepare_image, source_to_model_pixel
from ..progress import Progress, ProgressFn, emit
from ..rates import rate_function, unit_tangents
from .baselines import BASELINES
from .composite import composite_change
from .config import EditConfig
from .evaluate import image_region_curve, score_image
from .metrics import psnr_outside
from .masks import band, check_mask, mask_to_image_size, model_mask, region_pixels
from .tasks import feature_alignment, needs_reference, task_loss, uses_features
from .trajectory import blend_states, channel_curves, generate_states, generate_to

__all__ = ["EditResult", "EditCancelled", "HEARTBEAT_S", "run_edit", "sampled_rates", "timestep_distribution"]

#: the longest stretch of network work between two cancellation checks / evaluation heartbeats
HEARTBEAT_S = 0.1


class EditCancelled(WorkbenchError):
    """`should_stop()` before the optimisation began: there is no result to keep."""

    def __init__(self, message: str = "the edit was cancelled before its optimisation began: nothing to keep"):
        super().__init__(message)


class _StopNow(Exception):
    """Internal: `should_stop()` in the middle of an optimisation iteration."""


class _Watch:
    """Checks for cancellation between the denoiser's module calls (`workbench.cancel.checked_calls`:
    eps, h and features are all covered), at most every HEARTBEAT_S seconds.
    `phase` picks what a check does: "prepare" raises EditCancelled on should_stop(), "optimise"
    raises _StopNow, "evaluate" calls `heartbeat()` (which may raise to abandon the evaluation)."""

    def __init__(self, should_stop: Callable[[], bool] | None, heartbeat: Callable[[], None]):
        self.should_stop, self.heartbeat = should_stop, heartbeat
        self.phase = "prepare"

    def check(self) -> None:
        """What one check does in the current phase (called at most every HEARTBEAT_S seconds)."""
        if self.phase == "evaluate":
            self.heartbeat()
        elif self.should_stop is not None and self.should_stop():
            raise EditCancelled() if self.phase == "prepare" else _StopNow()

    def attached(self, adapter: ModelAdapter):
        """Hook `check` onto the denoiser's module calls for the duration (`workbench.cancel`)."""
        return checked_calls(adapter, self.check, every=HEARTBEAT_S)


@dataclass
class EditResult:
    """What an edit produced. Images are PIL at the model's image size, except `edited_source`: the
    edit at the source image's resolution (`composite.composite_change`; with blend, the source exactly
    outside the mask's feathered band).
    Curves (N,) over `timesteps` (ascending) are the mean over `curve_pixels` region pixels and all
    channels; the 'after' curve is that of the edited image re-inverted (as for the baselines)."""

    original: Image.Image
    edited: Image.Image
    mask_model: np.ndarray
    timesteps: np.ndarray
    curve_before: np.ndarray
    curve_after: np.ndarray
    reference_curve: np.ndarray | None
    metrics: dict
    losses: list[float]
    iterations_done: int
    cancelled: bool
    region_model: np.ndarray | None = None
    baselines: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)
    seconds: float = 0.0
    x_T: torch.Tensor | None = None
    x_T_original: torch.Tensor | None = None
    edited_source: Image.Image | None = None


def timestep_distribution(curve: torch.Tensor, timesteps: torch.Tensor, t_b: int) -> torch.Tensor:
    """Sampling distribution over grid indices: the curve normalised over t > t_b, zero elsewhere."""
    p = curve.double().clamp_min(0) * (timesteps > t_b).double()
    if p.sum() <= 0:
        raise WorkbenchError(f"no timestep of the editing trajectory lies above t_b={t_b}: lower t_b or raise steps")
    return p / p.sum()


def sampled_rates(adapter: ModelAdapter, x_T: torch.Tensor, schedule, i: int, tangents: torch.Tensor,
                  definition: str = "h", *, checkpoint: bool = False, **blend) -> tuple[torch.Tensor, torch.Tensor]:
    """Differentiable rates at grid index i of the trajectory generated from x_T (1, C, H, W):
    (x_t (1, C, H, W), rates (k,)) for tangents (k, C, H, W), r_k = ||J(x_t)[v_k]|| (a JVP, so that
    backward through it is second-order AD). `blend` as in `generate_to`. Call inside adapter.autodiff()."""
    x_t = generate_to(adapter, x_T.to(adapter.dtype), schedule, i,
                      grad="checkpointed" if checkpoint else "on", **blend)
    f = rate_function(adapter, schedule, i, definition)
    primal = x_t.expand(len(tangents), *x_t.shape[1:]).contiguous()
    _, jv = torch.func.jvp(f, (primal,), (tangents,))
    return x_t, jv.flatten(1).norm(dim=1)


def _checkpointing(adapter: ModelAdapter, cfg: EditConfig, schedule, states: torch.Tensor,
                   budget: MemoryBudget | None) -> bool:
    """Gradient checkpointing of the differentiable chain: as configured, else on for CUDA, else on
    when the chain's N steps (plus the JVP and its second-order backward) would not fit the budget."""
    if cfg.checkpoint is not None:
        return cfg.checkpoint
    if adapter.device.type == "cuda":
        return True
    t = int(schedule.timesteps[-1])
    need = len(schedule) + 2 * cfg.pixels_per_iter
    fits = autodiff_chunk(adapter, lambda x: adapter.eps(x, t), states[-1:], kinds=("chain",), key="eps", cap=need,
                          budget=budget, what="differentiable DDIM step")
    return fits < need


def _check_step(loss: float, grad: torch.Tensor | None, adapter: ModelAdapter) -> None:
    """One-line WorkbenchError when an iteration's loss or gradient is NaN/inf (half precision)."""
    if math.isfinite(loss) and (grad is None or bool(torch.isfinite(grad).all())):
        return
    dtype = str(adapter.dtype).replace("torch.", "")
    fix = ("use --dtype float32 or bfloat16: float16 derivatives overflow" if adapter.dtype == torch.float16
           else "lower --lr or check the model's weights")
    raise WorkbenchError(f"the edit's loss or gradient became NaN/inf in {dtype}: {fix}")


def _check_ref(config: EditConfig, ref_xy, size, mask: np.ndarray) -> None:
    if config.task == "transfer" and ref_xy is None:
        raise WorkbenchError("semantic transfer needs a reference pixel: pass --ref X,Y (a pixel with the wanted look)")
    if ref_xy is None:
        return
    if config.task in ("saliency", "blending"):
        raise WorkbenchError(f"{config.task} takes no reference pixel: drop --ref")
    x, y = ref_xy
    H0, W0 = size
    if not (0 <= x < W0 and 0 <= y < H0):
        raise WorkbenchError(f"reference pixel (x={x}, y={y}) is outside the {W0}x{H0} image: pick 0<=x<{W0}, 0<=y<{H0}")
    if config.task == "removal" and mask[y, x]:
        raise WorkbenchError(f"reference pixel (x={x}, y={y}) lies inside the object to remove: pick a background pixel")


@dataclass
class _Optimised:
    """What the optimisation hands to the evaluation (`_finish`): the inverted image, the best x_T,
    the masks and region, the pixels the curves are taken at, and the run's bookkeeping."""

    prep: PreparedImage
    best_x: torch.Tensor
    mask_img: np.ndarray
    M: torch.Tensor
    region: torch.Tensor
    pixels: torch.Tensor
    blend: dict
    ref_px: tuple[int, int] | None
    losses: list[float]
    done: int
    cancelled: bool
    gen: torch.Generator
    started: float


def run_edit(adapter: ModelAdapter, image: str | Path | Image.Image, mask: np.ndarray, config: EditConfig, *,
             ref_xy: tuple[int, int] | None = None, callback: ProgressFn | None = None,
             should_stop: Callable[[], bool] | None = None, baselines: bool = True) -> EditResult:
    """Run one edit. mask: bool (H0, W0) in source-image pixels (the source region; the object for
    removal; the foreground for blending). ref_xy: (x, y) in source-image pixels.
    callback: a `workbench.progress.Progress` (phase "invert", "curves", "optimise" or "evaluate"; done
    = iterations of total = config.n_iter; `loss`, `best_loss` its best moving average, `t` the
    timestep of an optimise iteration) at each phase and every iteration, and during the evaluation
    every HEARTBEAT_S seconds (`seconds` spent evaluating); an exception raised by the callback
    abandons the edit. should_stop(): checked every HEARTBEAT_S seconds of
    network work; before the optimisation it raises EditCancelled, afterwards the best result so far
    is evaluated and returned (`cancelled`). x_T is optimised in float32 whatever the model's dtype;
    a non-finite loss or gradient raises a one-line WorkbenchError. The curves' JVP chunks and the
    chain's checkpointing follow the adapter's memory budget, else an automatic one (`workbench.memory`)."""
    started = time.perf_counter()
    pil = read_image(image) if not isinstance(image, Image.Image) else to_rgb(image)
    size = (pil.height, pil.width)
    mask = check_mask(mask, size)
    _check_ref(config, ref_xy, size, mask)
    report = callback or (lambda p: None)
    evaluating: dict = {}

    def heartbeat() -> None:
        report(replace(evaluating["event"], seconds=time.perf_counter() - evaluating["since"]))

    watch = _Watch(should_stop, heartbeat)
    with watch.attached(adapter):
        run = _optimise(adapter, pil, mask, config, ref_xy, report, watch)
        run.started = started
        evaluating.update(event=Progress("evaluate", run.done, config.n_iter, best_loss=float("nan"),
                                         loss=run.losses[-1] if run.losses else float("nan")),
                          since=time.perf_counter())
        report(evaluating["event"])
        watch.phase = "evaluate"
        result = _finish(adapter, config, run, baselines)
    result.edited_source = Image.fromarray(composite_change(pil, result.original, result.edited,
                                                           mask if config.blend else None))
    return result


def _optimise(adapter: ModelAdapter, pil: Image.Image, mask: np.ndarray, cfg: EditConfig, ref_xy,
              report: ProgressFn, watch: _Watch) -> _Optimised:
    """Invert, take the curves, optimise x_T (Algorithm 1's loop); `watch` switches to "optimise"."""
    size = (pil.height, pil.width)
    gen = torch.Generator().manual_seed(cfg.seed)
    should_stop = watch.should_stop

    emit(report, "invert", 0, cfg.n_iter, loss=float("nan"), best_loss=float("nan"))
    prep = prepare_image(adapter, pil, steps=cfg.steps)
    traj = prep.trajectory
    schedule, orig_states = traj.schedule, traj.states
    C, H, W = adapter.model_shape
    mask_img = mask_to_image_size(mask, adapter)
    M = model_mask(mask_img, adapter).to(adapter.device, adapter.dtype)
    if not (M > 0.5).any():
        raise WorkbenchError("the mask is empty on the model grid: draw a larger region "
                             f"(the model sees the image at {W}x{H})")
    if (M > 0.5).all():
        raise WorkbenchError("the mask covers the whole model grid: a local edit needs some background")
    region = band(M, cfg.erosion) if cfg.task == "blending" else (M > 0.5).float()
    pixels = region_pixels(region).cpu()  # indices: sampled with a CPU generator, combined on the CPU
    blend = dict(original_states=orig_states, mask=M, blend_t=cfg.blend_t) if cfg.blend else {}

    # reference and representative source pixel (per-channel curves (C, N))
    has_ref = ref_xy is not None
    ref_px = source_to_model_pixel(adapter, ref_xy[0], ref_xy[1], size) if has_ref else None
    match = needs_reference(cfg, has_ref)
    ref_in_region = bool(match and region[ref_px] > 0.5)
    rep = tuple(pixels[torch.randint(len(pixels), (1,), generator=gen)].tolist()[0])
    emit(report, "curves", 0, cfg.n_iter, loss=float("nan"), best_loss=float("nan"))
    ref_curves = channel_curves(adapter, schedule, orig_states, [ref_px], cfg.rate)[0] if match else None
    src_curve = channel_curves(adapter, schedule, orig_states, [rep], cfg.rate)[0].mean(0)
    p_t = timestep_distribution(src_curve, schedule.timesteps, cfg.t_b)
    loss_fn = task_loss(cfg, has_ref)
    features = uses_features(cfg)
    orig_feats: dict[int, list[torch.Tensor]] = {}
    checkpoint = _checkpointing(adapter, cfg, schedule, orig_states, None)

    state = torch.promote_types(adapter.dtype, torch.float32)  # optimisation state: float32 at least
    x_T_orig = traj.x_T[None].to(state).clone()
    x = torch.nn.Parameter(x_T_orig.clone())
    opt = torch.optim.Adam([x], lr=cfg.lr)
    losses: list[float] = []
    ema, best_ema, best_x = None, float("inf"), x_T_orig.clone()
    cancelled, done = False, 0
    N = len(schedule)
    watch.phase = "optimise"
    for it in range(cfg.n_iter):
        if should_stop is not None and should_stop():
            cancelled = True
            break
        try:
            i = int(torch.multinomial(p_t.float(), 1, generator=gen))
            t = int(schedule.timesteps[i])
            pick = torch.randint(len(pixels), (cfg.pixels_per_iter,), generator=gen)
            chans = torch.randint(C, (cfg.pixels_per_iter,), generator=gen)
            ys, xs = pixels[pick, 0], pixels[pick, 1]
            flat = chans * H * W + ys * W + xs
            tangents = unit_tangents((C, H, W), flat, device=adapter.device, dtype=adapter.dtype)
            opt.zero_grad(set_to_none=True)
            with adapter.autodiff():
                x_t, rates = sampled_rates(adapter, x, schedule, i, tangents, cfg.rate, checkpoint=checkpoint,
                                           **blend)
                ref = ref_curves[chans, i] if match else None
                loss = loss_fn(rates, ref)
                if features:
                    if i not in orig_feats:
                        with torch.no_grad():
                            orig_feats[i] = [f0.detach()
                                             for f0 in adapter.eps_and_features(orig_states[i][None], t)[1]]
                    feats = adapter.eps_and_features(x_t, t)[1]
                    loss = loss + cfg.feature_weight * feature_alignment(feats, orig_feats[i])
                loss.backward()
            value = float(loss.detach())
            _check_step(value, x.grad, adapter)
            opt.step()
            losses.append(value)
            done = it + 1
            ema = value if ema is None else 0.9 * ema + 0.1 * value
            if (it + 1) % cfg.refresh_every == 0:
                with torch.no_grad():
                    if cfg.blend and int(schedule.timesteps[N - 1]) >= cfg.blend_t:
                        x.copy_(blend_states(x, x_T_orig, M))
                    states, _ = generate_states(adapter, x.detach()[0], schedule, **blend)
                src_curve = channel_curves(adapter, schedule, states, [rep], cfg.rate)[0].mean(0)
                p_t = timestep_distribution(src_curve, schedule.timesteps, cfg.t_b)
                if ref_in_region:
                    ref_curves = channel_curves(adapter, schedule, states, [ref_px], cfg.rate)[0]
        except _StopNow:  # cancelled mid-iteration: this iteration's step is not taken
            cancelled = True
            break
        if it + 1 >= min(cfg.refresh_every, cfg.n_iter) and ema < best_ema:
            best_ema, best_x = ema, x.detach().clone()
            if cfg.blend and int(schedule.timesteps[N - 1]) >= cfg.blend_t:
                best_x = blend_states(best_x, x_T_orig, M)
        emit(report, "optimise", it + 1, cfg.n_iter, loss=value, best_loss=best_ema, t=t)
    return _Optimised(prep=prep, best_x=best_x, mask_img=mask_img, M=M, region=region, pixels=pixels, blend=blend,
                      ref_px=ref_px if match else None, losses=losses, done=done, cancelled=cancelled, gen=gen,
                      started=0.0)


def _finish(adapter: ModelAdapter, cfg: EditConfig, run: _Optimised, baselines: bool) -> EditResult:
    """Generate and decode the best x_T, take the region's curves before and after (the edited image
    re-inverted), score it (and the task's classical baselines when `baselines`)."""
    traj = run.prep.trajectory
    schedule = traj.schedule
    _, x0_edit = generate_states(adapter, run.best_x[0], schedule, **run.blend)
    with torch.no_grad():
        edited = to_uint8(adapter.decode(x0_edit[None])[0])
        _, x0_rec = generate_states(adapter, traj.x_T, schedule)
        recon = to_uint8(adapter.decode(x0_rec[None])[0])
    original = to_uint8(run.prep.pixels)
    ts = schedule.timesteps.numpy()
    pick = torch.randperm(len(run.pixels), generator=run.gen)[:cfg.curve_pixels]
    curve_px = [tuple(p) for p in run.pixels[pick].tolist()]
    before = channel_curves(adapter, schedule, traj.states, curve_px, cfg.rate).mean((0, 1)).double().numpy()
    reference = (channel_curves(adapter, schedule, traj.states, [run.ref_px], cfg.rate)[0].mean(0).double().numpy()
                 if run.ref_px is not None else None)
    region_img = _region_image(run.region, adapter, run.mask_img)
    after = image_region_curve(adapter, edited, curve_px, cfg)
    metrics = score_image(original, edited, run.mask_img, before, after, ts, cfg, reference)
    metrics["psnr_outside_reconstruction"] = float(psnr_outside(original, recon, run.mask_img))
    metrics["iterations"] = run.done
    base: dict = {}
    if baselines:
        for name, fn in BASELINES.get(cfg.task, {}).items():
            out = fn(original, run.mask_img)
            b_after = image_region_curve(adapter, out, curve_px, cfg)
            base[name] = {"image": Image.fromarray(out),
                          "metrics": score_image(original, out, run.mask_img, before, b_after, ts, cfg, reference),
                          "curve_after": b_after}
    metrics["seconds"] = time.perf_counter() - run.started
    return EditResult(original=Image.fromarray(original), edited=Image.fromarray(edited),
                      mask_model=run.M.float().cpu().numpy(), timesteps=ts, curve_before=before, curve_after=after,
                      reference_curve=reference, metrics=metrics, losses=run.losses, iterations_done=run.done,
                      cancelled=run.cancelled, region_model=run.region.float().cpu().numpy(), baselines=base,
                      config=cfg.as_dict() | {"region_image_fraction": float(region_img.mean()),
                                              "curve_pixels_yx": [list(p) for p in curve_px]},
                      seconds=metrics["seconds"], x_T=run.best_x[0].cpu(), x_T_original=traj.x_T.cpu())


def _region_image(region: torch.Tensor, adapter: ModelAdapter, mask_img: np.ndarray) -> np.ndarray:
    """The edited region at the model's image size (nearest upsampling of the model-grid region)."""
    s = adapter.scale
    r = (region > 0.5).cpu().numpy()
    return np.kron(r, np.ones((s, s), bool)) if s > 1 else r

