"""Reasoning-behaviour metrics in every verl run: ``behaviour/{name}/rate`` and ``behaviour/{name}/reward_gap``.

On by default, in every v1 trainer mode (``sync``, ``pcl``, ``azr``, verl's async modes), with any reward manager
and any reward function. Each step, after verl's own metrics, the trained batch's responses are decoded and scored
by :func:`reward_fns.behaviours.reasoning_behaviours`; verl's tracker then logs, per behaviour in
:data:`reward_fns.behaviours.BEHAVIOURS` (verification, backtracking, subgoal_setting, backward_chaining,
thinking_words, language_mixing, repetition):

- ``behaviour/{name}/rate``: the share of responses showing it;
- ``behaviour/{name}/reward_gap``: mean reward of responses with it minus those without (NaN, written ``null``
  by verl's file logger, when either side is empty);

plus ``behaviour/length_words/mean``, ``behaviour/responses`` (how many were scored) and ``behaviour/seconds``.

Settings (Hydra, top level, like ``+pcl.*``)::

    +behaviours.enable=false           # turn it off
    +behaviours.max_responses=128      # score a uniform sample of this many responses per step (default); 0: all

The sample (seeded by the step number) bounds the cost on the driver whatever the batch size: at 128 responses a
rate's standard error is at most 4.4 points (0.5 / sqrt(128)); every step draws a fresh sample. ``benchmarks/bench_behaviours.py`` measures the cost against the
reward computation.

Failure handling: a bad setting raises ``ValueError`` naming it at the first step; any other error while scoring
is logged as a warning and that step simply has no ``behaviour/*`` metrics -- it never fails training.

verl touch points (0.9.1): wraps ``PPOTrainer._compute_metrics`` (``verl/trainer/ppo/v1/trainer_base.py``), which
``fit`` calls once per step for every trainer mode, before it clears the step's trajectories from TransferQueue;
reads ``responses`` and ``rm_scores`` of the batch's keys through :mod:`verl_selfplay.common.trajectories`;
decodes with the trainer's ``tokenizer``. Why this route rather than the reward manager's extra info or the
group-filter sampler: verl 0.9.1 logs ``reward_extra_info`` only in validation, never in training metrics; a reward
manager hook misses rows whose agent loop sets the reward itself (AZR's proposer rows) and the users of verl's own
managers; and the sampler runs only when ``GroupFilterSampler`` is configured (AZR uses verl's stock buffer).
"""

from __future__ import annotations

import functools
import logging
import os
import random
import time
from collections.abc import Mapping, Sequence
from types import ModuleType
from typing import Any

from reward_fns.behaviours import behaviour_metrics, reasoning_behaviours

logger = logging.getLogger(__name__)
logger.setLevel(os.getenv("VERL_LOGGING_LEVEL", "INFO"))

CONFIG_KEY = "behaviours"
DEFAULT_MAX_RESPONSES = 128
_MARK = "_verl_selfplay_behaviours"


def settings(config: Any) -> tuple[bool, int]:
    """``(enable, max_responses)`` from the trainer config's ``behaviours`` section (absent: on, 128).

    >>> settings({}), settings({"behaviours": {"enable": False}}), settings({"behaviours": {"max_responses": 0}})
    ((True, 128), (False, 128), (True, 0))
    >>> settings({"behaviours": {"max_response": 5}})
    Traceback (most recent call last):
    ...
    ValueError: unknown setting behaviours.max_response; valid: enable, max_responses
    """
    section = config.get(CONFIG_KEY) if hasattr(config, "get") else None
    section = {} if section is None else section
    if not hasattr(section, "keys"):
        raise ValueError(f"behaviours must be a mapping (behaviours.enable, behaviours.max_responses); got {section!r}")
    for key in section.keys():
        if key not in ("enable", "max_responses"):
            raise ValueError(f"unknown setting behaviours.{key}; valid: enable, max_responses")
    enable = section.get("enable", True)
    max_responses = section.get("max_responses", DEFAULT_MAX_RESPONSES)
    if not isinstance(enable, bool):
        raise ValueError(f"behaviours.enable must be true or false, got {enable!r}")
    if isinstance(max_responses, bool) or not isinstance(max_responses, int) or max_responses < 0:
        raise ValueError(f"behaviours.max_responses must be an integer >= 0 (0: all), got {max_responses!r}")
    return enable, max_responses


