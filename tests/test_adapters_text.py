"""workbench.adapters.text: a prompt's conditioning is computed once, then read back from the cache."""
from __future__ import annotations

import torch

from workbench.adapters.text import cached_condition


def test_cached_condition_computes_once_per_key(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_CACHE", str(tmp_path))
    calls = []

    def compute():
        calls.append(1)
        return {"encoder_hidden_states": torch.arange(6, dtype=torch.float16).reshape(1, 2, 3)}

    first = cached_condition("model|a cat", compute)
    again = cached_condition("model|a cat", compute)
    assert calls == [1] and first["encoder_hidden_states"].dtype == torch.float32
    torch.testing.assert_close(again["encoder_hidden_states"], torch.arange(6.0).reshape(1, 2, 3))
    cached_condition("model|a dog", compute)
    assert calls == [1, 1] and len(list((tmp_path / "prompts").glob("cond-*.safetensors"))) == 2
    assert not list((tmp_path / "prompts").glob("*.partial"))
