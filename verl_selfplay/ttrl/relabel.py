"""Majority-vote relabelling (TTRL) of one prompt group, on plain data.

Test-Time RL (Zuo et al. 2025, "TTRL: Test-Time Reinforcement Learning", arXiv 2504.16084) trains
on unlabelled prompts: the answers extracted from a prompt's ``n`` rollouts are put to a vote, the
most frequent one becomes the prompt's pseudo-label, and every rollout is re-scored against it.
Equivalent answers (``0.5`` and ``\\frac{1}{2}``) are grouped by :func:`reward_fns.vote.majority`
before counting, where the TTRL reference compares exact strings; rollouts without an extracted
answer do not vote. When the row carries a true answer (``extra_info["eval_ground_truth"]``, see
:mod:`reward_fns.vote`; never used for the reward) we also measure how often the pseudo-label agrees
with it, the quantity TTRL reports as label accuracy, and each rollout's accuracy against it.

The re-score uses the answers and format verdicts the reward function already produced for each
rollout (verl's ``reward_extra_info``: ``pred`` and ``format_ok``), so no response is decoded or
parsed twice: ``acc`` is 1 iff ``pred`` is equivalent to the label, and ``score`` follows the
row's scheme (:func:`reward_fns.schemes.score`).

>>> out = relabel_group(["4", "4", "5", ""], [True, True, True, False], "r1", eval_ground_truth="5")
>>> out.label, out.votes, out.accs, out.scores
('4', 2, [1.0, 1.0, 0.0, 0.0], [2.0, 2.0, 1.0, 0.0])
>>> out.agreement, out.true_accs
(0.0, [0.0, 0.0, 1.0, 0.0])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from reward_fns import schemes
from verl_selfplay.common.metrics import mean


def true_label(ground_truth: Any) -> str:
    """A row's true answer as text, ``""`` when it has none (unlabelled rows, malformed labels).

    >>> true_label(" 72 "), true_label(3.0), true_label(None), true_label(["1"])
    ('72', '3', '', '')
    """
    from reward_fns.math import gold_text

    try:
        return gold_text(ground_truth)
    except (TypeError, ValueError):
        return ""


def _equivalent(pred: str, gold: str) -> bool:
    from reward_fns.math import verify_answer

    return pred == gold or bool(verify_answer(pred, gold))


@dataclass(frozen=True)
class VoteOutcome:
    """The pseudo-label of one group and every rollout's re-scored ``acc`` and ``score``.

    ``label`` is ``None`` when no rollout produced an answer (then every rollout is wrong).
    ``agreement`` is 1.0 / 0.0 when the row has a true answer, else ``None``; ``true_accs`` are then
    each rollout's accuracy against that true answer (``None`` without one). Neither feeds the reward.
    """

    label: str | None
    votes: int
    n: int
    accs: list[float]
    scores: list[float]
    agreement: float | None
    true_accs: list[float] | None = None

    @property
    def majority_ratio(self) -> float:
        """Share of the group's rollouts that voted for the label (TTRL's "majority ratio")."""
        return self.votes / self.n if self.n else 0.0


def relabel_group(
    preds: Sequence[str | None],
    format_oks: Sequence[bool],
    scheme: str,
    eval_ground_truth: Any = None,
) -> VoteOutcome:
    """Vote over ``preds`` (one extracted answer per rollout, ``""`` when none) and re-score them.

    ``eval_ground_truth`` (the row's true answer, if any) is used only for ``agreement`` and
    ``true_accs``; the scores depend on the vote alone.

    >>> relabel_group(["", ""], [False, False], "simplerl").label is None
    True
    >>> relabel_group(["1/2", "0.5", "3"], [True] * 3, "simplerl").accs   # equivalent answers pool their votes
    [1.0, 1.0, 0.0]
    """
    from reward_fns.vote import majority

    if len(preds) != len(format_oks):
        raise ValueError(f"{len(preds)} answers but {len(format_oks)} format verdicts")
    schemes.check_scheme(scheme)
    answers = [str(p).strip() if p is not None else "" for p in preds]
    voters = [a for a in answers if a]
    label, votes = majority(voters) if voters else (None, 0)
    if label is not None and not str(label).strip():
        label, votes = None, 0
    accs = [1.0 if (label is not None and a and _equivalent(a, label)) else 0.0 for a in answers]
    scores = [
        schemes.score(scheme, format_ok=bool(ok), parsed=bool(a), correct=acc == 1.0)
        for a, ok, acc in zip(answers, format_oks, accs, strict=True)
    ]
    truth = true_label(eval_ground_truth)
    agreement: float | None = None
    true_accs: list[float] | None = None
    if truth:
        agreement = 1.0 if label is not None and _equivalent(label, truth) else 0.0
        verdicts = {a: _equivalent(a, truth) for a in set(answers) if a}  # one check per distinct answer
        true_accs = [1.0 if a and verdicts[a] else 0.0 for a in answers]
    return VoteOutcome(
        label=label,
        votes=int(votes),
        n=len(answers),
        accs=accs,
        scores=scores,
        agreement=agreement,
        true_accs=true_accs,
    )


@dataclass
class VoteStats:
    """One step's vote metrics for verl's tracker (``training/vote/*``)."""

    groups: int = 0
    no_answer_groups: int = 0
    labelled_groups: int = 0
    dropped_rollouts: int = 0
    majority_ratios: list[float] = field(default_factory=list)
    pseudo_accs: list[float] = field(default_factory=list)
    true_accs: list[float] = field(default_factory=list)
    agreements: list[float] = field(default_factory=list)

    def record(self, outcome: VoteOutcome) -> None:
        """Count one relabelled group."""
        self.groups += 1
        self.no_answer_groups += outcome.label is None
        self.majority_ratios.append(outcome.majority_ratio)
        self.pseudo_accs.extend(outcome.accs)
        if outcome.agreement is not None:
            self.labelled_groups += 1
            self.agreements.append(outcome.agreement)
            self.true_accs.extend(outcome.true_accs or [])

    def metrics(self, prefix: str = "training/vote") -> dict[str, float]:
        """Flat scalar metrics; the label-agreement ones only when some group had a true answer.

        >>> s = VoteStats(); s.record(relabel_group(["2", "2", "3"], [True] * 3, "r1", eval_ground_truth="3"))
        >>> m = s.metrics()
        >>> m["training/vote/label_agreement"], round(m["training/vote/majority_ratio"], 3), round(m["training/vote/true_acc"], 3)
        (0.0, 0.667, 0.333)
        """
        if not self.groups:
            return {}

        out = {
            f"{prefix}/groups": float(self.groups),
            f"{prefix}/no_answer_groups": float(self.no_answer_groups),
            f"{prefix}/majority_ratio": mean(self.majority_ratios),
            f"{prefix}/pseudo_acc": mean(self.pseudo_accs),
            f"{prefix}/labelled_groups": float(self.labelled_groups),
            f"{prefix}/dropped_rollouts": float(self.dropped_rollouts),
        }
        if self.labelled_groups:
            out[f"{prefix}/label_agreement"] = mean(self.agreements)
            if self.true_accs:
                out[f"{prefix}/true_acc"] = mean(self.true_accs)
        return out
