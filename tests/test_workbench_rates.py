"""workbench.rates: the rate definitions against dense Jacobians of both tiny families."""
from __future__ import annotations

import pytest
import torch

from workbench.adapters import load_model
from workbench.ddim import make_schedule, step_coefficients
from workbench.estimators import ProbeOptions, element_rates
from workbench.rates import RateSpec, exact_element_rates, rate_function, rates_of


def dense_jacobian(adapter, f, x):
    with adapter.autodiff():
        return torch.autograd.functional.jacobian(lambda z: f(z[None])[0], x).reshape(-1, x.numel())


@pytest.mark.parametrize("definition", ["h", "eps", "step"])
def test_exact_rates_are_dense_jacobian_column_norms(tiny_adapter, definition):
    sched = make_schedule(tiny_adapter, 8)
    x = torch.randn(tiny_adapter.model_shape, generator=torch.Generator().manual_seed(1))
    i = 4
    got = exact_element_rates(tiny_adapter, sched, i, x, RateSpec(definition))
    J = dense_jacobian(tiny_adapter, rate_function(tiny_adapter, sched, i, definition), x)
    torch.testing.assert_close(got.flatten(), J.norm(dim=0), rtol=1e-4, atol=1e-6)


def test_rate_definitions_follow_their_formulas(tiny_adapter):
    sched = make_schedule(tiny_adapter, 8)
    i = 5
    x = torch.randn(tiny_adapter.model_shape, generator=torch.Generator().manual_seed(2))
    v = torch.randn((3, *tiny_adapter.model_shape), generator=torch.Generator().manual_seed(3))
    t = int(sched.timesteps[i])
    Jeps = dense_jacobian(tiny_adapter, lambda z: tiny_adapter.eps(z, t), x)
    Jh = dense_jacobian(tiny_adapter, lambda z: tiny_adapter.h(z, t), x)
    A, B = step_coefficients(float(sched.alphas[i]), sched.alpha_below(i))
    V = v.flatten(1).T
    want = {"eps": (Jeps @ V).norm(dim=0), "h": (Jh @ V).norm(dim=0),
            "step": (A * V + B * (Jeps @ V)).norm(dim=0)}
    for d, w in want.items():
        torch.testing.assert_close(rates_of(tiny_adapter, sched, i, x, v, RateSpec(d)), w, rtol=1e-4, atol=1e-6)
    # projected: ||Jh P_k v|| with P_k from the exact SVD; rSVD with enough iterations finds it
    k = 4
    _, S, Vh = torch.linalg.svd(Jh.double())
    P = Vh[:k].T @ Vh[:k]
    want_p = (Jh.double() @ P @ V.double()).norm(dim=0).float()
    got_p = rates_of(tiny_adapter, sched, i, x, v, RateSpec("projected", k=k, iters=8))
    torch.testing.assert_close(got_p, want_p, rtol=2e-2, atol=1e-4)


def test_hutchinson_is_close_to_exact(tiny_pixel_dir):
    from scipy.stats import spearmanr

    ad = load_model(tiny_pixel_dir, device="cpu")
    sched = make_schedule(ad, 8)
    x = torch.randn(ad.model_shape, generator=torch.Generator().manual_seed(4))
    ex = exact_element_rates(ad, sched, 3, x)
    est = element_rates(ad, sched, 3, x, opts=ProbeOptions(K=256, seed=0))
    assert spearmanr(ex.flatten(), est.flatten())[0] > 0.97
