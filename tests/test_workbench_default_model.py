"""workbench.default_model: the architecture in code is the one the shipped weights were saved with."""
from __future__ import annotations

import json

from workbench.default_model import DEFAULT_MODEL_DIR, default_scheduler_config, default_unet_config


def test_configs_match_the_shipped_model():
    saved = json.loads((DEFAULT_MODEL_DIR / "unet" / "config.json").read_text())
    for key, value in default_unet_config().items():
        assert saved[key] == (list(value) if isinstance(value, tuple) else value), key
    assert default_unet_config(32)["sample_size"] == 32
    sched = json.loads((DEFAULT_MODEL_DIR / "scheduler" / "scheduler_config.json").read_text())
    for key, value in default_scheduler_config().items():
        if key != "prediction_type":
            assert sched[key] == value, key
    # the shipped weights are a v-prediction fine-tune of the epsilon recipe (docs/model.md, issue 25)
    assert sched["prediction_type"] == "v_prediction"
