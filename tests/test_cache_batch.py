"""Batch precompute: layouts, resume after kill -9, a dask cluster batch, the cubes/query commands."""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cache import slots
from cache.params import CubeParams
from cache.sources import find_images
from cache.store import CubeStore
from workbench.cli import main as cli
from workbench.errors import WorkbenchError

ROOT = Path(__file__).resolve().parents[1]
PARAMS = CubeParams(K=4, steps=6, seed=3)
KILL_PARAMS = CubeParams(K=4, steps=10, seed=3)  # slower slots, so that the kill lands mid-run


def make_images(folder: Path, n: int, seed: int = 0) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        p = folder / f"img{i:02d}.png"
        Image.fromarray(rng.integers(0, 256, (20 + i, 24, 3), dtype=np.uint8)).save(p)
        paths.append(p)
    return paths


@pytest.fixture(scope="module")
def tiny_adapter_pixel(tiny_pixel_dir):
    from workbench.adapters import load_model

    return load_model(tiny_pixel_dir, device="cpu")


def test_layouts_are_detected(tmp_path):
    plain = tmp_path / "plain"
    make_images(plain, 2)
    Image.new("L", (4, 4)).save(plain / "img00_mask.png")
    src = find_images(plain)
    assert src.layout == "plain folder" and len(src.images) == 2 and src.skipped == 1
    osie = tmp_path / "osie"
    make_images(osie / "data" / "stimuli", 3)
    assert find_images(osie).layout == "OSIE" and len(find_images(osie, limit=2).images) == 2
    cat = tmp_path / "cat"
    make_images(cat / "Stimuli" / "Action", 2)
    make_images(cat / "Stimuli" / "Art", 1, seed=1)
    src = find_images(cat)
    assert src.layout == "CAT2000/MIT" and len(src.images) == 3 and "3 images" in src.describe()
    (tmp_path / "empty").mkdir()
    with pytest.raises(WorkbenchError, match="no images"):
        find_images(tmp_path / "empty")
    with pytest.raises(WorkbenchError, match="no such"):
        find_images(tmp_path / "absent")


def test_batch_skips_what_exists_and_dedupes(tmp_path, tiny_adapter_pixel):
    imgs = make_images(tmp_path / "imgs", 3)
    dup = tmp_path / "imgs" / "copy.png"
    dup.write_bytes(imgs[0].read_bytes())
    store = CubeStore(tmp_path / "st")
    one = store.get_or_compute(tiny_adapter_pixel, imgs[1], PARAMS)
    seen = []
    keys = store.build([*imgs, dup], tiny_adapter_pixel, PARAMS,
                       progress=lambda p: p.phase == "images" and seen.append((p.done, p.total)))
    assert len(keys) == 3 and keys[1] == one.attrs["key"] and sorted(store.keys()) == sorted(keys)
    assert seen[0] == (1, 3) and seen[-1] == (3, 3)  # one cube was already there
    np.testing.assert_array_equal(store.open(keys[1]).rate.values, one.rate.values)
    group = [p for p in store.groups_dir.glob("b-*.zarr")]
    assert len(group) == 1 and len(slots.read_attrs(group[0])["slots"]) == 2  # slots only for the missing two
    assert store.build(imgs, tiny_adapter_pixel, PARAMS) == keys[:3]


