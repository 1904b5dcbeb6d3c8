"""reward_fns.math: extraction, math-verify verdicts (live oracle), caches, time budget in threads and processes.

Everything runs real math-verify: the oracle is math-verify's own ``verify(parse(gold), parse(pred))``,
computed live in this process (main thread, its default signal timeouts), never a stored verdict.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import pathlib
import threading
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from math_verify import parse
from math_verify import verify as mv_verify

import reward_fns.math as m
from reward_fns import compute_score
from reward_fns.math import fastpath, verification
from reward_fns.schemes import failure_score

logging.getLogger("math_verify").setLevel(logging.ERROR)

CASES = json.loads((pathlib.Path(__file__).parent / "data" / "math_verify_cases.json").read_text())["cases"]
HOSTILE = {
    "tower": "10^{10^{10}}",  # sympy hangs inside a C bigint power: no signal can stop it
    "nested_frac": "\\frac{" * 1000 + "1" + "}{2}" * 1000,  # the LaTeX parser takes minutes
}
BUDGET = 1.0
SLACK = 3.0  # a loaded 2-core box: forking a fresh checker and scheduling take time


def oracle(pred: str, gold: str) -> bool:
    """math-verify's default verdict on the same wrapped strings."""
    return bool(mv_verify(parse(m.wrap_latex(gold)), parse(m.wrap_latex(pred))))


def oracle_whole_response(response: str, gold: str) -> bool:
    """math-verify's default verdict with the response parsed whole (the benchmark's baseline)."""
    return bool(mv_verify(parse(m.wrap_latex(gold)), parse(response)))


@pytest.fixture(scope="module", autouse=True)
def _checkers_started():
    m.warmup()


# ---------------------------------------------------------------------------------------------- extraction


@pytest.mark.parametrize(
    "text, expected",
    [
        (r"so \boxed{42}.", "42"),
        (r"\boxed{\frac{\sqrt{3}}{2}}", r"\frac{\sqrt{3}}{2}"),
        (r"\boxed{\{1,2\}}", r"\{1,2\}"),  # escaped braces pair up like math-verify counts them
        (r"$\boxed{ (1, 3] }$ done", "(1, 3]"),
        (r"first \boxed{1}. Long reasoning that changes its mind here. \boxed{2}", "2"),
        (r"\boxed{-2} and \boxed{1}", "-2,1"),  # joined as math-verify joins them
        (r"\boxed{3}\boxed{3}", "3"),  # consecutive duplicates collapse
        (r"\fbox{7}", "7"),
        (r"the answer is \boxed 5.", "5"),
        (r"\boxed{1} then \boxed{2", None),  # a truncated final box is no answer
        (r"\boxed{}", None),
        ("<think>a</think><answer>\\boxed{9}</answer>", "9"),
        ("<think>a</think><answer> 3/4 </answer>", "3/4"),
        ("<answer>$$x+1$$</answer>", "x+1"),
        ("<answer>\\(y\\)</answer>", "y"),
        ("<answer>$a$ and $b$</answer>", "$a$ and $b$"),  # not one formula: kept whole
        ("<answer>1</answer> later <answer>2</answer>", "2"),
        (r"\boxed{4} then <answer>5</answer>", "4"),  # a box wins over the tag
        ("no answer at all", None),
        ("", None),
        ("<answer></answer>", None),
    ],
)
def test_extract_answer(text, expected):
    assert m.extract_answer(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "x" * 1_000_000 + r"\boxed{5}",
        r"\boxed{" * 200_000,  # every box unbalanced: a naive scan per box is quadratic
        r"\boxed{" + "{" * 500_000 + "}" * 499_999,
        "<answer>" * 100_000 + "</answer>" * 100_000,
        "{" * 1_000_000,
    ],
    ids=["long", "many_open_boxes", "deep_unbalanced", "many_tags", "braces"],
)
def test_extract_answer_is_linear_on_megabyte_inputs(text):
    start = time.monotonic()
    m.extract_answer(text)
    assert time.monotonic() - start < 5.0  # quadratic would take hours


