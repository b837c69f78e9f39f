"""cache.keys: one content key per cube, whoever asks (commands, dashboard catalog, experiments)."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch
from PIL import Image

from cache.keys import cube_attrs, cube_key, image_bytes, model_identity
from cache.params import CubeParams
from cache.store import CubeStore
from workbench.adapters import load_model
from workbench.cli import main

STEPS, K = 4, 2


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    path = tmp_path_factory.mktemp("img") / "pic.png"
    rng = np.random.default_rng(3)
    Image.fromarray(rng.integers(0, 255, (20, 28, 3), dtype=np.uint8)).save(path)
    return path


def _keys(store) -> list[str]:
    return sorted(CubeStore(store, create=False).keys())


# (model fixture, dtype, prompt): every kind of model identity a key can carry
CASES = [("tiny_pixel_dir", "float32", ""), ("tiny_pixel_dir", "bfloat16", ""), ("tiny_pixel_dir", "float16", ""),
         ("tiny_sd_dir", "float32", "a red cat")]


@pytest.mark.parametrize("fixture,dtype,prompt", CASES)
def test_run_cubes_query_catalog_and_experiment_agree_on_the_key(request, tmp_path, image, capsys, fixture, dtype,
                                                                  prompt):
    from analysis.cubes import cubes_for
    from dashboards.catalog import CubeCatalog

    model = request.getfixturevalue(fixture)
    common = ["--model", str(model), "--dtype", dtype, "--steps", str(STEPS), "--K", str(K), "--device", "cpu",
              *(["--prompt", prompt] if prompt else [])]
    adapter = load_model(model, device="cpu", dtype=getattr(torch, dtype), prompt=prompt)
    params = CubeParams(K=K, steps=STEPS)
    want = cube_key(image_bytes(image), model_identity(adapter), params)
    assert ("@" in model_identity(adapter)) == (dtype != "float32")
    assert ("+prompt:" in model_identity(adapter)) == bool(prompt)

    assert main(["cubes", str(image), "--store", str(tmp_path / "c"), *common]) == 0
    assert _keys(tmp_path / "c") == [want]
    # run computes its cube under the same key (it used to plan with the bare weight fingerprint and
    # then refuse its own worker: "the worker's model is ...@bfloat16, not the batch's")
    run = ["run", str(image), "--store", str(tmp_path / "r"), "--out", str(tmp_path / "o"), "--window", "2", *common]
    assert main(run) == 0, capsys.readouterr().err
    assert _keys(tmp_path / "r") == [want]
    assert "(1 computed" in capsys.readouterr().out
    assert main([*run, "--overwrite"]) == 0  # a rerun finds its cube: nothing computed
    assert "(0 computed" in capsys.readouterr().out and _keys(tmp_path / "r") == [want]

    capsys.readouterr()
    assert main(["query", str(tmp_path / "r"), "--image", "pic", "--t", "0", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["key"] == want
    catalog = CubeCatalog(tmp_path / "r", create=False)
    assert catalog.add_image(adapter, image, params) == want  # found, not recomputed
    assert _keys(tmp_path / "r") == [want]
    cubes = cubes_for([image], adapter, store=tmp_path / "r", params=params)
    assert cubes[0].attrs["key"] == want and _keys(tmp_path / "r") == [want]


def test_the_key_changes_with_dtype_prompt_and_params(tiny_sd_dir, image):
    raw = image_bytes(image)
    plain = load_model(tiny_sd_dir, device="cpu")
    prompted = load_model(tiny_sd_dir, device="cpu", prompt="a red cat")
    half = load_model(tiny_sd_dir, device="cpu", dtype=torch.bfloat16)
    keys = {cube_key(raw, model_identity(a), p) for a in (plain, prompted, half)
            for p in (CubeParams(K=2), CubeParams(K=3), CubeParams(K=2, definition="eps"))}
    assert len(keys) == 9 and all(re.fullmatch("[0-9a-f]{32}", k) for k in keys)
    assert model_identity(plain) == plain.fingerprint()  # float32, empty prompt: the bare weight fingerprint


def test_cube_attrs_carry_the_key_and_the_model(tiny_sd_dir, image):
    adapter = load_model(tiny_sd_dir, device="cpu", dtype=torch.bfloat16, prompt="a red cat")
    params = CubeParams(K=2, steps=STEPS)
    raw = image_bytes(image)
    attrs = cube_attrs(adapter, params, raw=raw, source=image, source_size=(20, 28))
    assert attrs["key"] == cube_key(raw, model_identity(adapter), params)
    assert attrs["dtype"] == "bfloat16" and attrs["prompt"] == "a red cat" and attrs["complete"] == 1
    assert attrs["model_fingerprint"] == adapter.fingerprint() and attrs["K"] == 2
    assert attrs["source_image"] == str(image.resolve()) and attrs["source_size"] == [20, 28]
