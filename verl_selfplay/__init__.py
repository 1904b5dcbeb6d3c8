"""verl plugin for self-play and curriculum post-training.

verl imports this package through the ``verl.plugins`` entry point on every ``import verl``. The
import is cheap: it only arranges for our components to register into verl's registries when verl
loads them (see :mod:`verl_selfplay.registry`).
"""

import os

from verl_selfplay.registry import register_all

__version__ = "0.1.0"

register_all()
if os.environ.get("VERL_SELFPLAY_MODEL_TEXT_GUARD") == "1":  # test and audit runs (verl_selfplay.azr.guard)
    from verl_selfplay.azr.guard import install_from_env

    install_from_env()
