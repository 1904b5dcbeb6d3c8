"""The verl-facing dispatcher: data sources, scheme selection, fixed result keys, failure values."""

import pytest

import reward_fns
from reward_fns import RESULT_KEYS, SCHEMES, compute_score

GOOD = "<think>one half</think>\n<answer>\\frac{1}{2}</answer>"


# GOOD scored by each data source's default scheme, derived by hand (score, acc, format_ok, pred):
_MATH_GOOD = (2.0, 1.0, True, "\\frac{1}{2}")  # r1: 1/2 equals 0.5 (+1), one think then one answer block (+1)
GOOD_BY_SOURCE = {
    **{
        s: _MATH_GOOD
        for s in ("math", "lighteval/MATH", "DigitalLearningGmbH/MATH-lighteval", "HuggingFaceH4/MATH-500")
    },
    **{s: _MATH_GOOD for s in ("math_dapo", "openai/gsm8k", "gsm8k", "vote")},  # vote: majority_label 0.5
    # logicrl, truth "(1) Zoey is a knight": the answer names no role (unparseable, -2); the format is
    # +1 when the prompt is unknown (knights_knaves: GOOD read alone) but -1 after Logic-RL's prompt
    # (kk_logic: its "<think>" plus GOOD's make two)
    "knights_knaves": (-1.0, 0.0, True, ""),
    "kk_logic": (-3.0, 0.0, False, ""),
}


def test_every_registered_source_returns_the_same_keys():
    truths = {"knights_knaves": {"solution_text_format": "(1) Zoey is a knight"}, "kk_logic": None}
    truths["kk_logic"] = truths["knights_knaves"]
    for source in reward_fns.known_data_sources():
        if source.startswith(("azr", "code")):
            continue  # covered with real programs in test_azr_checks.py
        r = compute_score(source, GOOD, truths.get(source, "0.5"), {"majority_label": "0.5"})
        assert tuple(sorted(r)) == tuple(sorted(RESULT_KEYS)), source
        assert isinstance(r["score"], float) and isinstance(r["format_ok"], bool), source
        assert (r["score"], r["acc"], r["format_ok"], r["pred"]) == GOOD_BY_SOURCE[source], source
        assert (r["timeout"], r["error"]) == (False, ""), source


def test_math_sources_accept_equivalent_answers_under_each_scheme():
    # right and formatted: r1 1 + 1; simplerl +1; logicrl format +1, answer +2; azr the solver's role reward 1
    expected = {"r1": 2.0, "simplerl": 1.0, "logicrl": 3.0, "azr": 1.0}
    assert set(expected) == set(SCHEMES)
    for scheme in SCHEMES:
        r = compute_score("lighteval/MATH", GOOD, "0.5", scheme=scheme)
        assert r["acc"] == 1.0 and r["format_ok"] is True
        assert r["score"] == expected[scheme], scheme


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
    assert r["score"] == -1.0 and r["acc"] == 0.0  # simplerl's failure value
    assert r["error"]


@pytest.mark.parametrize(
    "junk, expected",
    [
        (None, (-1.0, "")),  # no answer: simplerl's unformatted -1
        (b"\xff\xfe<answer>1</answer>", (1.0, "1")),  # bytes decoded; the answer 1 is right: +1
        (12345, (-1.0, "")),  # a bare number is no \boxed{} or <answer>: no answer
        ("", (-1.0, "")),
    ],
)
def test_non_string_responses_never_raise(junk, expected):
    r = compute_score("math", junk, "1", scheme="simplerl")
    assert set(r) == set(RESULT_KEYS)
    assert (r["score"], r["pred"]) == expected and r["error"] == ""
