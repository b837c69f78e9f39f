"""Shared fixtures: tiny models saved in the real diffusers layouts (no downloads)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
# `--dtype auto` measures float32 against bfloat16 per machine and model; the suite pins float32 so that
# tiny models (whose timings are noise) compute the numbers the tests compare with (tests/test_precision.py
# exercises the choice with injected measurements)
os.environ.setdefault("WORKBENCH_AUTO_DTYPE", "float32")
# `workbench cubes` on a folder runs one process per core by default; the suite computes in-process
os.environ.setdefault("WORKBENCH_WORKERS", "1")
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def tiny_pixel_dir(tmp_path_factory) -> Path:
    from workbench.tiny import save_tiny_pixel_model

    return save_tiny_pixel_model(tmp_path_factory.mktemp("tinypix"))


@pytest.fixture(scope="session")
def tiny_sd_dir(tmp_path_factory) -> Path:
    from workbench.tiny import save_tiny_sd_model

    os.environ["WORKBENCH_CACHE"] = str(tmp_path_factory.mktemp("wbcache"))
    return save_tiny_sd_model(tmp_path_factory.mktemp("tinysd"))


@pytest.fixture(scope="session", params=["pixel", "sd"])
def tiny_adapter(request, tiny_pixel_dir, tiny_sd_dir):
    from workbench.adapters import load_model

    return load_model(tiny_pixel_dir if request.param == "pixel" else tiny_sd_dir, device="cpu")


@pytest.fixture()
def store(tmp_path):
    """A store of two synthetic cubes ("alpha" 24x20, "beta" 16x16, 30 timesteps) for the dashboards' tests."""
    from cache.store import CubeStore  # imported here: only the dashboards' tests need it
    from devtools.synthetic import synthetic_cube

    st = CubeStore(tmp_path / "store")
    st.put(synthetic_cube(24, 20, 30, name="alpha", seed=1))
    st.put(synthetic_cube(16, 16, 30, name="beta", seed=2))
    return st


@pytest.fixture()
def ctx(store):
    """A dashboards AppContext over `store` (Panel is heavy: imported only by the tests that use it)."""
    from dashboards.context import AppContext

    return AppContext.from_paths(store.path, device="cpu")