def select_keys(keys: Sequence[str], tags: Sequence[Mapping[str, Any]], max_responses: int, seed: int) -> list[str]:
    """The responses to score: each session's last output (verl's padding rows left out), at most ``max_responses``.

    The last output of a session carries its reward (multi-output agent loops); the sample is uniform, seeded.

    >>> select_keys(["a_0_0", "a_0_1", "a_1_0", "b_0_0"], [{}, {}, {}, {"is_padding": True}], 0, seed=1)
    ['a_0_1', 'a_1_0']
    >>> len(select_keys([f"u{i}_0_0" for i in range(10)], [{}] * 10, 4, seed=1))
    4
    """
    from verl_selfplay.common.trajectories import PADDING_TAG, session_final_keys

    chosen = session_final_keys(k for k, tag in zip(keys, tags, strict=True) if not tag.get(PADDING_TAG, False))
    if max_responses and len(chosen) > max_responses:
        chosen = sorted(random.Random(seed).sample(chosen, max_responses))
    return chosen


def score_responses(
    tokenizer: Any, response_ids: Sequence[Sequence[int]], rewards: Sequence[float]
) -> dict[str, float]:
    """``behaviour/*`` metrics of responses given as token ids, with their rewards (decoded without special tokens)."""
    start = time.perf_counter()
    texts = (
        tokenizer.batch_decode([list(ids) for ids in response_ids], skip_special_tokens=True) if response_ids else []
    )
    out = behaviour_metrics([reasoning_behaviours(t) for t in texts], rewards)
    out["behaviour/responses"] = float(len(texts))
    out["behaviour/seconds"] = time.perf_counter() - start
    return out


def step_metrics(tokenizer: Any, partition_id: str, keys: Sequence[str]) -> dict[str, float]:
    """``behaviour/*`` metrics of the trajectories ``keys`` in TransferQueue partition ``partition_id``."""
    from verl_selfplay.common.trajectories import read_fields, reward_value

    start = time.perf_counter()
    data = read_fields(partition_id, list(keys), ["responses", "rm_scores"])
    ids = [[] if r is None else r.tolist() for r in data["responses"]]
    out = score_responses(tokenizer, ids, [reward_value(v, "reward") for v in data["rm_scores"]])
    out["behaviour/seconds"] = time.perf_counter() - start
    return out


def add_step_metrics(trainer: Any, batch: Any, metrics: dict[str, Any], global_steps: int) -> None:
    """Add this step's ``behaviour/*`` metrics to ``metrics`` unless the ``behaviours`` settings turn them off."""
    enable, max_responses = settings(trainer.config)
    if not enable:
        return
    try:
        keys = select_keys(batch.keys, batch.tags, max_responses, seed=int(global_steps))
        metrics.update(step_metrics(trainer.tokenizer, batch.partition_id, keys))
    except Exception as e:  # metrics only: never fail a training step
        logger.warning("behaviour metrics skipped at step %s: %r", global_steps, e)


def register(trainer_base: ModuleType) -> None:
    """Wrap verl's ``PPOTrainer._compute_metrics`` so that every trainer mode logs ``behaviour/*`` (idempotent)."""
    cls = trainer_base.PPOTrainer
    original = cls._compute_metrics
    if getattr(original, _MARK, False):
        return

    @functools.wraps(original)
    def _compute_metrics(self, batch, metrics, timing_raw, global_steps, epoch):
        result = original(self, batch, metrics, timing_raw, global_steps, epoch)
        add_step_metrics(self, batch, metrics, global_steps)
        return result

    setattr(_compute_metrics, _MARK, True)
    cls._compute_metrics = _compute_metrics
