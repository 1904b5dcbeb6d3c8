r"""Differential test: ``reward_fns.math`` against live math-verify on thousands of generated answer pairs.

A seeded generator (``SEED``; ``MATH_DIFF_SEED`` / ``MATH_DIFF_PAIRS`` change seed and size) writes golds and
predictions the way models and data sets write them: bare LaTeX, one formula (``$…$``, ``$$…$$``, ``\(…\)``,
``\[…\]``), prose around a formula ("The answer is $26$", "Answer $ 9 $"); thousands separators (spaces,
commas, ``\,``, ``{,}``), decimal commas, relations (``!=``, ``\neq``, ``>=`` ...), equations (``x = 5``),
matrices, percent, degrees and units, ``\dfrac``, ``\left(``, intervals, square roots and pi, sets.

The oracle is math-verify itself, called here directly: ``verify(parse(G), parse(P))`` with default configs
and timeouts, where a *bare* string (the generator knows which ones it wrote without a delimiter) is first
wrapped in ``\boxed{}`` and a delimited one is parsed as it is; an answer that came out of a box in a response
is parsed as that box. Our side goes through the public entry points: :func:`reward_fns.math.verify_answer`
and :func:`reward_fns.compute_score` (the answer in ``<answer>…</answer>`` or in ``\boxed{…}``). Pairs on
which math-verify itself times out or raises are left out and counted. Zero disagreements expected.
"""

from __future__ import annotations

import logging
import os
import random
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest
from math_verify import parse, verify
from math_verify.errors import TimeoutException

import reward_fns.math as m
from reward_fns import compute_score

logging.getLogger("math_verify").setLevel(logging.CRITICAL)

SEED = int(os.environ.get("MATH_DIFF_SEED", "20261124"))
N_PAIRS = int(os.environ.get("MATH_DIFF_PAIRS", "2400"))


@dataclass(frozen=True)
class Pair:
    family: str
    gold: str
    gold_delimited: bool  # written with a delimiter: math-verify parses it as it is (else boxed)
    pred: str
    pred_delimited: bool
    entry: str  # "verify" (verify_answer), "tag" (<answer>pred</answer>), "box" (\boxed{pred})
    style: str  # how pred is presented: bare, dollar, prose ...


# ---------------------------------------------------------------------------------------- answer families
# Each family returns (gold, equivalent forms, wrong forms), all bare LaTeX (no $, \( or \[ in them).


def _group(v: int, sep: str) -> str:
    s = f"{abs(v):,}".replace(",", sep)
    return ("-" if v < 0 else "") + s


def _integer(r: random.Random) -> tuple[str, list[str], list[str]]:
    v = r.choice([r.randint(-99, 999), r.randint(1000, 99_999), r.randint(100_000, 9_999_999)])
    eq = [str(v), f"{v}.0", f"\\frac{{{2 * v}}}{{2}}", f"{v}.00"]
    wrong = [str(v + 1), str(v - 1), str(10 * v + 3)]
    if abs(v) >= 1000:
        eq += [_group(v, sep) for sep in (",", "{,}", "\\,", " ", "\\ ", "\\;", "~")]
        wrong += [_group(v + 1000, ","), _group(v, ",")[:-1]]
    gold = r.choice([str(v), str(v), _group(v, ",")]) if abs(v) >= 1000 else str(v)
    return gold, eq, wrong


def _decimal(r: random.Random) -> tuple[str, list[str], list[str]]:
    whole, frac = r.randint(0, 999), r.randint(1, 99)
    text = f"{whole}.{frac:02d}".rstrip("0")
    sign = r.choice(["", "", "-"])
    eq = [sign + text, sign + text + "0", sign + text.replace(".", ","), sign + text.replace(".", "{,}")]
    eq.append(f"{sign}\\frac{{{whole * 100 + frac}}}{{100}}")
    wrong = [sign + f"{whole}.{frac + 1:02d}", sign + f"{whole + 1}.{frac:02d}", sign + str(whole)]
    return sign + text, eq, wrong