def test_extract_answer_keeps_earlier_box_when_later_ones_are_separate():
    text = r"We get \boxed{3}. Checking that again it is wrong. The answer is \boxed{\frac{a}{b^{2}}}"
    assert m.extract_answer(text) == r"\frac{a}{b^{2}}"


@pytest.mark.parametrize(
    "response, gold, math_verify_reads",
    [
        # an <answer> tag's content as written: math-verify finds the formula in the prose
        ("<answer>The answer is $26$</answer>", "26", "The answer is $26$"),
        ("<answer>Answer $ 9 $</answer>", "9", "Answer $ 9 $"),
        ("<answer>The solution is $x != 5$</answer>", r"x \neq 5", "The solution is $x != 5$"),
        (r"<answer>So it is \(\dfrac{1}{2}\).</answer>", "0.5", r"So it is \(\dfrac{1}{2}\)."),
        (r"<answer>$50\%$</answer>", "50", r"$50\%$"),  # without its dollars 50\% is a string, not 50
        # a box as the box: its content is boxed again even when it holds a delimiter
        (r"so \boxed{12 $ and $ 13}", "12, 13", r"\boxed{12 $ and $ 13}"),
        (r"so \boxed{\(4 \text{ units}\)}", r"4 \text{ units}", r"\boxed{\(4 \text{ units}\)}"),
    ],
)
def test_answers_are_checked_as_the_response_writes_them(response, gold, math_verify_reads):
    """Issue 11, item 10: prose around a formula, and delimiters inside a box, get math-verify's verdict."""
    expected = bool(mv_verify(parse(m.wrap_latex(gold)), parse(math_verify_reads)))
    assert compute_score("math", response, gold, timeout_s=60)["acc"] == float(expected)
    found = m.answer_to_check(response)
    assert found is not None and m.verify_answer(found[1], gold, timeout_s=60) is expected


# ------------------------------------------------------------------------------------------- live oracle


def _answer_cases():
    for i, case in enumerate(CASES):
        pred = m.extract_answer(case["pred"])
        if pred is None and len(case["pred"]) <= 200:  # short answers as written; long prose is skipped
            pred = case["pred"]
        if pred is not None:
            yield pytest.param(pred, case["gold"], id=f"{case['test']}-{i}")


@pytest.mark.parametrize("pred, gold", list(_answer_cases()))
def test_verdict_equals_math_verify_on_its_regression_cases(pred, gold):
    ours = m.verify(pred, gold, timeout_s=60)
    assert not ours.timeout
    assert ours.correct == oracle(pred, gold)


def _boxed_responses():
    for i, case in enumerate(CASES):
        text = case["pred"]
        box = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
        if box >= 0 and len(text) - text.rfind("}") <= 30:  # responses that end in their boxed answer
            yield pytest.param(text, case["gold"], id=f"{case['test']}-{i}")


@pytest.mark.parametrize("response, gold", list(_boxed_responses()))
def test_compute_score_equals_math_verify_on_whole_responses_ending_in_a_box(response, gold):
    result = compute_score("math", response, gold, scheme="simplerl", timeout_s=60)
    assert not result["timeout"]
    assert bool(result["acc"]) == oracle_whole_response(response, gold)


def test_the_regression_corpus_is_loaded():
    assert len(CASES) > 200 and len(list(_answer_cases())) > 200 and len(list(_boxed_responses())) > 50


_integers = st.integers(-(10**6), 10**6).map(str)
_decimals = st.builds(
    lambda n, d: f"{'-' if n < 0 else ''}{abs(n) // 10**d}.{abs(n) % 10**d:0{d}d}",
    st.integers(-(10**9), 10**9),
    st.integers(1, 8),
)
_fractions = st.builds(lambda a, b: f"{a}/{b}", st.integers(-999, 999), st.integers(1, 999))
_latex_fractions = st.builds(
    lambda s, a, b, cmd: f"{s}\\{cmd}{{{a}}}{{{b}}}",
    st.sampled_from(["", "-"]),
    st.integers(0, 999),
    st.integers(1, 999),
    st.sampled_from(["frac", "dfrac", "tfrac"]),
)
_numbers = st.one_of(_integers, _decimals, _fractions, _latex_fractions)


