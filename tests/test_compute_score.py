"""The verl-facing dispatcher: data sources, scheme selection, fixed result keys, failure values."""

import pytest

import reward_fns
from reward_fns import RESULT_KEYS, SCHEMES, compute_score
from reward_fns.schemes import failure_score, score

GOOD = "<think>one half</think>\n<answer>\\frac{1}{2}</answer>"


def test_every_registered_source_returns_the_same_keys():
    truths = {"knights_knaves": {"solution_text_format": "(1) Zoey is a knight"}, "kk_logic": None}
    truths["kk_logic"] = truths["knights_knaves"]
    for source in reward_fns.known_data_sources():
        if source.startswith(("azr", "code")):
            continue  # covered with real programs in test_azr_checks.py
        r = compute_score(source, GOOD, truths.get(source, "0.5"), {"majority_label": "0.5"})
        assert tuple(sorted(r)) == tuple(sorted(RESULT_KEYS)), source
        assert isinstance(r["score"], float) and r["acc"] in (0.0, 1.0) and isinstance(r["format_ok"], bool)


def test_math_sources_accept_equivalent_answers_under_each_scheme():
    for scheme in SCHEMES:
        r = compute_score("lighteval/MATH", GOOD, "0.5", scheme=scheme)
        assert r["acc"] == 1.0 and r["format_ok"] is True
        assert r["score"] == score(scheme, format_ok=True, parsed=True, correct=True)


def test_scheme_precedence_kwargs_then_extra_info_then_default():
    wrong = "<think>x</think><answer>3</answer>"
    assert compute_score("math", wrong, "4")["score"] == 1.0  # r1 default: format only
    assert compute_score("math", wrong, "4", {"scheme": "simplerl"})["score"] == -0.5
    assert compute_score("math", GOOD, "0.5", {"scheme": "simplerl"})["score"] == 1.0
    assert compute_score("math", GOOD, "0.5", {"scheme": "simplerl"}, scheme="logicrl")["score"] == 3.0


def test_unknown_scheme_raises_naming_valid_ones():
    with pytest.raises(ValueError, match="unknown scheme 'simplrl'; valid: r1, simplerl, logicrl, azr"):
        compute_score("math", GOOD, "0.5", scheme="simplrl")


def test_unknown_data_source_lists_known_ones():
    with pytest.raises(ValueError, match="known: .*kk_logic.*math"):
        compute_score("MATH!", GOOD, "0.5")


@pytest.mark.parametrize("bad_truth", [None, ["0.5"], {"answer": "0.5"}, object()])
def test_bad_ground_truth_gives_failure_score_and_message(bad_truth):
    r = compute_score("math", GOOD, bad_truth, scheme="simplerl")
    assert r["score"] == failure_score("simplerl") and r["acc"] == 0.0
    assert r["error"]


@pytest.mark.parametrize("junk", [None, b"\xff\xfe<answer>1</answer>", 12345, ""])
def test_non_string_responses_never_raise(junk):
    r = compute_score("math", junk, "1", scheme="simplerl")
    assert set(r) == set(RESULT_KEYS)