def _fraction(r: random.Random) -> tuple[str, list[str], list[str]]:
    q = r.choice([2, 3, 4, 5, 6, 7, 8, 9, 12, 16])
    p = r.choice([k for k in range(1, 3 * q) if _gcd(k, q) == 1])
    s = r.choice(["", "", "-"])
    eq = [
        f"{s}\\frac{{{p}}}{{{q}}}",
        f"{s}\\dfrac{{{p}}}{{{q}}}",
        f"{s}\\tfrac{{{p}}}{{{q}}}",
        f"{s}{p}/{q}",
        f"\\frac{{{s}{p}}}{{{q}}}",
        f"{s}\\frac{{{2 * p}}}{{{2 * q}}}",
        f"{s}\\dfrac{p}{q}" if p < 10 and q < 10 else f"{s}\\dfrac{{{p}}}{{{q}}}",
        f"{s}{p / q:.6f}".rstrip("0"),
        f"{s}{p / q:.2f}",
    ]
    wrong = [f"{s}\\frac{{{p + 1}}}{{{q}}}", f"{s}\\frac{{{q}}}{{{p}}}", f"\\frac{{{p}}}{{{q}}}" if s else f"-{p}/{q}"]
    return r.choice(eq[:4]), eq, wrong


def _gcd(a: int, b: int) -> int:
    while b:
        a, b = b, a % b
    return a


_REL = {
    "ne": ["!=", "\\neq", "\\ne", "\\not="],
    "ge": [">=", "\\geq", "\\ge", "\\geqslant"],
    "le": ["<=", "\\leq", "\\le", "\\leqslant"],
    "gt": [">"],
    "lt": ["<"],
}
_FLIP = {"ge": "le", "le": "ge", "gt": "lt", "lt": "gt", "ne": "ne"}


def _relation(r: random.Random) -> tuple[str, list[str], list[str]]:
    var, v, rel = r.choice("xyan"), r.randint(-9, 20), r.choice(list(_REL))
    ops = _REL[rel]
    eq = [f"{var} {op} {v}" for op in ops] + [f"{var}{op}{v}" for op in ops]
    eq += [f"{v} {op} {var}" for op in _REL[_FLIP[rel]]]
    other = r.choice([k for k in _REL if k != rel])
    wrong = [f"{var} {r.choice(_REL[other])} {v}", f"{var} {ops[0]} {v + 1}", str(v), f"{var} = {v}"]
    return r.choice([f"{var} {ops[0]} {v}", f"{var} {ops[-1]} {v}"]), eq, wrong


def _equation(r: random.Random) -> tuple[str, list[str], list[str]]:
    if r.random() < 0.6:
        var, v = r.choice("xyk"), r.randint(-20, 50)
        eq = [f"{var} = {v}", f"{var}={v}", str(v), f"{v} = {var}", f"{var} = {v}.0"]
        wrong = [f"{var} = {v + 1}", f"{var} = -{abs(v) + 1}", f"{'z' if var != 'z' else 'w'} = {v}"]
        return r.choice([f"{var} = {v}", str(v)]), eq, wrong
    a, b = r.randint(2, 9), r.randint(1, 9)
    eq = [f"y = {a}x + {b}", f"y = {b} + {a}x", f"y={a}x+{b}", f"{a}x + {b}", f"y = {a} x + {b}"]
    wrong = [f"y = {a}x - {b}", f"y = {a + 1}x + {b}", f"y = {b}x + {a}"]
    return f"y = {a}x + {b}", eq, wrong


def _matrix(r: random.Random) -> tuple[str, list[str], list[str]]:
    rows, cols = r.choice([(2, 2), (2, 1), (1, 3), (3, 1), (2, 3)])
    a = [[r.randint(-9, 9) for _ in range(cols)] for _ in range(rows)]

    def mat(x: list[list[int]], env: str = "pmatrix", sep: str = " & ", nl: str = " \\\\ ") -> str:
        return f"\\begin{{{env}}}" + nl.join(sep.join(map(str, row)) for row in x) + f"\\end{{{env}}}"

    changed = [row[:] for row in a]
    changed[0][0] += 1
    transposed = [list(col) for col in zip(*a, strict=True)]
    eq = [mat(a), mat(a, "bmatrix"), mat(a, sep="&", nl="\\\\"), mat(a, "pmatrix", " &  ", " \\\\\n")]
    wrong = [mat(changed), mat(transposed) if transposed != a else mat(changed, "bmatrix"), mat(a, "vmatrix")]
    return mat(a, r.choice(["pmatrix", "bmatrix"])), eq, wrong