def _nearby(text: str) -> st.SearchStrategy[str]:
    """Numbers equal or close to ``text`` in other forms: where rounding rules matter."""
    value = float(fastpath._plain_number(text)[0]) if fastpath._plain_number(text) else 0.0
    return st.one_of(
        st.just(text),
        st.integers(0, 8).map(lambda d: f"{value:.{d}f}"),
        st.floats(-1e-5, 1e-5).map(lambda e: f"{value + e:.9f}"),
        st.integers(1, 12).map(lambda d: f"{round(value * d)}/{d}"),
        _numbers,
    )


# bare (boxed for math-verify), or one formula parsed as written, which the fast path reads as the number
_formula_around = st.sampled_from(["{}", "{}", "${}$", "$ {} $", "$${}$$", "\\({}\\)", "\\[ {} \\]"])


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_number_fast_path_equals_math_verify(data):
    gold = data.draw(_numbers, label="gold")
    pred = data.draw(_nearby(gold), label="pred")
    gold = data.draw(_formula_around, label="gold formula").format(gold)
    pred = data.draw(_formula_around, label="pred formula").format(pred)
    ours = m.verify(pred, gold, timeout_s=60)
    assert ours.correct == oracle(pred, gold), (pred, gold)


_small = st.one_of(
    st.integers(-30, 30).map(str),
    st.sampled_from(["0.5", "2.5", "-1.25", "3.0", "0.333333"]),
    st.builds(lambda a, b: f"\\frac{{{a}}}{{{b}}}", st.integers(0, 9), st.integers(1, 9)),
)


@st.composite
def _bracketed_pairs(draw):
    """A gold interval / tuple and a prediction that is the same, respaced, rebracketed or perturbed."""
    items = draw(st.lists(_small, min_size=2, max_size=3))
    if draw(st.booleans()):
        items[0] = "-\\infty"
    if draw(st.booleans()):
        items[-1] = "\\infty"
    left, right = draw(st.sampled_from(["(", "["])), draw(st.sampled_from([")", "]"]))
    gold = f"{left}{', '.join(items)}{right}"
    change = draw(st.sampled_from(["same", "space", "left_right", "bracket", "item", "swap"]))
    p_items, p_left, p_right, sep = list(items), left, right, ", "
    if change == "space":
        sep = draw(st.sampled_from([",", " , ", ",  "]))
    elif change == "bracket":
        p_left, p_right = draw(st.sampled_from(["(", "["])), draw(st.sampled_from([")", "]"]))
    elif change == "item":
        p_items[draw(st.integers(0, len(items) - 1))] = draw(_small)
    elif change == "swap":
        p_items.reverse()
    pred = f"{p_left}{sep.join(p_items)}{p_right}"
    if change == "left_right":
        pred = f"\\left{left}{', '.join(items)}\\right{right}"
    return pred, gold


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_bracketed_pairs())
def test_interval_and_tuple_fast_path_equals_math_verify(pair):
    pred, gold = pair
    assert m.verify(pred, gold, timeout_s=60).correct == oracle(pred, gold), (pred, gold)


@pytest.mark.parametrize(
    "pred, gold",
    [
        ("(5, 1)", "[5, 1]"),  # tuples both
        ("(1, 5)", "(1,5)"),
        ("(3, 3)", "(3, 3)"),
        ("(5, 1]", "(5, 1]"),  # empty interval
        ("(-\\infty, 3]", "\\left(-\\infty, 3\\right]"),
        ("[-\\infty, 3)", "(-\\infty, 3)"),  # sympy opens infinite ends
        ("(1, \\infty]", "(1, \\infty)"),
        ("(1, 2.0)", "(1, 2)"),
        ("(2, 1.0)", "(2, 1)"),
        ("(1,000)", "(1, 0)"),
        ("(1,234)", "(1, 234)"),
        ("(1, 2, 3)", "[1, 2, 3]"),
        ("(0.1, \\frac{1}{10})", "(0.1, 0.1)"),
        ("(1/2, 2)", "(\\frac{1}{2}, 2)"),
    ],
)
def test_interval_and_tuple_edge_cases_equal_math_verify(pred, gold):
    assert m.verify(pred, gold, timeout_s=60).correct == oracle(pred, gold)


