"""Named scoring schemes and the result dict every scorer returns.

A scheme turns three facts about one response -- is it well formatted, could an answer be parsed
from it, is that answer correct -- into a scalar reward. The values come from the source papers:

========  ==========================================================================================
scheme    values
========  ==========================================================================================
r1        DeepSeek-R1 / open-r1: accuracy (1 or 0) + format (1 or 0); range 0..2.
simplerl  SimpleRL-Zoo: +1 correct and formatted, -0.5 formatted but wrong, -1 unformatted.
logicrl   Logic-RL: format +1 / -1, plus answer +2 correct, -1.5 parsed but wrong, -2 unparseable
          (or format failed). Totals 3, -0.5, -1 or -3.
azr       Absolute Zero (arXiv 2505.03335, eq. 6): role reward if formatted and passable (1 for a
          correct solver answer), -0.5 formatted but wrong, -1 format error.
========  ==========================================================================================

>>> score("simplerl", format_ok=True, parsed=True, correct=False)
-0.5
>>> score("logicrl", format_ok=True, parsed=True, correct=True)
3.0
>>> failure_score("logicrl")
-3.0
"""

from __future__ import annotations

from typing import Any

SCHEMES: tuple[str, ...] = ("r1", "simplerl", "logicrl", "azr")

# Every scorer returns exactly these keys, for every sample, so verl can stack them into
# reward_extra_info columns (verl skips string columns when it averages metrics).
RESULT_KEYS: tuple[str, ...] = ("score", "acc", "format_ok", "pred", "timeout", "error")


def check_scheme(name: Any) -> str:
    """Return ``name`` if it is a known scheme, else raise ``ValueError`` naming the valid ones.

    >>> check_scheme("r1")
    'r1'
    >>> check_scheme("simplrl")
    Traceback (most recent call last):
    ...
    ValueError: unknown scheme 'simplrl'; valid: r1, simplerl, logicrl, azr
    """
    if name not in SCHEMES:
        raise ValueError(f"unknown scheme {name!r}; valid: {', '.join(SCHEMES)}")
    return name


def score(scheme: str, *, format_ok: bool, parsed: bool, correct: bool, role_reward: float = 1.0) -> float:
    """The scalar reward of one response under ``scheme``.

    ``parsed`` means an answer could be extracted; ``role_reward`` is AZR's reward for a passable
    answer (1 for a correct solver answer).

    >>> score("r1", format_ok=False, parsed=True, correct=True)
    1.0
    >>> score("azr", format_ok=False, parsed=True, correct=True)
    -1.0
    """
    check_scheme(scheme)
    correct = bool(correct and parsed)
    if scheme == "r1":
        return float(correct) + float(format_ok)
    if scheme == "simplerl":
        if not format_ok:
            return -1.0
        return 1.0 if correct else -0.5
    if scheme == "logicrl":
        fmt = 1.0 if format_ok else -1.0
        if not format_ok or not parsed:
            return fmt - 2.0
        return fmt + (2.0 if correct else -1.5)
    # azr
    if not format_ok:
        return -1.0
    return float(role_reward) if correct else -0.5


def failure_score(scheme: str) -> float:
    """The reward of a response that is unformatted and has no answer: the documented failure value.

    >>> [failure_score(s) for s in SCHEMES]
    [0.0, -1.0, -3.0, -1.0]
    """
    return score(scheme, format_ok=False, parsed=False, correct=False)


def make_result(
    score: float,
    *,
    acc: float = 0.0,
    format_ok: bool = False,
    pred: str | None = "",
    timeout: bool = False,
    error: str = "",
) -> dict[str, Any]:
    """Build the result dict with exactly :data:`RESULT_KEYS`.

    >>> sorted(make_result(1.0, acc=1.0, pred="2"))
    ['acc', 'error', 'format_ok', 'pred', 'score', 'timeout']
    """
    return {
        "score": float(score),
        "acc": float(acc),
        "format_ok": bool(format_ok),
        "pred": "" if pred is None else str(pred),
        "timeout": bool(timeout),
        "error": str(error),
    }


def failure_result(scheme: str, error: str = "", *, pred: str | None = "", timeout: bool = False) -> dict[str, Any]:
    """The result of a response that earns the failure score of ``scheme``.

    >>> failure_result("simplerl", "bad ground_truth")["score"]
    -1.0
    """
    return make_result(failure_score(scheme), pred=pred, timeout=timeout, error=error)
