"""`workbench cubes` (workbench.commands.cubes): the dtype choice it records, its workers."""
from __future__ import annotations

import pytest

from workbench import precision
from workbench.precision import Measurement

from test_precision import no_forced  # noqa: F401  (a fixture: no forced dtype, a private cache folder)


def test_cubes_command_uses_the_cached_choice_and_records_it(no_forced, tiny_pixel_dir, tmp_path, capsys):
    """`workbench cubes` with the default --dtype auto: a cached measurement saying bfloat16 wins gives a
    bfloat16 cube whose attributes say why; an explicit float32 keeps its own key."""
    from PIL import Image
    import numpy as np

    from cache.store import CubeStore
    from workbench.adapters import load_model
    from workbench.cli import main

    ad = load_model(tiny_pixel_dir, device="cpu")
    info = precision.machine_info("cpu")
    precision.save_measurement(Measurement(seconds={"float32": 1.0, "bfloat16": 0.5}, machine=precision.machine_key(info),
                                           model=str(ad.fingerprint()), cpu="test cpu", when="then"))
    img = tmp_path / "im.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(img)
    base = ["cubes", str(img), "--model", str(tiny_pixel_dir), "--device", "cpu", "--K", "2", "--steps", "2"]
    assert main(base + ["--store", str(tmp_path / "a"), "--verbose"]) == 0
    err = capsys.readouterr().err
    assert "# dtype bfloat16 (auto: bfloat16" in err and "test cpu" in err
    st = CubeStore(tmp_path / "a", create=False)
    ds = st.open(st.keys()[0])
    assert ds.attrs["dtype"] == "bfloat16" and ds.attrs["dtype_choice"].startswith("auto: bfloat16")
    assert main(base + ["--store", str(tmp_path / "b"), "--dtype", "float32"]) == 0
    st2 = CubeStore(tmp_path / "b", create=False)
    ds2 = st2.open(st2.keys()[0])
    assert ds2.attrs["dtype"] == "float32" and ds2.attrs["dtype_choice"] == "explicit"
    assert st2.keys()[0] != st.keys()[0]


def test_default_workers_for_folders():
    """`workbench cubes` on a folder: one single-thread process per core on the CPU (measured faster on 2
    cores), this process for one image, a GPU, a prompt; $WORKBENCH_WORKERS overrides."""
    from workbench.commands.cubes import default_workers

    assert default_workers("cpu", 50, cpus=2, env={}) == 2
    assert default_workers("cpu", 1, cpus=2, env={}) == 1
    assert default_workers("cpu", 3, cpus=8, env={}) == 3
    assert default_workers("cuda", 50, cpus=2, env={}) == 1
    assert default_workers("cpu", 50, cpus=2, env={}, default_prompt=False) == 1
    assert default_workers("cpu", 50, cpus=2, env={"WORKBENCH_WORKERS": "1"}) == 1
    with pytest.raises(precision.WorkbenchError, match="WORKBENCH_WORKERS"):
        default_workers("cpu", 50, env={"WORKBENCH_WORKERS": "two"})


def test_cubes_workers_flag_bad(capsys, tmp_path):
    from workbench.cli import main

    assert main(["cubes", str(tmp_path), "--store", str(tmp_path / "s"), "--workers", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--workers must be at least 1" in err[0]
