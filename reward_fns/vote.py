r"""Majority vote over the answers of a group of rollouts (TTRL, Zuo et al. 2025, arXiv 2504.16084).

TTRL has no gold answer: the most frequent answer among a prompt's rollouts becomes the pseudo-label and
each rollout scores 1 if it matches. The reference implementation (PRIME-RL/TTRL) votes on exact
strings, so ``0.5`` and ``1/2`` split the vote; :func:`majority` groups answers that math-verify calls
equal first.

The ``vote`` data source (:func:`score`) scores a response against ``extra_info["majority_label"]`` only.
A ``vote`` row is never scored against a gold answer: its ``ground_truth`` is ignored, and a true answer,
if the row has one, lives in ``extra_info["eval_ground_truth"]`` (:data:`EVAL_GROUND_TRUTH_KEY`), which
only the agreement metrics read (``training/vote/label_agreement`` and ``training/vote/true_acc``, logged
by verl_selfplay's vote relabelling). Without a majority label the response gets the failure score and
an ``error`` saying that vote relabelling did not run: inside verl the label comes from
``verl_selfplay.filters.sampler.GroupFilterSampler``, which re-scores every rollout of a ``vote`` group
after the vote.

>>> majority(["1/2", "0.5", "3", r"\frac{1}{2}", "3", None])
('1/2', 3)
>>> score(r"\boxed{0.5}", None, {"majority_label": "1/2"}, "simplerl")["score"]
1.0
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from reward_fns import math as math_fns
from reward_fns import schemes

__all__ = ["EVAL_GROUND_TRUTH_KEY", "MAJORITY_LABEL_KEY", "NO_LABEL_ERROR", "Vote", "majority", "score", "vote"]

MAJORITY_LABEL_KEY = "majority_label"  # extra_info key of the pseudo-label a vote produced
EVAL_GROUND_TRUTH_KEY = "eval_ground_truth"  # extra_info key of a vote row's true answer: metrics only, never reward
NO_LABEL_ERROR = (
    "no majority_label in extra_info: a 'vote' row is scored only against the majority vote of its group, and "
    "vote relabelling is not on for it. Turn it on with "
    "trainer.v1.sampler.custom_sampler.path=pkg://verl_selfplay.filters.sampler "
    "trainer.v1.sampler.custom_sampler.name=GroupFilterSampler "
    "(+trainer.v1.sampler.sampler_kwargs.vote.enable=true and 'vote' in vote.data_sources, the defaults)"
)


@dataclass(frozen=True)
class Vote:
    """The outcome of :func:`vote`: the majority ``label`` (None when no answer), its ``count`` of agreeing answers,
    the ``total`` answers cast (missing ones included), how many were ``answered`` (non-empty), and how many
    equivalence checks ran out of time (``timeouts``; such a pair counts as different)."""

    label: str | None
    count: int
    total: int
    answered: int
    timeouts: int = 0

    @property
    def share(self) -> float:
        """Share of all ``total`` answers that agree with the label (0 when there are none)."""
        return self.count / self.total if self.total else 0.0

    @property
    def answer_share(self) -> float:
        """Share of the ``total`` answers that were given at all."""
        return self.answered / self.total if self.total else 0.0


def vote(answers: Sequence[str | None], *, timeout_s: float = math_fns.DEFAULT_TIMEOUT_S) -> Vote:
    r"""The majority vote of a group of answers, with its counts (see :func:`majority` for the rules).

    >>> v = vote(["1/2", "0.5", None, "3"])
    >>> v.label, v.count, v.total, v.answered, v.share
    ('1/2', 2, 4, 3, 0.5)
    """
    counts: dict[str, int] = {}
    for answer in answers:
        text = "" if answer is None else str(answer).strip()
        if text:
            counts[text] = counts.get(text, 0) + 1
    groups: list[list[Any]] = []  # [representative, count]
    timeouts = 0
    for text, n in counts.items():
        for group in groups:
            verdict = math_fns.verify(text, group[0], timeout_s=timeout_s)
            timeouts += verdict.timeout
            if verdict.correct:
                group[1] += n
                break
        else:
            groups.append([text, n])
    answered = sum(counts.values())
    if not groups:
        return Vote(None, 0, len(answers), 0, timeouts)
    best = max(groups, key=lambda g: g[1])  # max keeps the first of equal counts
    return Vote(best[0], best[1], len(answers), answered, timeouts)


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
    result = vote(answers, timeout_s=timeout_s)
    return result.label, result.count


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

    The label is ``extra_info["majority_label"]``. ``ground_truth`` is ignored, whatever it holds: a
    ``vote`` row must never be scored against a gold answer by accident (keep a true answer in
    ``extra_info["eval_ground_truth"]``, for the metrics). Without a label (absent or empty) the result
    has the scheme's failure score (:func:`reward_fns.schemes.failure_score`), ``acc`` 0 and
    :data:`NO_LABEL_ERROR` as ``error``; ``pred`` and ``format_ok`` still report the response, since
    vote relabelling re-scores from them. Other keyword arguments verl passes are ignored.

    >>> r = score(r"<think>x</think><answer>\boxed{2}</answer>", "7", {"majority_label": "2"}, "r1")
    >>> r["score"], r["acc"]
    (2.0, 1.0)
    >>> r = score(r"<think>x</think><answer>\boxed{7}</answer>", "7", {}, "r1")   # the gold "7" is not used
    >>> r["score"], r["acc"], r["pred"], r["format_ok"], r["error"].startswith("no majority_label")
    (0.0, 0.0, '7', True, True)
    """
    label = (extra_info or {}).get(MAJORITY_LABEL_KEY)
    gold = "" if label is None else math_fns.gold_text(label)
    if gold:
        return math_fns.score_answer(solution_str, gold, scheme, timeout_s=timeout_s)
    result = math_fns.score_answer(solution_str, "", scheme, timeout_s=timeout_s, error=NO_LABEL_ERROR)
    return {**result, "score": schemes.failure_score(scheme), "acc": 0.0}
