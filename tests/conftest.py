"""Run-wide fixtures: the tiny model and data are built once per test run (and cached across runs)."""

from __future__ import annotations

from pathlib import Path

import pytest
from _e2e import tiny_assets


@pytest.fixture(scope="session")
def tiny() -> tuple[Path, Path]:
    """``(model_dir, data_dir)`` of the tiny addition model (200 SFT steps) and its data, built once per run.

    The build is cached on disk under a key of ``verl_selfplay/tiny.py`` (see :func:`_e2e.tiny_assets`), so a
    second run on the same machine reuses it.
    """
    return tiny_assets()


@pytest.fixture(scope="session")
def tiny_azr() -> tuple[Path, Path]:
    """``(model_dir, data_dir)`` of the tiny AZR model (``python -m verl_selfplay.tiny --azr``) and its validation
    tasks, built once per run and cached like :func:`tiny`."""
    return tiny_assets(azr=True)


@pytest.fixture(scope="session")
def tiny_math() -> tuple[Path, Path]:
    """``(model_dir, data_dir)`` of the tiny math self-play model (``python -m verl_selfplay.tiny --selfplay-math``),
    its seed problems (``data_dir / "seeds.jsonl"``) and validation problems, built once per run and cached like
    :func:`tiny`."""
    return tiny_assets(math=True)
