"""genrate-workbench engine: generation rates and curves of diffusion models (pure compute)."""
from __future__ import annotations

__version__ = "0.1.0"
