r"""Majority vote over the answers of a group of rollouts (TTRL, Zuo et al. 2025, arXiv 2504.16084).

TTRL has no gold answer: the most frequent answer among a prompt's rollouts becomes the pseudo-label and
each rollout scores 1 if it matches. The reference implementation (PRIME-RL/TTRL) votes on exact
strings, so ``0.5`` and ``1/2`` split the vote; :func:`majority` groups answers that math-verify calls
equal first. The ``vote`` data source (:func:`score`) scores a response against
``extra_info["majority_label"]``, which whoever ran the vote wrote into the row.

>>> majority(["1/2", "0.5", "3", r"\frac{1}{2}", "3", None])
('1/2', 3)
>>> score(r"\boxed{0.5}", None, {"majority_label": "1/2"}, "simplerl")["score"]
1.0
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from reward_fns import math as math_fns

__all__ = ["majority", "score"]


def majority(answers: Sequence[str | None], *, timeout_s: float = math_fns.DEFAULT_TIMEOUT_S) -> tuple[str | None, int]:
    r"""The most frequent answer of a group and how many answers agree with it.

    Missing (None) and empty answers are dropped. Answers that math-verify calls equal form one group
    (``1/2``, ``0.5`` and ``\frac{1}{2}``); a group is represented by its first answer, and an answer
    joins the first group whose representative it matches (the representative plays the gold).
    Ties go to the group seen first. ``timeout_s`` is the budget of each comparison. Costs at most
    one comparison per (distinct answer, group) pair, most of them on the fast paths.

    >>> majority(["5", "4", "4", "5.0"])
    ('5', 2)
    >>> majority([None, "", "  "])
    (None, 0)
    """
    counts: dict[str, int] = {}
    for answer in answers:
        text = "" if answer is None else str(answer).strip()
        if text:
            counts[text] = counts.get(text, 0) + 1
    groups: list[list[Any]] = []  # [representative, count]
    for text, n in counts.items():
        for group in groups:
            if math_fns.verify_answer(text, group[0], timeout_s=timeout_s):
                group[1] += n
                break
        else:
            groups.append([text, n])
    if not groups:
        return None, 0
    best = max(groups, key=lambda g: g[1])  # max keeps the first of equal counts
    return best[0], best[1]


def score(
    solution_str: str,
    ground_truth: Any,
    extra_info: dict[str, Any] | None,
    scheme: str,
    *,
    timeout_s: float = math_fns.DEFAULT_TIMEOUT_S,
    **kwargs: Any,
) -> dict[str, Any]:
    r"""The ``vote`` scorer: the response's answer against the group's majority label.

    The label is ``extra_info["majority_label"]`` when present and non-empty, else ``ground_truth``.
    With neither, the response is scored as wrong (its format still counts) and ``error`` says why.
    A ``ground_truth`` that is not a string or number raises ``TypeError`` (the failure score in
    :func:`reward_fns.compute_score`). Other keyword arguments verl passes are ignored.

    >>> r = score(r"<think>x</think><answer>\boxed{2}</answer>", "7", {"majority_label": "2"}, "r1")
    >>> r["score"], r["acc"]
    (2.0, 1.0)
    >>> r = score(r"<think>x</think><answer>\boxed{2}</answer>", None, {}, "r1")
    >>> r["score"], r["error"]
    (1.0, 'no label: extra_info has no majority_label and ground_truth is empty')
    """
    label = (extra_info or {}).get("majority_label")
    if label is None or (isinstance(label, str) and not label.strip()):
        label = ground_truth
    gold = "" if label is None else math_fns.gold_text(label)
    error = "" if gold else "no label: extra_info has no majority_label and ground_truth is empty"
    return math_fns.score_answer(solution_str, gold, scheme, timeout_s=timeout_s, error=error)