_coefficient = st.one_of(
    st.integers(1, 12).map(str),
    st.just(""),
    st.builds(lambda a, b: f"\\frac{{{a}}}{{{b}}}", st.integers(1, 9), st.integers(1, 9)),
)
_factor = st.one_of(
    st.just("\\pi"),
    st.integers(0, 50).map(lambda n: f"\\sqrt{{{n}}}"),
    st.builds(lambda v, e: v + e, st.sampled_from("xyznk"), st.sampled_from(["", "^2", "^{3}", "^{1}", "^{0}"])),
)


@st.composite
def _symbolic(draw):
    """Sums of terms like 3x^{2}, \\frac{\\sqrt{3}}{2}, 2\\pi/3, with the spellings models use."""
    terms = []
    for _ in range(draw(st.integers(1, 3))):
        coefficient, factors = draw(_coefficient), draw(st.lists(_factor, min_size=0, max_size=2))
        body = (
            coefficient + draw(st.sampled_from(["", " ", "\\cdot "])).join(factors) if factors else coefficient or "1"
        )
        shape = draw(st.sampled_from(["plain", "plain", "slash", "frac", "mixed", "bare"]))
        if shape == "slash" and factors:
            body = f"{body}/{draw(st.integers(1, 9))}"
        elif shape == "frac" and factors and not coefficient:
            body = f"\\frac{{{body}}}{{{draw(st.integers(1, 9))}}}"
        elif shape == "mixed":
            body = f"{draw(st.integers(1, 9))}\\frac{{{draw(st.integers(1, 9))}}}{{{draw(st.integers(1, 9))}}}"
        elif shape == "bare":
            body = draw(st.sampled_from(["x", "1x", "x^{1}", "\\frac{x}{1}", "x\\cdot 1"]))
        terms.append((draw(st.sampled_from(["+", "-"])), body))
    return "".join(sign + body if i or sign == "-" else body for i, (sign, body) in enumerate(terms)), terms


@st.composite
def _symbolic_pairs(draw):
    gold, terms = draw(_symbolic())
    change = draw(st.sampled_from(["same", "reorder", "other"]))
    if change == "reorder":
        terms = draw(st.permutations(terms))
        pred = "".join(sign + body if i or sign == "-" else body for i, (sign, body) in enumerate(terms))
    else:
        pred = gold if change == "same" else draw(_symbolic())[0]
    return pred, gold


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_symbolic_pairs())
def test_symbolic_fast_path_equals_math_verify(pair):
    pred, gold = pair
    assert m.verify(pred, gold, timeout_s=60).correct == oracle(pred, gold), (pred, gold)


@pytest.mark.parametrize(
    "pred, gold",
    [
        ("2\\frac{1}{2}", "\\frac{5}{2}"),  # a mixed number for latex2sympy
        ("2\\frac{1}{2}", "1"),
        ("x", "1x"),  # symbols are compared by name there
        ("nk", "kn"),
        ("\\sqrt{45}", "3\\sqrt{5}"),
        ("\\sqrt{25}", "5"),
        ("\\frac{3\\pi}{4}", "\\pi \\cdot \\frac{3}{4}"),
        ("x^{2}\\cdot 3+5", "5+3x^{2}"),
        ("0.5\\pi", "\\frac{\\pi}{2}"),
        ("\\sqrt{999983}\\sqrt{999979}\\sqrt{999961}", "1"),  # too large to factor: left to sympy
    ],
)
def test_symbolic_edge_cases_equal_math_verify(pred, gold):
    assert m.verify(pred, gold, timeout_s=60).correct == oracle(pred, gold)


