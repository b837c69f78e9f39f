"""workbench.cancel: the check runs between module calls, rate-limited, and the hooks always go."""
from __future__ import annotations

import time
import types

import pytest
import torch

from workbench.cancel import checked_calls


class _Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)

    def forward(self, x):
        return self.b(self.a(x))


class _Stop(Exception):
    pass


def test_the_check_runs_between_calls_and_can_stop_them():
    adapter = types.SimpleNamespace(unet=_Net())
    calls = []
    with checked_calls(adapter, lambda: calls.append(1), every=0.0):
        adapter.unet(torch.zeros(1, 2))
    assert len(calls) == 2  # before each top-level module
    adapter.unet(torch.zeros(1, 2))
    assert len(calls) == 2  # the hooks are gone after the block

    def stop():
        raise _Stop()

    with pytest.raises(_Stop):
        with checked_calls(adapter, stop, every=0.0):
            adapter.unet(torch.zeros(1, 2))
    assert not any(m._forward_pre_hooks for m in adapter.unet.children())  # removed after an exception too


def test_the_check_is_rate_limited():
    adapter = types.SimpleNamespace(unet=_Net())
    calls = []
    with checked_calls(adapter, lambda: calls.append(1), every=0.05):
        for _ in range(20):
            adapter.unet(torch.zeros(1, 2))  # far faster than 0.05 s
        assert calls == []
        time.sleep(0.06)
        adapter.unet(torch.zeros(1, 2))
    assert calls == [1]
