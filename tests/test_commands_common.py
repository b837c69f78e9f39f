"""workbench.commands.common: the helpers every command shares."""
from __future__ import annotations

import types

import pytest

from workbench.commands.common import check_against_model, parse_xy
from workbench.errors import WorkbenchError


def test_parse_xy():
    assert parse_xy("12,30") == (12, 30) and parse_xy(" 1, 2") == (1, 2)
    with pytest.raises(WorkbenchError, match="--ref '1;2' is not X,Y: write two integers such as 12,30"):
        parse_xy("1;2", "--ref")


def test_checks_against_the_loaded_model():
    ad = types.SimpleNamespace(num_train_timesteps=1000, model_shape=(3, 4, 4))
    check_against_model(ad, steps=1000, channel=2, k=48)
    with pytest.raises(WorkbenchError, match="steps must be a whole number from 1 to 1000"):
        check_against_model(ad, steps=1001)
    with pytest.raises(WorkbenchError, match="the model has 3 channels"):
        check_against_model(ad, channel=3)
    with pytest.raises(WorkbenchError, match="k must be a whole number from 1 to 48"):
        check_against_model(ad, k=49)
