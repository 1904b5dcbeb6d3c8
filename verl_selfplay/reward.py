"""The ``selfplay`` reward manager: verl's naive reward manager with reward_fns as its default scorer.

Select it with ``reward.reward_manager.name=selfplay``; then no ``custom_reward_function`` override
is needed. An explicit ``reward.custom_reward_function`` still takes precedence. This module is
imported only once verl has loaded its reward-manager package (see :mod:`verl_selfplay.registry`).
"""

from __future__ import annotations

from types import ModuleType

from verl.experimental.reward_loop.reward_manager.naive import NaiveRewardManager
from verl.utils.reward_score import default_compute_score

import reward_fns

NAME = "selfplay"


class SelfPlayRewardManager(NaiveRewardManager):
    """verl's NaiveRewardManager whose default score function is :func:`reward_fns.compute_score`."""

    def __init__(self, config, tokenizer, compute_score=None, **kwargs):
        # verl's load_reward_manager (trainer/ppo/reward.py:134-149) passes its own default_compute_score
        # (possibly wrapped in a partial for sandbox fusion) when no custom function is configured.
        if compute_score is None or getattr(compute_score, "func", compute_score) is default_compute_score:
            compute_score = reward_fns.compute_score
        super().__init__(config, tokenizer, compute_score, **kwargs)


def register(reward_manager_pkg: ModuleType) -> None:
    """Register :data:`NAME` in verl's reward-manager registry (idempotent)."""
    if reward_manager_pkg.registry.REWARD_MANAGER.get(NAME) is not SelfPlayRewardManager:
        reward_manager_pkg.register(NAME)(SelfPlayRewardManager)
