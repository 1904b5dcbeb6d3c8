"""CPU backend: verl's real trainer, end to end, on a machine without a GPU (tests, tiny runs).
Platform ``cpu``, an ``hf`` rollout replica, FSDP on CPU and start-up checks, registered lazily into verl.
On: ``--config-path=pkg://verl_selfplay.config --config-name=cpu`` (or ``VERL_PLATFORM=cpu`` + its overrides).

Activate it with the preset (recommended; it also checks the config before Ray starts)::

    python -m verl.trainer.main_ppo --config-path=pkg://verl_selfplay.config --config-name=cpu ...

or with verl's own platform switch ``VERL_PLATFORM=cpu`` plus the preset's overrides by hand. Nothing
here changes a GPU run: the pieces below register new names (platform ``cpu``, rollout ``hf``,
FSDP engine for device ``cpu``) that only a CPU configuration selects, and the one patch of a verl
function is installed only when ``VERL_PLATFORM=cpu``.

- :mod:`~verl_selfplay.cpu.platform`: the ``cpu`` platform (device ``cpu``, ``gloo``, logical Ray GPUs).
- :mod:`~verl_selfplay.cpu.hf_rollout`: the ``hf`` rollout replica, its server actor (batched
  transformers ``generate`` with log-probs) and its weight-sync adapter.
- :mod:`~verl_selfplay.cpu.workarounds`: every reach into verl beyond its public registries, each with
  the verl file:line it works around (see ``docs/upstream.md`` for the upstream patches).
- :mod:`~verl_selfplay.cpu.preflight`: start-up checks and the preset's Hydra callback.

The registrations run lazily, when verl imports the module that holds each registry (see
:data:`verl_selfplay.registry.REGISTRATIONS`), so ``import verl`` stays cheap.
"""

from verl_selfplay.cpu.env import ENV_VAR, is_requested, request

__all__ = ["ENV_VAR", "is_requested", "request"]
