"""Helpers for the flat scalar metrics that our samplers and trainer modes hand to verl's tracker."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping


def mean(values: Iterable[float], default: float = 0.0) -> float:
    """Exact (``math.fsum``) mean of ``values``, or ``default`` when there are none.

    >>> mean([0.1, 0.2, 0.3]), mean([], default=float("nan"))
    (0.2, nan)
    """
    xs = [float(v) for v in values]
    return math.fsum(xs) / len(xs) if xs else default


def prefixed(prefix: str, values: Mapping[str, float]) -> dict[str, float]:
    """``{f"{prefix}/{name}": float(value)}`` for every entry of ``values``.

    >>> prefixed("training/vote", {"groups": 2})
    {'training/vote/groups': 2.0}
    """
    return {f"{prefix}/{name}": float(value) for name, value in values.items()}
