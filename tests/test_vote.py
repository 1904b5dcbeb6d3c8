"""reward_fns.vote: majority vote over equivalent answers (real math-verify) and the ``vote`` data source."""

from __future__ import annotations

import pytest

import reward_fns.math as m
from reward_fns import compute_score
from reward_fns.schemes import failure_score
from reward_fns.vote import majority

R1 = "<think>work</think><answer>\\boxed{%s}</answer>"


def test_equivalent_answers_form_one_group():
    # TTRL's exact-string vote would pick "3" (2 votes) over three different spellings of one half
    assert majority(["3", "1/2", "3", "0.5", r"\frac{1}{2}"]) == ("1/2", 3)


def test_symbolic_equivalence_groups_too():
    answers = [r"2\sqrt{2}", r"\sqrt{8}", "x", r"\sqrt{2}\cdot 2", "x", "y"]
    assert majority(answers, timeout_s=60) == (r"2\sqrt{2}", 3)


def test_ties_go_to_the_group_seen_first():
    assert majority(["7", "8", "8", "7"]) == ("7", 2)
    assert majority(["8", "7", "7", "8"]) == ("8", 2)


@pytest.mark.parametrize("answers", [[], [None, None], ["", "  ", None]])
def test_nothing_valid_gives_no_label(answers):
    assert majority(answers) == (None, 0)


def test_invalid_answers_are_dropped_not_counted():
    assert majority([None, "4", "", None, "5", "4"]) == ("4", 2)


def test_cost_is_bounded_by_distinct_answers_times_groups():
    answers = [str(k % 4) for k in range(64)] + [f"x+{k % 3}" for k in range(32)]  # 7 groups, 7 distinct
    before = m.cache_info()
    label, count = majority(answers, timeout_s=60)
    after = m.cache_info()
    calls = sum(getattr(after, f) - getattr(before, f) for f in ("fast_path", "cache_hits", "checks"))
    assert (label, count) == ("0", 16)
    assert calls <= 7 * 6 // 2  # one comparison per (distinct answer, earlier group) at most


def test_vote_scores_against_the_majority_label():
    r = compute_score("vote", R1 % "0.5", "99", {"majority_label": "1/2"})
    assert (r["acc"], r["score"], r["pred"], r["error"]) == (1.0, 2.0, "0.5", "")
    r = compute_score("vote", R1 % "99", "99", {"majority_label": "1/2"}, scheme="simplerl")
    assert (r["acc"], r["score"]) == (0.0, -0.5)


@pytest.mark.parametrize(
    "extra", [{}, {"majority_label": ""}, {"majority_label": None}, None, {"eval_ground_truth": "6"}]
)
@pytest.mark.parametrize("truth", ["6", 6, None, "", ["6"]])
@pytest.mark.parametrize("scheme", ["r1", "simplerl", "logicrl"])
def test_vote_is_never_scored_against_a_gold_answer(extra, truth, scheme):
    # the response's answer equals every gold the row holds; without a majority label it still earns nothing
    r = compute_score("vote", R1 % "6", truth, extra, scheme=scheme)
    assert (r["score"], r["acc"]) == (failure_score(scheme), 0.0)
    assert "vote relabelling is not on" in r["error"] and "GroupFilterSampler" in r["error"]
    assert (r["pred"], r["format_ok"]) == ("6", True)  # what relabelling re-scores from


def test_vote_label_ignores_a_malformed_ground_truth():
    assert compute_score("vote", R1 % "6", ["6"], {"majority_label": "6"})["acc"] == 1.0