def _run_cli(*args, **kw):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "2"}
    return subprocess.Popen([sys.executable, "-m", "workbench.cli", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


@pytest.mark.slow
def test_resume_after_kill9_matches_uninterrupted_run(tmp_path, tiny_pixel_dir, tiny_adapter_pixel):
    n = 8
    imgs = make_images(tmp_path / "imgs", n, seed=7)
    store_dir = tmp_path / "killed"
    args = ["cubes", str(tmp_path / "imgs"), "--store", str(store_dir), "--model", str(tiny_pixel_dir),
            "--K", str(KILL_PARAMS.K), "--steps", str(KILL_PARAMS.steps), "--seed", str(KILL_PARAMS.seed),
            "--device", "cpu"]
    proc = _run_cli(*args)
    deadline = time.time() + 300
    done, group_seen = 0, None
    while time.time() < deadline and proc.poll() is None:
        groups = list((store_dir / "groups").glob("b-*.zarr")) if store_dir.exists() else []
        if groups and group_seen is None:
            group_seen = time.time()  # the group is created just before the first slot is computed
        done = len(list((groups[0] / "done" / "c").glob("*"))) if groups and (groups[0] / "done" / "c").exists() else 0
        if done >= 1:
            break
        time.sleep(0.02)
    assert proc.poll() is None, f"the writer ended before it could be killed: {proc.communicate()[1][-500:]}"
    slot_seconds = time.time() - (group_seen or time.time())
    # a random point after at least one slot is done, possibly mid-write, well before the batch can end (the
    # first slot's time includes the memory-budget probe, so later slots are faster than `slot_seconds`)
    time.sleep(random.Random().uniform(0.0, 0.5 * slot_seconds))
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    group = next((store_dir / "groups").glob("b-*.zarr"))
    flags = slots.read_done(group)
    assert flags.sum() >= 1 and flags.sum() < n, flags  # killed mid-batch: some slots done, not all
    assert len(CubeStore(store_dir).keys()) == flags.sum()  # only finished slots are served
    rerun = _run_cli(*args)
    out, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err[-800:]
    assert f"{flags.sum()} already there" in out and f"{n - flags.sum()} computed" in out
    assert not list((store_dir / "groups").glob("*.partial*"))
    # the same batch, uninterrupted, in this process
    ref = CubeStore(tmp_path / "ref")
    ref_keys = ref.build(imgs, tiny_adapter_pixel, KILL_PARAMS)
    killed = CubeStore(store_dir)
    assert sorted(killed.keys()) == sorted(ref_keys)
    for k in ref_keys:
        a, b = killed.open(k), ref.open(k)
        # probes per autodiff pass follow each process's memory budget, and a batched VJP's float32
        # rounding depends on the batch size: equal to float32 rounding, not bit for bit
        np.testing.assert_allclose(a.rate.values, b.rate.values, rtol=1e-5, atol=1e-7)
        np.testing.assert_array_equal(a.image.values, b.image.values)
        assert a.attrs["source_size"] == b.attrs["source_size"]


@pytest.mark.slow
def test_dask_cluster_batch(tmp_path, tiny_pixel_dir, tiny_adapter_pixel):
    from distributed import LocalCluster

    imgs = make_images(tmp_path / "imgs", 3, seed=11)
    store = CubeStore(tmp_path / "st")
    seen = []
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        keys = store.build(imgs, tiny_adapter_pixel, PARAMS, scheduler=cluster.scheduler_address,
                           model=str(tiny_pixel_dir), progress=lambda p: seen.append(p.done))
    assert seen[-1] == 3 and sorted(store.keys()) == sorted(keys)
    ref = CubeStore(tmp_path / "ref")
    for img, k in zip(imgs, keys):
        local = ref.get_or_compute(tiny_adapter_pixel, img, PARAMS)
        assert local.attrs["key"] == k
        np.testing.assert_allclose(store.open(k).rate.values, local.rate.values, rtol=1e-5, atol=1e-7)
    with pytest.raises(WorkbenchError, match="not a dask address"):
        store.build(make_images(tmp_path / "more", 1, seed=99), tiny_adapter_pixel, PARAMS, scheduler="localhost:1")


def test_cubes_and_query_commands(tmp_path, tiny_pixel_dir, capsys):
    make_images(tmp_path / "imgs", 2, seed=5)
    st = str(tmp_path / "st")
    assert cli(["cubes", str(tmp_path / "imgs"), "--store", st, "--model", str(tiny_pixel_dir), "--K", "4",
                "--steps", "6", "--device", "cpu"]) == 0
    assert "2 cubes in" in capsys.readouterr().out
    store = CubeStore(st)
    ds = store.open(store.find("img01"))
    # pixel in source coordinates (24x21 image -> 16x16 grid)
    assert cli(["query", st, "--image", "img01", "--pixel", "23,20", "--format", "json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["model_pixel"] == [15, 15]
    np.testing.assert_allclose(got["rate"], ds.rate.values[:, 15, 15], rtol=1e-6)
    assert got["timestep"] == ds.timestep.values.tolist()
    assert cli(["query", st, "--image", "img01", "--t", str(int(ds.timestep[2])), "--format", "csv"]) == 0
    rows = [r for r in capsys.readouterr().out.splitlines() if not r.startswith("#")]
    np.testing.assert_allclose(np.array([[float(v) for v in r.split(",")] for r in rows]), ds.rate.values[2], rtol=1e-6)
    mask = np.zeros((21, 24), np.uint8)
    mask[:, :12] = 255  # left half of the image = left half of the grid
    Image.fromarray(mask).save(tmp_path / "mask.png")
    assert cli(["query", st, "--image", "img01", "--region", str(tmp_path / "mask.png"), "--format", "json"]) == 0
    got = json.loads(capsys.readouterr().out)
    np.testing.assert_allclose(got["rate"], ds.rate.values[:, :, :8].mean((1, 2)), rtol=1e-5)
    for extra in (["--pixel", "3,4"], ["--t", "100"]):
        out = tmp_path / f"q{extra[0]}.png"
        assert cli(["query", st, "--image", "img00", *extra, "--out", str(out)]) == 0
        assert Image.open(out).size[0] >= 256
    assert cli(["query", st, "--list", "--format", "json"]) == 0
    assert {r["name"] for r in json.loads(capsys.readouterr().out)} == {"img00", "img01"}
    capsys.readouterr()
    # user mistakes: one line on stderr, exit 2
    for bad in (["query", st, "--image", "nope", "--t", "1"], ["query", str(tmp_path / "imgs"), "--list"],
                ["query", st, "--image", "img01", "--pixel", "99,1"],
                ["cubes", str(tmp_path / "nothing"), "--store", st, "--model", str(tiny_pixel_dir)]):
        assert cli(bad) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("workbench ") and ": error: " in err and "\n" not in err and "Traceback" not in err