def _percent(r: random.Random) -> tuple[str, list[str], list[str]]:
    v = r.choice([5, 10, 12, 20, 25, 40, 50, 75, 80, 150])
    eq = [f"{v}\\%", f"{v}%", f"{v} \\%", str(v), f"{v / 100:g}", f"{v}\\text{{ percent}}", f"{v} percent"]
    wrong = [f"{v + 5}\\%", f"{v + 5}", f"{v / 10:g}"]
    return r.choice([f"{v}\\%", str(v), f"{v}%"]), eq, wrong


def _degrees(r: random.Random) -> tuple[str, list[str], list[str]]:
    v, pi = r.choice([(30, "\\frac{\\pi}{6}"), (45, "\\frac{\\pi}{4}"), (60, "\\frac{\\pi}{3}"), (90, "\\frac{\\pi}{2}"),
                      (120, "\\frac{2\\pi}{3}"), (135, "\\frac{3\\pi}{4}")])  # fmt: skip
    eq = [f"{v}^\\circ", f"{v}^{{\\circ}}", f"{v}°", str(v), f"{v}\\text{{ degrees}}", f"{v} degrees", pi]
    wrong = [f"{v + 15}^\\circ", str(v + 15), f"{v}^\\circ C"]
    return r.choice([f"{v}^\\circ", str(v), f"{v}^{{\\circ}}"]), eq, wrong


def _units(r: random.Random) -> tuple[str, list[str], list[str]]:
    v, unit = r.randint(1, 500), r.choice(["cm", "m", "kg", "km", "dollars", "units", "hours", "cm^2", "m/s"])
    eq = [str(v), f"{v} \\text{{ {unit}}}", f"{v}\\text{{{unit}}}", f"{v} {unit}", f"{v}\\,\\text{{{unit}}}",
          f"{v} \\mathrm{{{unit}}}", f"{v}\\mbox{{ {unit}}}", f"\\${v}", f"\\$ {v}", f"{v}.00"]  # fmt: skip
    wrong = [f"{v + 1} \\text{{ {unit}}}", str(v + 1), f"\\${v + 1}"]
    return r.choice([str(v), f"{v} \\text{{ {unit}}}", f"\\${v}"]), eq, wrong


def _interval(r: random.Random) -> tuple[str, list[str], list[str]]:
    lo, hi = r.randint(-20, 5), r.randint(6, 40)
    lb, rb = r.choice("(["), r.choice(")]")
    lo_s = r.choice([str(lo), str(lo), "-\\infty"])
    if lo_s == "-\\infty":
        lb = "("
    eq = [f"{lb}{lo_s}, {hi}{rb}", f"{lb}{lo_s},{hi}{rb}", f"\\left{lb}{lo_s}, {hi}\\right{rb}",
          f"\\left{lb} {lo_s} , {hi} \\right{rb}", f"{lb} {lo_s}, {hi} {rb}"]  # fmt: skip
    flip = {"(": "[", "[": "("}
    wrong = [
        f"{flip[lb]}{lo_s}, {hi}{rb}",
        f"{lb}{lo_s}, {hi + 1}{rb}",
        f"\\left{lb}{lo_s}, {hi}\\right{')' if rb == ']' else ']'}",
    ]
    if r.random() < 0.3:  # a pair / tuple instead
        a, b, c = r.randint(-9, 9), r.randint(-9, 9), r.randint(-9, 9)
        eq = [f"({a}, {b}, {c})", f"\\left({a},{b},{c}\\right)", f"\\left( {a}, {b}, {c} \\right)", f"({a},{b},{c})"]
        wrong = [
            f"({a}, {c}, {b})" if b != c else f"({a}, {b}, {c + 1})",
            f"({a}, {b})",
            f"\\left({a + 1}, {b}, {c}\\right)",
        ]
        return eq[0], eq, wrong
    return eq[0], eq, wrong


