"""Arguments and helpers shared by several subcommands."""
from __future__ import annotations

import argparse
import sys

import torch
from tqdm import tqdm

from .. import validate
from ..adapters import load_model
from ..ddim import INVERSION_FIXED_POINT
from ..errors import WorkbenchError
from ..memory import given_budget
from ..outputs import OutputOptions
from ..precision import DTYPE_CHOICES, resolve_model
from ..progress import Progress, ProgressFn, by_phase
from ..rates import RATE_DEFINITIONS, RateSpec
from ..splits import DEFAULT_HELD_OUT

__all__ = ["model_from", "add_model_args", "add_rate_args", "add_overwrite_arg", "output_from", "rate_spec_from", "parse_xy", "progress_bar",
           "device_from", "per_image_bar", "batch_bars", "stage_bars", "check_against_model", "add_held_out_arg"]


def add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=None, help="model folder or HF-cache repo id (default: the shipped model)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    p.add_argument("--dtype", default="auto", choices=DTYPE_CHOICES,
                   help="compute dtype (default auto: bfloat16 only where a one-off measurement of the rate "
                        "function shows it faster for this model on this machine, else float32; cached per "
                        "machine and model; see workbench doctor)")
    p.add_argument("--verbose", "-v", action="store_true", help="say which dtype auto chose and why")
    p.add_argument("--steps", type=int, default=50, help="DDIM steps (default 50)")
    p.add_argument("--prompt", default="", help="text prompt of text-conditioned models (SD, SDXL, PixArt, SD3; "
                   "a class index for DiT); default: the empty prompt, the paper's setting")
    p.add_argument("--negative-prompt", default="", help="negative prompt (used with --guidance-scale != 1)")
    p.add_argument("--guidance-scale", type=float, default=1.0,
                   help="classifier-free guidance in generation, inversion and rates (default 1: no guidance)")
    p.add_argument("--max-memory", default=None, metavar="SIZE", type=_memory_size,
                   help="peak memory to stay under (CPU: the process's RSS; CUDA: device memory), e.g. 6GB: "
                        "probes, timesteps and tangents per pass are sized to fit, slower rather than larger "
                        "(default: automatic from the free memory)")


def _memory_size(text: str) -> str:
    try:
        validate.check_memory_size(text)  # parse and range (a number too large for a float included)
    except WorkbenchError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def model_from(args, device: str, dtype):
    """The model the command's arguments name (--model, the prompt arguments), loaded offline, with the
    memory budget of --max-memory as its `memory_budget` (none given: automatic)."""
    def load(dt):
        return load_model(args.model, device=device, dtype=dt, prompt=args.prompt,
                          negative_prompt=args.negative_prompt, guidance_scale=args.guidance_scale,
                          memory_budget=given_budget(getattr(args, "max_memory", None)))

    requested = dtype if dtype == "auto" else str(dtype).removeprefix("torch.")
    adapter, measured, note = resolve_model(load, requested, warn=lambda line: print(
        f"workbench {getattr(args, 'command', '')}: warning: {line}", file=sys.stderr))
    if getattr(args, "verbose", False):
        print(f"# dtype {str(adapter.dtype).removeprefix('torch.')} ({note})"
              + (f"; measured {measured.describe()}" if measured is not None else ""), file=sys.stderr)
    return adapter


def add_rate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--rate", default="h", choices=RATE_DEFINITIONS, help="rate definition (default h, Eq. 10)")
    p.add_argument("--channel", type=int, default=None, help="one model channel instead of the channel mean")
    p.add_argument("--k", type=int, default=32, help="tangent dimension for --rate projected")


def add_fixed_point_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--fixed-point", type=int, default=INVERSION_FIXED_POINT, metavar="N",
                   help=f"fixed-point iterations refining each DDIM inversion step, one network evaluation each "
                        f"(default {INVERSION_FIXED_POINT}; 0 = plain DDIM inversion, that of cubes written "
                        f"before this flag existed; see docs/model.md)")


def add_overwrite_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--overwrite", action="store_true",
                   help="write into an output that is not an earlier output of this command (only the files this "
                        "command writes are replaced; nothing else is touched)")


def output_from(args, default: str | None = None, *, dest: str = "out", flag: str = "--out") -> OutputOptions | None:
    """The command's output flags (`--out`, or the flag `flag` stored in `dest`, and `--overwrite`) as one
    `OutputOptions`; `default` when the flag was not given or empty; None when neither is (an empty flag
    without a default stays empty: `OutputDir` and `OutputFile` refuse it with one line)."""
    path = getattr(args, dest, None)
    if not path and default is not None:
        path = default
    if path is None:
        return None
    return OutputOptions(path, overwrite=bool(getattr(args, "overwrite", False)), flag=flag)