@pytest.mark.parametrize(
    "pred, gold",
    [
        ("0.333333", "1/3"),  # rounded to 6 places: equal
        ("0.3333", "1/3"),
        ("5.0", "5"),
        ("5.0000001", "5"),  # an integer gold is compared exactly
        ("0.5000001", "0.5"),
        ("-0", "0"),
        ("-0.0", "0"),
        ("0.1", r"\frac{1}{10}"),
        ("1000000", "999999.999999"),
        ("2.5", r"\dfrac{5}{2}"),
        ("007", "7"),
        ("+5", "5"),
        ("5.", "5"),
        ("1,000", "1000"),
    ],
)
def test_number_edge_cases_equal_math_verify(pred, gold):
    assert m.verify(pred, gold, timeout_s=60).correct == oracle(pred, gold)


def test_fast_paths_skip_sympy():
    before = m.cache_info()
    assert m.verify_answer("0.5", r"\frac{1}{2}") and not m.verify_answer("7", "-7")
    assert m.verify_answer(r"\dfrac{3}{6}", "1/2") and not m.verify_answer("1/3", "0.33")
    assert m.verify_answer("( 1 , 3 ]", r"\left(1, 3\right]") and not m.verify_answer("[1, 3]", "(1, 3]")
    assert m.verify_answer(r"\sqrt{45}", r"3\sqrt{5}") and not m.verify_answer("3x^2-5", "3x^{2}+5")
    assert compute_score("math", "<answer>$26$</answer>", "26")["acc"] == 1.0  # one formula around a number
    after = m.cache_info()
    assert after.fast_path - before.fast_path == 9 and after.checks == before.checks


# ------------------------------------------------------------------------------------------------ caches


def test_gold_is_parsed_once_for_a_group_of_rollouts():
    gold = r"(x+1)^{2}"  # outside every fast path: each check goes to sympy
    preds = [rf"(x+1)^{{2}}+{k}-{k}" for k in range(15)] + ["x^2+2x+1"]
    before = m.cache_info()
    verdicts = [m.verify_answer(p, gold, timeout_s=60) for p in preds]
    after = m.cache_info()
    assert all(verdicts)
    assert after.checks - before.checks == 16
    assert after.gold_parses - before.gold_parses == 1


def test_repeated_pairs_come_from_the_verdict_cache():
    pair = (r"x^2+2x+1", r"(x+1)^2")
    assert m.verify_answer(*pair, timeout_s=60)
    before = m.cache_info()
    assert m.verify_answer(*pair, timeout_s=60)
    after = m.cache_info()
    assert after.cache_hits - before.cache_hits == 1 and after.checks == before.checks


def test_prediction_identical_to_gold_skips_sympy_once_gold_is_known():
    gold = r"\{1, 2, 3\}"
    assert m.verify_answer(r"\{1, 2\}", gold, timeout_s=60) is False  # a real check learns the gold
    before = m.cache_info()
    assert m.verify_answer(gold, gold)
    after = m.cache_info()
    assert after.fast_path - before.fast_path == 1 and after.checks == before.checks


def test_gold_that_does_not_match_itself_is_not_fast_pathed():
    gold = r"\text{}"  # parses to nothing: math-verify calls it wrong even against itself
    assert m.verify(gold, gold, timeout_s=60).correct is oracle(gold, gold) is False
    assert m.verify(gold, gold, timeout_s=60).correct is False


# ------------------------------------------------------------------------------------------- time budget


def test_timeouts_are_not_cached():
    """Issue 11, item 11: a timeout under momentary load (here a budget no check can meet) is not remembered."""
    pair = (r"(x+7)^{2}-x^{2}", r"14x+49")  # outside every fast path and never checked before
    assert m.verify(*pair, timeout_s=1e-4) == m.Verdict(correct=False, timeout=True)
    before = m.cache_info()
    assert m.verify(*pair, timeout_s=60) == m.Verdict(correct=True, timeout=False)
    assert m.cache_info().checks == before.checks + 1 and m.cache_info().cache_hits == before.cache_hits
    assert m.verify(*pair, timeout_s=60) == m.Verdict(correct=True, timeout=False)  # a real verdict is cached
    assert m.cache_info().cache_hits == before.cache_hits + 1


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_answer_times_out_within_budget(name):
    start = time.monotonic()
    verdict = m.verify(HOSTILE[name], "1", timeout_s=BUDGET)
    assert time.monotonic() - start < BUDGET + SLACK
    assert verdict == m.Verdict(correct=False, timeout=True)


