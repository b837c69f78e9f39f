"""workbench.adapters.loading: the family picked from the folder's layout, repo ids from the local cache only,
fingerprints of the weights, one-line errors for a missing model."""
from __future__ import annotations

import pytest
import torch

from workbench.adapters import PixelAdapter, StableDiffusionAdapter, load_model
from workbench.errors import WorkbenchError


def test_loaders_pick_the_family(tiny_pixel_dir, tiny_sd_dir):
    assert isinstance(load_model(tiny_pixel_dir, device="cpu"), PixelAdapter)
    sd = load_model(tiny_sd_dir, device="cpu")
    assert isinstance(sd, StableDiffusionAdapter)
    assert sd.scale == 2 and sd.image_size == (16, 16) and sd.model_shape == (4, 8, 8)
    # the empty-prompt embedding came from the saved tokenizer + text encoder
    assert sd.prompt_embedding.shape == (1, 16, 32)


def test_missing_model_dir_is_a_one_line_error(tmp_path):
    with pytest.raises(WorkbenchError, match="no model at"):
        load_model(tmp_path / "nope", device="cpu")
    (tmp_path / "empty").mkdir()
    with pytest.raises(WorkbenchError, match="unet/config.json"):
        load_model(tmp_path / "empty", device="cpu")


def test_fingerprint_depends_on_the_weights_not_the_path(tmp_path, tiny_pixel_dir):
    import shutil

    copy = shutil.copytree(tiny_pixel_dir, tmp_path / "elsewhere" / "same-model")
    a, b = load_model(tiny_pixel_dir, device="cpu"), load_model(copy, device="cpu")
    assert a.fingerprint() == b.fingerprint()
    with torch.no_grad():
        b.unet.conv_out.bias.add_(1e-3)
    del b._fp
    assert a.fingerprint() != b.fingerprint()


def test_repo_id_resolves_from_the_local_hf_cache_only(tmp_path, tiny_pixel_dir, monkeypatch):
    import shutil

    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(WorkbenchError, match="local Hugging Face cache"):
        load_model("someone/tiny-pixel", device="cpu")
    repo = tmp_path / "hub" / "models--someone--tiny-pixel"
    shutil.copytree(tiny_pixel_dir, repo / "snapshots" / "abc123")
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("abc123")
    assert isinstance(load_model("someone/tiny-pixel", device="cpu"), PixelAdapter)
