"""Helpers for the flat scalar metrics that our samplers and trainer modes hand to verl's tracker."""

from __future__ import annotations

import math
from collections.abc import Iterable


def mean(values: Iterable[float], default: float = 0.0) -> float:
    """Exact (``math.fsum``) mean of ``values``, or ``default`` when there are none.

    >>> mean([0.5, 1.0, 1.5]), mean([], default=float("nan"))
    (1.0, nan)
    """
    xs = [float(v) for v in values]
    return math.fsum(xs) / len(xs) if xs else default
