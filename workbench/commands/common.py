"""Arguments and helpers shared by several subcommands."""
from __future__ import annotations

import argparse
import sys
from typing import Callable

import torch

from ..errors import WorkbenchError
from ..rates import RATE_DEFINITIONS, RateSpec

__all__ = ["add_model_args", "add_rate_args", "rate_spec_from", "parse_xy", "progress_bar", "device_from", "per_image_bar"]


def add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=None, help="model folder or HF-cache repo id (default: the shipped model)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    p.add_argument("--dtype", default="float32", choices=("float32", "float16", "bfloat16"))
    p.add_argument("--steps", type=int, default=50, help="DDIM steps (default 50)")


def add_rate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--rate", default="h", choices=RATE_DEFINITIONS, help="rate definition (default h, Eq. 10)")
    p.add_argument("--channel", type=int, default=None, help="one model channel instead of the channel mean")
    p.add_argument("--k", type=int, default=32, help="tangent dimension for --rate projected")


def rate_spec_from(args) -> RateSpec:
    return RateSpec(args.rate, k=args.k, channel=args.channel)


def device_from(args) -> tuple[str, torch.dtype]:
    dev = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if dev.startswith("cuda") and not torch.cuda.is_available():
        raise WorkbenchError(f"--device {dev} asked for, but no CUDA device is available: use --device cpu")
    return dev, getattr(torch, args.dtype)


def parse_xy(text: str, what: str = "--pixel") -> tuple[int, int]:
    """'X,Y' -> (x, y) integers."""
    try:
        x, y = (int(v) for v in text.split(","))
    except ValueError:
        raise WorkbenchError(f"{what} {text!r} is not X,Y: write two integers such as 12,30") from None
    return x, y


def progress_bar(total: int, desc: str) -> Callable[[int, int], None]:
    """A tqdm bar on stderr driven by `(done, total)` callbacks."""
    from tqdm import tqdm

    bar = tqdm(total=total, desc=desc, file=sys.stderr, leave=False, dynamic_ncols=True)

    def update(done: int, _total: int) -> None:
        bar.n = done
        bar.refresh()
        if done >= bar.total:
            bar.close()

    return update


def per_image_bar(steps: int) -> Callable[[int, int], None]:
    """A tqdm bar over one image's timesteps, restarted for every image."""
    state = {"bar": None}

    def update(done: int, total: int) -> None:
        if state["bar"] is None or done == 1:
            state["bar"] = progress_bar(total, "timesteps")
        state["bar"](done, total)

    return update