def test_budget_holds_in_threads():
    """verl calls compute_score through run_in_executor: math-verify's signal timeouts fail there."""
    honest = (r"\sqrt{2}/2", r"\frac{1}{\sqrt{2}}", 60.0)  # a roomy budget: it shares the CPU with hostile ones
    jobs = [(HOSTILE["tower"], f"{k}", BUDGET) for k in range(3)] + [honest] * 3

    def run(job):
        start = time.monotonic()
        verdict = m.verify(job[0], job[1], timeout_s=job[2])
        return verdict, time.monotonic() - start, threading.current_thread() is threading.main_thread()

    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(run, jobs))
    for job, (verdict, elapsed, on_main) in zip(jobs, results, strict=True):
        assert not on_main
        if job is honest:
            assert verdict == m.Verdict(correct=True, timeout=False)
        else:
            assert verdict == m.Verdict(correct=False, timeout=True) and elapsed < BUDGET + SLACK


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_works_in_worker_processes(method):
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context(method)) as pool:
        pool.submit(m.warmup).result()  # the child's own checker server
        assert pool.submit(m.verify, "x^2+2x+1", "(x+1)^2", timeout_s=60).result() == m.Verdict(True)
        assert pool.submit(m.verify_answer, r"\{3, 1\}", r"\{1, 3\}", timeout_s=60).result()
        start = time.monotonic()
        verdict = pool.submit(m.verify, HOSTILE["tower"], "2", timeout_s=BUDGET).result()
        assert time.monotonic() - start < BUDGET + SLACK
        assert verdict == m.Verdict(correct=False, timeout=True)
    k = len(method)  # a pair not seen before: it needs a checker
    assert m.verify_answer(f"(x-{k})^2", f"({k}-x)^2", timeout_s=60)  # our own checkers survived the fork


def test_without_checker_processes_checks_run_in_process(monkeypatch):
    """If the checker server cannot start (say, no fork), answers are still checked, in this process."""
    monkeypatch.setattr(verification, "_STATE", verification._State())
    monkeypatch.setattr(verification, "_CHECKER_TARGET", "no_such_module:no_such_worker")
    before = m.cache_info().local_checks
    assert m.verify_answer("(x+2)^2", "x^2+4x+4", timeout_s=10)
    assert m.cache_info().local_checks == before + 1


# ------------------------------------------------------------------------------------------------ scorer


@pytest.mark.parametrize("scheme", ["r1", "simplerl", "logicrl", "azr"])
def test_score_sets_pred_acc_and_format(scheme):
    r = compute_score("math", "<think>two halves</think><answer>\\boxed{1}</answer>", 1.0, scheme=scheme)
    assert (r["pred"], r["acc"], r["format_ok"], r["timeout"], r["error"]) == ("1", 1.0, True, False, "")
    wrong = compute_score("math", r"so \boxed{2}", "1", scheme=scheme)
    assert wrong["acc"] == 0.0 and wrong["pred"] == "2"


@pytest.mark.parametrize("bad", [None, ["1"], {"answer": "1"}, True, float("nan")])
def test_bad_ground_truth_is_the_failure_score_with_a_message(bad):
    r = compute_score("math", r"\boxed{1}", bad, scheme="simplerl")
    assert r["score"] == failure_score("simplerl") and r["error"]
    assert "ground_truth" in r["error"]


def test_numeric_ground_truth_types():
    np = pytest.importorskip("numpy")
    for gold in (np.int64(12), np.float32(0.5), 12, "12"):
        answer = "0.5" if float(gold) == 0.5 else "12"
        assert compute_score("gsm8k", rf"\boxed{{{answer}}}", gold, scheme="simplerl")["acc"] == 1.0


def test_timeout_kwarg_is_honoured_and_reported():
    start = time.monotonic()
    r = compute_score("math", rf"\boxed{{{HOSTILE['tower']}}}", "3", scheme="simplerl", timeout_s=0.5)
    assert time.monotonic() - start < 0.5 + SLACK
    assert r["timeout"] is True and r["acc"] == 0.0 and r["score"] == -0.5