def rate_spec_from(args) -> RateSpec:
    return RateSpec(args.rate, k=args.k, channel=args.channel)


def device_from(args) -> tuple[str, torch.dtype | str]:
    """(device, dtype) of the arguments, checked by `workbench.validate` (one-line errors); the dtype
    is "auto" (decided by `model_from`, workbench.precision) or a torch dtype."""
    dtype = getattr(args, "dtype", "float32")
    return validate.check_device(args.device), dtype if dtype == "auto" else validate.check_dtype(dtype)


def check_against_model(adapter, *, steps: int | None = None, channel: int | None = None, k: int | None = None,
                        min_steps: int = 1) -> None:
    """The checks that need the loaded model: steps <= its training timesteps, channel < its channels,
    k <= its input elements."""
    if steps is not None:
        validate.check_steps(steps, num_train_timesteps=adapter.num_train_timesteps, minimum=min_steps)
    if channel is not None:
        validate.check_channel(channel, channels=adapter.model_shape[0])
    if k is not None:
        C, H, W = adapter.model_shape
        validate.check_k(k, n=C * H * W)


def parse_xy(text: str, what: str = "--pixel") -> tuple[int, int]:
    """'X,Y' -> (x, y) integers."""
    try:
        x, y = (int(v) for v in text.split(","))
    except ValueError:
        raise WorkbenchError(f"{what} {text!r} is not X,Y: write two integers such as 12,30") from None
    return x, y


def progress_bar(total: int, desc: str) -> ProgressFn:
    """A tqdm bar of `total` on stderr, moved to each `Progress` event's `done` (of any phase)."""
    bar = tqdm(total=total, desc=desc, file=sys.stderr, leave=False, dynamic_ncols=True)

    def update(p: Progress) -> None:
        bar.n = p.done
        bar.refresh()
        if p.done >= bar.total:
            bar.close()

    return update


def per_image_bar(steps: int) -> ProgressFn:
    """A tqdm bar over one image's work (`Progress` of phase "cube": probe x timestep pairs,
    `cache.build.probe_blocks`), restarted for every image: a count that does not grow is the next
    image's."""
    state = {"bar": None, "done": None}

    def update(p: Progress) -> None:
        if state["bar"] is None or state["done"] is None or p.done <= state["done"]:
            state["bar"] = progress_bar(p.total, "probe-timesteps")
        state["done"] = p.done
        state["bar"](p)

    return update


def batch_bars(images: int, steps: int) -> ProgressFn:
    """The bars of a batch of cubes (`cache.batch.build_batch`): one over its `images` ("cubes") and
    one over the work of the image being computed (`per_image_bar`)."""
    return by_phase(images=progress_bar(images, "cubes"), cube=per_image_bar(steps))


def stage_bars() -> ProgressFn:
    """One tqdm bar per `Progress` phase on stderr (the stages of an experiment), each closed when done."""
    bars = {}

    def update(p: Progress) -> None:
        bar = bars.get(p.phase)
        if bar is None:
            bar = bars[p.phase] = tqdm(total=p.total, desc=p.phase, file=sys.stderr, leave=False, dynamic_ncols=True)
        bar.n = p.done
        bar.refresh()
        if p.total is not None and p.done >= p.total:
            bar.close()

    return update


class _DeprecatedAlias(argparse.Action):
    """A renamed flag's old spelling: stores its value like the new one, with a one-line note on stderr."""

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"{parser.prog}: note: {option_string} is deprecated: use --held-out", file=sys.stderr)
        setattr(namespace, self.dest, values)


def add_held_out_arg(p: argparse.ArgumentParser, help: str | None = None) -> None:
    """`--held-out N` (dest `held_out`, default 50): the held-out split of `workbench.splits`; the old
    spelling `--holdout` still works, hidden from --help."""
    p.add_argument("--held-out", dest="held_out", type=int, default=DEFAULT_HELD_OUT,
                   help=help or f"size of the held-out split: the last N images by file name (default {DEFAULT_HELD_OUT})")
    p.add_argument("--holdout", dest="held_out", type=int, default=argparse.SUPPRESS, action=_DeprecatedAlias,
                   help=argparse.SUPPRESS)
