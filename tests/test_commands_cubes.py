"""`workbench cubes` (workbench.commands.cubes): the dtype choice it records, its workers, what --refine-to says."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from workbench import precision
from workbench.cli import main as cli
from workbench.precision import Measurement

from test_precision import no_forced  # noqa: F401  (a fixture: no forced dtype, a private cache folder)

ARGS = ["--steps", "4", "--device", "cpu"]


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


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    d = tmp_path_factory.mktemp("refine") / "images"
    d.mkdir()
    rng = np.random.default_rng(3)
    for i in range(2):
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(d / f"r{i}.png")
    return d


def test_refine_to_reports_refined_and_new_cubes(images, tiny_pixel_dir, tmp_path, capsys):
    store = tmp_path / "store"
    base = ["cubes", str(images), "--store", str(store), "--model", str(tiny_pixel_dir), *ARGS]
    assert cli([*base, "--K", "2", "--refine-to", "2", "--refinable"]) == 0  # nothing stored yet: nothing to refine
    out = capsys.readouterr().out
    assert "no cube to refine: computed 2 new cubes" in out, out
    assert cli([*base, "--K", "2", "--refine-to", "4"]) == 0
    out = capsys.readouterr().out
    assert "refined 2 cubes from K=2 to K=4" in out, out
    capsys.readouterr()
    assert cli([*base, "--K", "2", "--refine-to", "1"]) == 2  # below every stored K: refused, nothing computed
    assert "below the K=2 probes" in capsys.readouterr().err
    bare = ["cubes", str(images), "--store", str(tmp_path / "bare"), "--model", str(tiny_pixel_dir), *ARGS]
    assert cli([*bare, "--K", "2"]) == 0  # without --refinable: no probe statistics to add to
    capsys.readouterr()
    assert cli([*bare, "--K", "2", "--refine-to", "4"]) == 0
    out = capsys.readouterr().out
    assert "no cube to refine: computed 2 new cubes (2 stored cubes with fewer probes keep no probe" in out, out
