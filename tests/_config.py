"""The one Hydra-compose helper of the test suite: verl's real trainer config plus overrides.

``compose_verl(overrides)`` composes verl's own ``ppo_trainer`` (what ``python -m verl.trainer.main_ppo`` uses);
``config_path="pkg://verl_selfplay.config", config_name="cpu"`` composes our CPU preset instead, and any other
``--config-path`` resolves as Hydra resolves it for ``main_ppo``. Unknown keys without ``+`` fail, as in a run.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any


def verl_config_dir() -> str:
    """verl's own trainer config folder (what ``main_ppo``'s ``@hydra.main(config_path="config")`` uses)."""
    import verl.trainer.main_ppo as main_ppo

    return str(Path(main_ppo.__file__).parent / "config")


def compose_verl(
    overrides: Sequence[str] = (), *, config_name: str = "ppo_trainer", config_path: str | None = None
) -> Any:
    """verl's composed trainer config (a ``DictConfig``) for ``overrides``; raises on an unknown key."""
    from hydra import compose, initialize_config_dir, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    if config_path and config_path.startswith("pkg://"):
        module = config_path[len("pkg://") :].replace("/", ".")
        context = initialize_config_module(config_module=module, version_base=None)
    else:
        config_dir = verl_config_dir()
        if config_path:
            path = Path(config_path)
            # Hydra resolves a relative --config-path against the file declaring @hydra.main (main_ppo.py)
            config_dir = str(path if path.is_absolute() else (Path(verl_config_dir()).parent / path).resolve())
        context = initialize_config_dir(config_dir=config_dir, version_base=None)
    with context:
        return compose(config_name=config_name, overrides=list(overrides))
