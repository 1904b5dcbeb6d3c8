"""Acc-filter: keep the prompt groups whose mean accuracy lies in ``[low, high]``.

A *prompt group* is the ``n`` rollouts of one prompt. A group that the policy always solves (mean
accuracy near 1) or never solves (near 0) carries almost no GRPO signal, so the PromptCoT zero-RL
settings keep only groups whose mean accuracy lies in [0.1, 0.8] and refill the batch with fresh
prompts (the refilling lives in :mod:`verl_selfplay.filters.sampler`).

>>> f = AccFilter()
>>> f.verdict([1.0, 0.0, 0.0, 0.0])        # mean 0.25: kept
>>> f.verdict([0.0, 0.0, 0.0, 0.0])
'acc_too_low'
>>> f.verdict([1.0, 1.0, 1.0, 0.0])        # mean 0.75: kept (bounds are inclusive)
>>> f.verdict([1.0, 1.0, 1.0, 1.0])
'acc_too_high'
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

# PromptCoT zero-RL settings (shared/seeds/000: "acc-filter(0.1-0.8之间)"), Qwen2.5-7B base.
ACC_LOW = 0.1
ACC_HIGH = 0.8
DEFAULT_METRIC = "acc"  # the key reward_fns.compute_score puts in verl's reward_extra_info

# Group-level rejection reasons this filter reports.
REASONS: tuple[str, ...] = ("acc_too_low", "acc_too_high", "acc_missing", "invalid_metric")

# Means are averages of a few floats: 0.1 written as 1/10 must pass the inclusive bound.
_EPS = 1e-9


def group_mean(values: Sequence[float]) -> float:
    """Mean of one group's metric values (NaN for an empty group).

    >>> group_mean([1.0, 0.0, 1.0, 0.0])
    0.5
    >>> math.isnan(group_mean([]))
    True
    """
    return math.fsum(values) / len(values) if values else math.nan


@dataclass(frozen=True)
class AccFilter:
    """Keep a group iff ``low <= mean(metric) <= high``.

    ``metric`` names the per-rollout value: a key of verl's ``reward_extra_info`` (``acc`` by
    default, which :func:`reward_fns.compute_score` always returns) or ``reward`` for the scalar
    reward verl stores in ``rm_scores``.

    >>> AccFilter(low=0.9, high=0.1)
    Traceback (most recent call last):
    ...
    ValueError: acc.low (0.9) must be <= acc.high (0.1)
    """

    low: float = ACC_LOW
    high: float = ACC_HIGH
    metric: str = DEFAULT_METRIC

    def __post_init__(self) -> None:
        for name in ("low", "high"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
                raise ValueError(f"acc.{name} must be a number, got {value!r}")
        if self.low > self.high:
            raise ValueError(f"acc.low ({self.low}) must be <= acc.high ({self.high})")
        if not isinstance(self.metric, str) or not self.metric:
            raise ValueError(f"acc.metric must be a non-empty string, got {self.metric!r}")

    def verdict(self, values: Sequence[float | None]) -> str | None:
        """``None`` if the group is kept, else the rejection reason (one of :data:`REASONS`).

        A rollout whose metric is missing (``None``) makes the whole group ``acc_missing``: the
        reward function did not report the metric, which the sampler turns into a clear error. A
        rollout whose metric is not a finite number (NaN, infinity, or a value that is not a number)
        makes it ``invalid_metric``, never a legitimate ``acc_too_low`` / ``acc_too_high``.

        >>> AccFilter().verdict([None, 1.0])
        'acc_missing'
        >>> AccFilter().verdict([float("nan"), 1.0])
        'invalid_metric'
        >>> AccFilter(low=0.0, high=1.0).verdict([0.0, 0.0])   # a [0, 1] window keeps everything
        """
        if not values or any(v is None for v in values):
            return "acc_missing"
        if not all(math.isfinite(float(v)) for v in values):  # type: ignore[arg-type]
            return "invalid_metric"
        mean = group_mean([float(v) for v in values])  # type: ignore[arg-type]
        if mean < self.low - _EPS:
            return "acc_too_low"
        if mean > self.high + _EPS:
            return "acc_too_high"
        return None
