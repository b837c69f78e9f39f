"""workbench.flow: flow-matching noise levels against diffusers' FlowMatchEulerDiscreteScheduler."""
from __future__ import annotations

import pytest
import torch
from diffusers import FlowMatchEulerDiscreteScheduler

from workbench.errors import WorkbenchError
from workbench.flow import flow_sigmas, is_flow_config, unshifted_sigmas


def test_flow_sigmas_are_diffusers_training_sigmas():
    torch.testing.assert_close(unshifted_sigmas(4), torch.tensor([0.25, 0.5, 0.75, 1.0], dtype=torch.float64))
    # shift 3: 3 s / (1 + 2 s) by hand
    torch.testing.assert_close(flow_sigmas({"num_train_timesteps": 4, "shift": 3.0}),
                               torch.tensor([0.5, 0.75, 0.9, 1.0], dtype=torch.float64))
    ref = FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=3.0)
    ours = flow_sigmas(dict(ref.config))
    torch.testing.assert_close(ours.flip(0).float(), ref.sigmas.float(), rtol=1e-6, atol=1e-7)


def test_flow_config_detection_and_unsupported_options():
    assert is_flow_config({"_class_name": "FlowMatchEulerDiscreteScheduler"})
    assert not is_flow_config({"_class_name": "DDIMScheduler"}) and not is_flow_config({})
    with pytest.raises(WorkbenchError, match="dynamic"):
        flow_sigmas({"use_dynamic_shifting": True})
    with pytest.raises(WorkbenchError, match="use_karras_sigmas is not supported"):
        flow_sigmas({"use_karras_sigmas": True})
