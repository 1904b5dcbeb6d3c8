"""How the CPU backend is requested: verl's own platform switch, ``VERL_PLATFORM=cpu``.

Ray workers inherit the driver's environment, so setting it in the driver (the CPU preset's Hydra
callback does this) selects the ``cpu`` platform in every verl process.
"""

from __future__ import annotations

import os

ENV_VAR = "VERL_PLATFORM"
VALUE = "cpu"


def is_requested() -> bool:
    """Whether this process runs verl on the CPU backend (``VERL_PLATFORM=cpu``, any case)."""
    return os.environ.get(ENV_VAR, "").strip().lower() == VALUE


def request() -> None:
    """Select the CPU backend for this process and every Ray worker started after this call."""
    os.environ[ENV_VAR] = VALUE