def _radical(r: random.Random) -> tuple[str, list[str], list[str]]:
    a, b = r.randint(2, 9), r.choice([2, 3, 5, 6, 7, 10])
    if r.random() < 0.5:
        eq = [
            f"{a}\\sqrt{{{b}}}",
            f"\\sqrt{{{a * a * b}}}",
            f"{a}\\sqrt{b}",
            f"\\sqrt{{{b}}} \\cdot {a}",
            f"{a} \\sqrt{{{b}}}",
        ]
        wrong = [f"{a}\\sqrt{{{b + 1}}}", f"{a + 1}\\sqrt{{{b}}}", f"\\sqrt{{{a * b}}}"]
        return eq[0], eq, wrong
    p, q = r.randint(1, 7), r.choice([2, 3, 4, 6])
    eq = [f"\\frac{{{p}\\pi}}{{{q}}}", f"\\dfrac{{{p}\\pi}}{{{q}}}", f"\\frac{{{p}}}{{{q}}}\\pi", f"{p}\\pi/{q}"]
    wrong = [f"\\frac{{{p + 1}\\pi}}{{{q}}}", f"\\frac{{{p}}}{{{q}}}", f"{p}\\pi"]
    return eq[0], eq, wrong


def _set(r: random.Random) -> tuple[str, list[str], list[str]]:
    a, b = r.sample(range(-9, 15), 2)
    eq = [
        f"{a}, {b}",
        f"\\{{{a}, {b}\\}}",
        f"{b}, {a}",
        f"\\{{{b},{a}\\}}",
        f"{a} \\text{{ and }} {b}",
        f"x = {a}, x = {b}",
    ]
    wrong = [f"{a}, {b + 1}", str(a), f"\\{{{a}\\}}"]
    return r.choice([f"{a}, {b}", f"\\{{{a}, {b}\\}}"]), eq, wrong


FAMILIES: dict[str, Callable[[random.Random], tuple[str, list[str], list[str]]]] = {
    "integer": _integer,
    "decimal": _decimal,
    "fraction": _fraction,
    "relation": _relation,
    "equation": _equation,
    "matrix": _matrix,
    "percent": _percent,
    "degrees": _degrees,
    "units": _units,
    "interval": _interval,
    "radical": _radical,
    "set": _set,
}

# ---------------------------------------------------------------------------------------- presentations
# (style, template, delimited): how a prediction is written around its core answer X.
PRESENTATIONS = [
    ("bare", "{}", False),
    ("dollar", "${}$", True),
    ("dollar_spaced", "$ {} $", True),
    ("display_dollar", "$${}$$", True),
    ("paren", "\\({}\\)", True),
    ("bracket", "\\[{}\\]", True),
    ("prose_dollar", "The answer is ${}$", True),
    ("prose_dollar", "Answer $ {} $", True),
    ("prose_dollar", "The solution is ${}$", True),
    ("prose_dollar", "Therefore, the final answer is ${}$.", True),
    ("prose_display", "So the answer is $${}$$", True),
    ("prose_display", "We conclude: $$ {} $$", True),
    ("prose_paren", "The answer is \\({}\\).", True),
    ("prose_paren", "Final answer: \\( {} \\)", True),
    ("prose_bare", "The answer is {}", False),
]
_STYLE_WEIGHTS = [6, 3, 1, 2, 2, 1, 2, 2, 2, 1, 1, 1, 2, 1, 1]


def generate(n: int, seed: int) -> list[Pair]:
    r = random.Random(seed)
    names = sorted(FAMILIES)
    pairs = []
    for i in range(n):
        family = names[i % len(names)]
        gold, eq, wrong = FAMILIES[family](r)
        pick = r.random()
        core = gold if pick < 0.3 else r.choice(eq) if pick < 0.75 else r.choice(wrong)
        style, template, delimited = r.choices(PRESENTATIONS, _STYLE_WEIGHTS)[0]
        gold_delimited = r.random() < 0.1
        gold_text = f"${gold}$" if gold_delimited else gold
        entry = r.choice(["verify", "verify", "tag", "box"])
        pairs.append(Pair(family, gold_text, gold_delimited, template.format(core), delimited, entry, style))
    return pairs


PAIRS = generate(N_PAIRS, SEED)

# ---------------------------------------------------------------------------------------------- both sides


def _as_parsed(text: str, delimited: bool) -> str:
    return text if delimited else "\\boxed{" + text + "}"


