"""workbench.adapters.contract: every prediction type converted to eps by its formula, timesteps batched,
fingerprints of content only."""
from __future__ import annotations

import pytest
import torch

from workbench.adapters.contract import batch_timesteps, module_fingerprint, tensor_fingerprint, to_epsilon


def test_each_prediction_type_gives_back_the_noise():
    g = torch.Generator().manual_seed(0)
    x0, eps = torch.randn(2, 3, 4, 4, generator=g), torch.randn(2, 3, 4, 4, generator=g)
    a = torch.tensor([0.8, 0.3]).view(2, 1, 1, 1)
    s = (1 - a ** 2).sqrt()  # variance preserving: a^2 + s^2 = 1
    x = a * x0 + s * eps
    torch.testing.assert_close(to_epsilon(eps, x, a, s, "epsilon"), eps)
    torch.testing.assert_close(to_epsilon(a * eps - s * x0, x, a, s, "v_prediction"), eps)
    torch.testing.assert_close(to_epsilon(x0, x, a, s, "sample"), eps)
    sigma = torch.tensor([0.25, 0.9]).view(2, 1, 1, 1)  # rectified flow: x = (1 - sigma) x0 + sigma eps
    xf = (1 - sigma) * x0 + sigma * eps
    torch.testing.assert_close(to_epsilon(eps - x0, xf, 1 - sigma, sigma, "flow"), eps)
    with pytest.raises(ValueError, match="unknown prediction type 'score'"):
        to_epsilon(eps, x, a, s, "score")


def test_batch_timesteps_and_fingerprints():
    assert batch_timesteps(7, 3, "cpu").tolist() == [7, 7, 7]
    assert batch_timesteps(torch.tensor([1, 2]), 2, "cpu").tolist() == [1, 2]
    a, b = torch.zeros(2, 3), torch.ones(4)
    fp = tensor_fingerprint({"a": a, "b": b})
    assert len(fp) == 16 and fp == tensor_fingerprint({"b": b, "a": a})
    assert fp != tensor_fingerprint({"a": a, "b": b}, extra="prompt") != tensor_fingerprint({"a": a, "b": b + 1e-3})
    lin = torch.nn.Linear(3, 2)
    cfg = {"in": 3, "_name_or_path": "/somewhere"}
    assert module_fingerprint(lin, cfg) == module_fingerprint(lin, {"in": 3, "_name_or_path": "/elsewhere"})
    assert module_fingerprint(lin, cfg) != module_fingerprint(lin, {"in": 4})
