"""workbench.editing.config: an edit's settings are validated when the config is made."""
from __future__ import annotations

import pytest

from workbench.editing import EditConfig
from workbench.errors import WorkbenchError


def test_config_rejects_bad_values():
    for bad in (dict(task="paint"), dict(lr=0), dict(direction=0), dict(erosion=0), dict(rate="projected")):
        with pytest.raises(WorkbenchError):
            EditConfig(**bad)
