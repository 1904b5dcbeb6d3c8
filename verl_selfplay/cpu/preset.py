"""The CPU preset's Hydra callback: select the CPU backend in this process, then run the start-up checks.

:class:`CPUPreflight` is installed by ``verl_selfplay/config/cpu.yaml``; Hydra calls
:meth:`CPUPreflight.on_job_start` right before verl's ``main_ppo`` task function, so a bad configuration fails in
a second with a message naming the key to change, not minutes later inside a Ray worker. It sits above
:mod:`~verl_selfplay.cpu.preflight` (the checks), :mod:`~verl_selfplay.cpu.platform` and
:mod:`~verl_selfplay.cpu.workarounds`, none of which import it.
"""

from __future__ import annotations

from typing import Any

from verl_selfplay.cpu.env import request
from verl_selfplay.cpu.preflight import check_config


def activate() -> None:
    """Select the CPU backend in this process now (and in every Ray worker it starts)."""
    import sys

    request()
    manager = sys.modules.get("verl.plugin.platform.platform_manager")
    if manager is not None:
        from verl_selfplay.cpu.platform import CPUPlatform, register

        register(manager)
        current = manager._current_platform
        if current is not None and current.device_name != "cpu":
            manager.set_platform(CPUPlatform())
    distributed = sys.modules.get("verl.utils.distributed")
    if distributed is not None:
        from verl_selfplay.cpu.workarounds import fix_process_group

        fix_process_group(distributed)


try:
    from hydra.experimental.callback import Callback as _HydraCallback
except ImportError:  # pragma: no cover - hydra ships with verl
    _HydraCallback = object  # type: ignore[assignment,misc]


class CPUPreflight(_HydraCallback):
    """Hydra callback of the CPU preset: selects the CPU backend and checks the config before Ray starts."""

    def on_job_start(self, config: Any, **kwargs: Any) -> None:
        """Activate the CPU backend, then run :func:`check_config` (raises on a bad config)."""
        activate()
        check_config(config, has_gpu=False)
