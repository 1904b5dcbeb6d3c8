"""Bad input, as a property: whatever a model writes, compute_score returns the same keys, in time, never raising.

Through the public ``reward_fns.compute_score`` for every math, vote and logic data source and every
scheme (the code-execution sources have their own hostile-program corpus). A response may be anything:
empty, decoded binary junk, unbalanced braces and tags, 1 MB of text, ``\\frac`` nested 1,000 deep or
``10^{10^{10}}`` (sympy hangs on both). Malformed ground truths and scheme names are covered as well.
"""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import reward_fns
import reward_fns.math as m
from reward_fns import DATA_SOURCES, RESULT_KEYS, SCHEMES, compute_score

BUDGET = 1.0
SLACK = 3.0  # loaded 2-core box
KK_TRUTH = {"solution_text_format": "(1) Zoey is a knight\n(2) Oliver is a knave", "statements": "[]"}
SOURCES = sorted(
    s for s, (path, _) in DATA_SOURCES.items() if path.split(":")[0].rsplit(".", 1)[-1] in ("math", "vote", "logic")
)


def _truth(source: str):
    return KK_TRUTH if DATA_SOURCES[source][0].startswith("reward_fns.logic") else "\\frac{1}{2}"


# Each scheme's failure value (unformatted, no answer), from its source paper: r1 0 + 0; SimpleRL-Zoo
# -1; Logic-RL format -1 plus answer -2; Absolute Zero -1.
FAILURE = {"r1": 0.0, "simplerl": -1.0, "logicrl": -3.0, "azr": -1.0}


def _documented_scores(scheme: str, format_ok: bool, acc: float) -> set[float]:
    """The scores a scheme allows for a response with this format verdict and accuracy (DESIGN.md)."""
    if scheme == "r1":
        return {acc + float(format_ok)}  # accuracy + format
    if not format_ok:
        return {FAILURE[scheme]}
    if scheme == "logicrl":
        return {3.0} if acc else {-0.5, -1.0}  # +1 and +2; or +1 and -1.5 (wrong) / -2 (unparseable)
    return {1.0} if acc else {-0.5}  # simplerl and azr (a solver's role reward is 1)


@pytest.fixture(scope="module", autouse=True)
def _checkers_started():
    m.warmup()  # the one-time start of the checker server is not part of any call's budget


def _check_all_sources(text: str) -> None:
    assert set(FAILURE) == set(SCHEMES)
    for source in SOURCES:
        for scheme in SCHEMES:
            start = time.monotonic()
            r = compute_score(source, text, _truth(source), {"majority_label": "0.5"}, scheme=scheme, timeout_s=BUDGET)
            elapsed = time.monotonic() - start
            assert tuple(sorted(r)) == tuple(sorted(RESULT_KEYS)), (source, scheme)
            assert isinstance(r["score"], float) and r["acc"] in (0.0, 1.0), (source, scheme)
            assert isinstance(r["format_ok"], bool) and isinstance(r["pred"], str), (source, scheme)
            assert r["score"] in _documented_scores(scheme, r["format_ok"], r["acc"]), (source, scheme, r)
            assert isinstance(r["timeout"], bool) and isinstance(r["error"], str), (source, scheme)
            assert elapsed < BUDGET + SLACK, (source, scheme, elapsed)


_junk = st.binary(max_size=300).map(lambda b: b.decode("utf-8", errors="replace"))
_tokens = list("{}\\$^_()[],.-+=/ 0123456789xy") + ["\\frac", "\\sqrt", "\\boxed{", "\\left(", "\\infty"]
_latexish = st.lists(st.sampled_from(_tokens), max_size=40).map("".join)
_tagged = st.builds(
    lambda a, b, c, close: f"<think>{a}</think><answer>{b}\\boxed{{{c}{'}' if close else ''}</answer>",
    st.text(max_size=40),
    _latexish,
    _latexish,
    st.booleans(),
)
_texts = st.one_of(st.text(max_size=200), _junk, _latexish, _tagged, _latexish.map(lambda s: f"\\boxed{{{s}}}"))


def test_the_property_covers_every_source_family():
    assert {"math", "gsm8k", "vote", "kk_logic", "knights_knaves"} <= set(SOURCES)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(_texts)
@example("")
@example("\x00\xff\ufffd" * 1000)
@example("{" * 5000 + "\\boxed{" + "}" * 10)
@example("\\boxed{" * 10_000)
@example("<answer>" * 1000 + "</think>")
@example("x" * 1_000_000)
@example("\\boxed{" + "{" * 500_000 + "}" * 500_000 + "}")
@example("<think>a</think><answer>\\boxed{" + "\\frac{" * 1000 + "1" + "}{2}" * 1000 + "}</answer>")
@example("<think>a</think><answer>\\boxed{10^{10^{10}}}</answer>")
@example("so \\boxed{10^{10^{10}}}")
def test_any_response_gives_the_documented_keys_within_budget(text):
    _check_all_sources(text)


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("bad", [["1"], {"answer": "1"}, 3 + 4j, object(), True], ids=repr)
def test_malformed_ground_truth_gives_the_failure_score_with_an_error(source, bad):
    for scheme in SCHEMES:
        r = compute_score(source, "<think>a</think><answer>\\boxed{1}</answer>", bad, scheme=scheme)
        assert set(r) == set(RESULT_KEYS)
        assert r["score"] == FAILURE[scheme] and r["acc"] == 0.0 and r["error"], (source, scheme, r)


@pytest.mark.parametrize("where", ["kwargs", "extra_info"])
def test_unknown_scheme_raises_naming_the_valid_ones(where):
    kwargs = {"scheme": "simplrl"} if where == "kwargs" else {}
    extra = {"scheme": "simplrl"} if where == "extra_info" else {}
    for source in SOURCES:
        with pytest.raises(ValueError, match="unknown scheme 'simplrl'; valid: r1, simplerl, logicrl, azr"):
            compute_score(source, "\\boxed{1}", "1", extra, **kwargs)


def test_unknown_data_source_lists_the_known_ones():
    with pytest.raises(ValueError, match="unknown data_source 'MATH!'; known: .*gsm8k.*vote"):
        reward_fns.compute_score("MATH!", "\\boxed{1}", "1")