def oracle(pair: Pair) -> bool | None:
    """math-verify's verdict, or None where math-verify itself times out or raises (the pair is left out)."""
    gold = _as_parsed(pair.gold, pair.gold_delimited)
    pred = "\\boxed{" + pair.pred + "}" if pair.entry == "box" else _as_parsed(pair.pred, pair.pred_delimited)
    try:
        return bool(verify(parse(gold, raise_on_error=True), parse(pred, raise_on_error=True), raise_on_error=True))
    except (Exception, TimeoutException):
        return None


def ours(pair: Pair) -> tuple[bool, bool]:
    """(verdict, timed out) through the public entry points."""
    if pair.entry == "verify":
        v = m.verify(pair.pred, pair.gold, timeout_s=60)
        return v.correct, v.timeout
    response = "<think>working...</think> " + (
        f"<answer>{pair.pred}</answer>" if pair.entry == "tag" else f"<answer>so \\boxed{{{pair.pred}}}</answer>"
    )
    result = compute_score("math", response, pair.gold, scheme="r1", timeout_s=60)
    return bool(result["acc"]), bool(result["timeout"])


def test_generator_covers_every_family_presentation_and_entry():
    assert len(PAIRS) >= 2000
    assert set(Counter(p.family for p in PAIRS)) == set(FAMILIES)
    assert set(Counter(p.style for p in PAIRS)) == {s for s, _, _ in PRESENTATIONS}
    assert set(Counter(p.entry for p in PAIRS)) == {"verify", "tag", "box"}
    texts = " ".join(p.pred for p in PAIRS)
    for needle in ("{,}", "\\,", "1 0", ",5", "!=", "\\neq", ">=", "pmatrix", "\\%", "^\\circ", "\\text{",
                   "\\dfrac", "\\left(", "x = ", "The answer is $", "$$", "\\("):  # fmt: skip
        assert needle in texts, needle


def test_verdicts_equal_math_verify_on_generated_pairs():
    distinct = list(dict.fromkeys(PAIRS))
    m.warmup()
    start = time.monotonic()
    with ThreadPoolExecutor(4) as pool:  # ours in threads (checker processes) while the oracle runs here
        futures = [pool.submit(ours, p) for p in distinct]
        truth = [oracle(p) for p in distinct]  # the main thread: math-verify's own signal timeouts hold
        results = [f.result() for f in futures]
    elapsed = time.monotonic() - start
    checked = [(p, t, got) for p, t, got in zip(distinct, truth, results, strict=True) if t is not None]
    excluded = len(distinct) - len(checked)
    disagreements = [(p, t, got) for p, t, got in checked if got != (t, False)]
    print(
        f"\n{len(PAIRS)} pairs, {len(distinct)} distinct: {len(checked)} checked"
        f" ({sum(t for _, t, _ in checked)} equal), {excluded} left out (math-verify raised or timed out);"
        f" {elapsed:.1f} s; {len(disagreements)} disagreements {dict(Counter(p.family for p, _, _ in disagreements))}"
    )
    assert excluded <= len(PAIRS) // 100
    assert len(checked) // 4 < sum(t for _, t, _ in checked) < 3 * len(checked) // 4  # both verdicts well represented
    shown = "\n".join(
        f"  [{p.family}/{p.style}/{p.entry}] gold={p.gold!r} pred={p.pred!r}: math-verify {t}, ours {g}"
        for p, t, g in disagreements[:40]
    )
    assert not disagreements, f"{len(disagreements)} disagreements with math-verify:\n{shown}"


@pytest.mark.parametrize(
    "response, gold",
    [
        ("<answer>The answer is $26$</answer>", "26"),
        ("<answer>Answer $ 9 $</answer>", "9"),
        ("<answer>The solution is $x != 5$</answer>", "x \\neq 5"),
        ("<answer>So the answer is \\(\\dfrac{1}{2}\\).</answer>", "0.5"),
        ("<answer>$$ 1{,}000 $$</answer>", "1000"),
    ],
)
def test_prose_answers_around_a_formula_are_scored_as_math_verify_reads_them(response, gold):
    """Issue 11, item 10: the answer tag's content is parsed as written when it holds a formula."""
    content = response.removeprefix("<answer>").removesuffix("</answer>")
    assert verify(parse(f"\\boxed{{{gold}}}"), parse(content))  # math-verify says equal
    assert compute_score("math", response, gold)["acc"] == 1.0
    assert m.verify_answer(content, gold)
