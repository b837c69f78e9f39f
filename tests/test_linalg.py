"""workbench.linalg: Jacobian products and the randomised SVD against a dense Jacobian (numpy SVD)."""
from __future__ import annotations

import numpy as np
import torch

from workbench.linalg import (jvp_columns, jvp_columns_batched, randomized_svd, range_basis_batched, vjp_rows,
                              vjp_rows_batched)

D = torch.float64  # the tests compare to 1e-9: float64 throughout (set per tensor, not globally)


def _f(W1: torch.Tensor, W2: torch.Tensor):
    """A small nonlinear map of a batch (B, 2, 3) -> (B, 4, 2): its Jacobian depends on x."""
    def f(x):
        h = torch.tanh(x.reshape(x.shape[0], -1) @ W1.T)
        return (h @ W2.T).reshape(x.shape[0], 4, 2)
    return f


def _setup(seed=0, rank=None):
    g = torch.Generator().manual_seed(seed)
    W1 = torch.randn(5, 6, generator=g, dtype=D)
    W2 = torch.randn(8, 5, generator=g, dtype=D)
    if rank is not None:  # W2 of rank `rank`: the Jacobian has at most that rank
        W2 = torch.randn(8, rank, generator=g, dtype=D) @ torch.randn(rank, 5, generator=g, dtype=D)
    return _f(W1, W2), torch.randn(2, 3, generator=g, dtype=D), g


def _dense(f, x):
    """The Jacobian (m, n) by autograd, one output element at a time (an independent route)."""
    J = torch.autograd.functional.jacobian(lambda z: f(z[None])[0], x)
    return J.reshape(8, 6)


def test_jvp_columns_and_vjp_rows_are_products_with_the_dense_jacobian():
    f, x, g = _setup()
    J = _dense(f, x)
    V = torch.randn(7, 2, 3, generator=g, dtype=D)
    U = torch.randn(5, 4, 2, generator=g, dtype=D)
    got_cols = jvp_columns(f, x, V, chunk=3)  # chunks of 3: 3 + 3 + 1
    assert got_cols.shape == (7, 4, 2)
    torch.testing.assert_close(got_cols.reshape(7, -1), V.reshape(7, -1) @ J.T)
    got_rows = vjp_rows(f, x, U, chunk=2)
    assert got_rows.shape == (5, 2, 3)
    torch.testing.assert_close(got_rows.reshape(5, -1), U.reshape(5, -1) @ J)
    # unit tangents give the columns themselves
    E = torch.eye(6, dtype=D).reshape(6, 2, 3)
    torch.testing.assert_close(jvp_columns(f, x, E).reshape(6, -1).T, J)


def test_randomized_svd_of_a_low_rank_jacobian_is_exact():
    f, x, g = _setup(seed=1, rank=3)
    J = _dense(f, x).numpy()
    S_np = np.linalg.svd(J, compute_uv=False)
    assert S_np[3] < 1e-10 * S_np[0]  # rank 3 indeed
    S, V = randomized_svd(f, x, 3, oversample=2, iters=1, generator=g)
    np.testing.assert_allclose(S.numpy(), S_np[:3], rtol=1e-8)
    # the rows of V span the row space of J: projecting J's rows on them loses nothing
    Vm = V.reshape(3, -1).numpy()
    np.testing.assert_allclose(Vm @ Vm.T, np.eye(3), atol=1e-10)
    np.testing.assert_allclose(J @ Vm.T @ Vm, J, atol=1e-9)


def test_randomized_svd_leading_values_of_a_full_rank_jacobian():
    f, x, g = _setup(seed=2)
    S_np = np.linalg.svd(_dense(f, x).numpy(), compute_uv=False)
    S, _ = randomized_svd(f, x, 2, oversample=4, iters=3, generator=g)
    np.testing.assert_allclose(S.numpy(), S_np[:2], rtol=1e-6)  # p = 6 = n: the whole space is sampled


def test_batched_products_are_the_per_row_products():
    f, _, g = _setup(seed=3)
    X = torch.randn(3, 2, 3, generator=g, dtype=D)  # three independent rows
    V = torch.randn(4, 3, 2, 3, generator=g, dtype=D)
    U = torch.randn(4, 3, 4, 2, generator=g, dtype=D)
    cols = jvp_columns_batched(f, X, V, chunk=3)
    rows = vjp_rows_batched(f, X, U, chunk=3)
    for b in range(3):
        J = _dense(f, X[b])
        torch.testing.assert_close(cols[:, b].reshape(4, -1), V[:, b].reshape(4, -1) @ J.T)
        torch.testing.assert_close(rows[:, b].reshape(4, -1), U[:, b].reshape(4, -1) @ J)


def test_range_basis_batched_spans_each_rows_range():
    f, _, g = _setup(seed=4, rank=2)
    X = torch.randn(2, 2, 3, generator=g, dtype=D)
    Q = range_basis_batched(f, X, 2, iters=1, generator=g)
    assert Q.shape == (2, 8, 2)
    for b in range(2):
        J = _dense(f, X[b])
        torch.testing.assert_close(Q[b].T @ Q[b], torch.eye(2, dtype=D))
        torch.testing.assert_close(Q[b] @ (Q[b].T @ J), J)  # rank 2: Q Q^T J = J
