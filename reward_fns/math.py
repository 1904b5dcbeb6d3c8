r"""Math answers: extract the final answer of a response and check it against the gold with math-verify.

Three verbs, from the outside in:

- :func:`extract_answer` takes the last ``\boxed{…}`` (nested braces; also ``\fbox{…}`` and ``\boxed 5``),
  else the last ``<answer>…</answer>`` content;
- :func:`verify_answer` / :func:`verify` say whether an extracted answer equals the gold;
- :func:`score` is the ``math`` scorer that :func:`reward_fns.compute_score` dispatches to.

**Semantics.** A verdict is exactly math-verify's default ``verify(parse(gold), parse(pred))`` (the
``math_verify`` package of Kydlíček et al., Hugging Face), with both strings first made parseable by
:func:`wrap_latex`: a bare ``\frac{1}{2}`` would silently fail to parse, so it is read as
``\boxed{\frac{1}{2}}``. Fast paths answer first, in exact arithmetic, where math-verify's outcome is
known: plain numbers (integers, decimals, ``a/b``, ``\frac{a}{b}``; decimals within 1e-5 of each other
are left to sympy's rounding), intervals and tuples of plain numbers, and a small LaTeX subset (sums of
rational multiples of square roots, pi and powers of x, y, z, n, k: ``3\sqrt{5}``, ``\frac{3\pi}{4}``,
``5+3x^{2}``). Then a prediction identical to a gold whose parse is known to match itself, and a cache
of recent (prediction, gold) verdicts. Everything else goes to sympy. tests/test_math.py checks every
fast path against live math-verify (its own regression cases plus property-based pairs).

**Time budget.** math-verify's own timeouts use ``signal.alarm``, which works only on the main thread;
verl calls reward functions from a thread pool (``run_in_executor``), where those timeouts are
refused, and a signal cannot interrupt a long C call (big-integer powers) anyway. So the sympy path
runs in checker processes and the budget is enforced from outside: a checker that has not answered
when the budget (``timeout_s``) runs out is killed with SIGKILL and the answer counts as wrong with
``timeout=True``. This holds in any thread and in any worker process, and never raises. Checkers are
forked on demand (a few ms) from a small pre-started server process that has already imported
math-verify, so a killed checker is replaced at once; the reward process itself never forks and never
imports sympy. Each checker keeps an LRU cache of parsed strings, and calls are routed to the checker
that already holds their gold, so the gold shared by the n rollouts of a prompt is parsed once. The
server starts on first use (about a second, once per process; that start is not charged to the first
call's budget); call :func:`warmup` to pay it up front.

>>> extract_answer(r"so $x = \boxed{\frac{1}{2}}$.")
'\\frac{1}{2}'
>>> verify_answer("0.5", r"\frac{1}{2}")
True
>>> score(r"<think>1+1</think><answer>\boxed{2}</answer>", "2", {}, "r1")["score"]
2.0
"""

from __future__ import annotations

import atexit
import hashlib
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from multiprocessing.connection import Connection
from numbers import Real
from typing import Any

from reward_fns import format as fmt
from reward_fns import schemes

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "CheckerStats",
    "Verdict",
    "cache_info",
    "extract_answer",
    "gold_text",
    "score",
    "score_answer",
    "verify",
    "verify_answer",
    "warmup",
    "wrap_latex",
]

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 5.0  # per call; math-verify's own default is 5 s per parse and per comparison


def _max_checkers() -> int:
    """Checker processes per reward process (idle ones cost little: forked, copy-on-write)."""
    value = os.environ.get("REWARD_FNS_MATH_CHECKERS", "")
    if not value:
        return min(16, max(4, os.cpu_count() or 1))
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"REWARD_FNS_MATH_CHECKERS must be a positive integer, got {value!r}")
    return int(value)


MAX_CHECKERS = _max_checkers()
CHECKER_MEMORY_BYTES = 4 << 30  # address-space limit of a checker process (a hostile power fails fast)
PARSE_CACHE_SIZE = 4096  # parsed strings kept per checker process
VERDICT_CACHE_SIZE = 1 << 16  # (pred, gold) verdicts kept in the calling process
_CACHE_MAX_CHARS = 4096  # longer strings are cached under a digest (a 1 MB junk answer must not pin memory)
_SERVER_START_TIMEOUT_S = 120.0


# ----------------------------------------------------------------------------------------------------
# Extraction
# ----------------------------------------------------------------------------------------------------

_BRACE_RE = re.compile(r"[{}]")
# math-verify joins adjacent boxes ("\boxed{-2} and \boxed{1}" -> "-2,1"); the same separators.
_SEPARATOR_RE = re.compile(r"\b(and|or)\b|,|;")
_DELIMITERS = (("$$", "$$"), ("\\[", "\\]"), ("\\(", "\\)"), ("$", "$"))


def _closing_brace(text: str, open_pos: int, limit: int) -> int | None:
    """Index of the brace closing ``text[open_pos]`` before ``limit``, or None (unbalanced)."""
    depth = 0
    for m in _BRACE_RE.finditer(text, open_pos, limit):
        if m.group() == "{":
            depth += 1
        else:
            depth -= 1
            if depth == 0:
                return m.start()
    return None


def _last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed``/``\\fbox``, joined with the boxes right before it the way
    math-verify's ``extract_boxed_content(mode="last")`` joins them. None when there is no box or the
    last one is unbalanced. Linear time: every scan stops at the start of the box after it."""
    results: list[str] = []
    limit = len(text)  # scans for a box never pass the start of the box after it
    later_start = -1
    while True:
        b, f = text.rfind("\\boxed", 0, limit), text.rfind("\\fbox", 0, limit)
        if b < 0 and f < 0:
            break
        start = max(b, f)
        pos = command_end = start + (6 if b > f else 5)
        while pos < limit and text[pos].isspace():
            pos += 1
        if pos >= limit:
            break
        if text[pos] != "{":
            if not results and pos > command_end:  # "\boxed 5": one bare token
                token = re.match(r"[^\s$]+", text[pos : min(limit, pos + 256)])
                if token:
                    results.append(token.group().rstrip(".,;"))
            break
        close = _closing_brace(text, pos, limit)
        if close is None:
            break  # unbalanced: a truncated final box is no answer; earlier boxes were not final
        content = text[pos + 1 : close].strip()
        if results:
            between = text[close + 1 : later_start]
            joined = len(between) < 10 or (
                content != results[-1] and len(between) < 70 and _SEPARATOR_RE.search(between) is not None
            )
            if not joined:
                break
        if not results or results[-1] != content:
            results.append(content)
        later_start = limit = start
    answer = ",".join(reversed(results)).strip()
    return answer or None


def _strip_delimiters(text: str) -> str:
    for left, right in _DELIMITERS:
        if len(text) > len(left) + len(right) and text.startswith(left) and text.endswith(right):
            inner = text[len(left) : -len(right)]
            if left not in inner and right not in inner:  # "$a$ and $b$" is not one formula
                return inner.strip()
    return text


def extract_answer(text: str) -> str | None:
    r"""The final answer of a response, or None when it has none.

    The last ``\boxed{…}`` wins (nested braces kept; ``\fbox{…}`` and ``\boxed 5`` count too). Boxes
    just before it are joined the way math-verify joins them (less than 10 characters apart, or less
    than 70 with a comma, semicolon, "and" or "or" between): ``\boxed{-2} and \boxed{1}`` gives ``-2,1``.
    Without a box, the content of the last ``<answer>…</answer>``, with one enclosing ``$…$``,
    ``$$…$$``, ``\(…\)`` or ``\[…\]`` removed. A last box with unbalanced braces (a truncated
    response) is no answer. Linear time; any string is safe.

    >>> extract_answer(r"First \boxed{1}. Checking that again it is wrong. The answer is \boxed{\frac{a}{b^{2}}}")
    '\\frac{a}{b^{2}}'
    >>> extract_answer("<think>...</think><answer> $x^2$ </answer>")
    'x^2'
    >>> extract_answer(r"\boxed{-2} and \boxed{1}")
    '-2,1'
    >>> extract_answer(r"\fbox{7}"), extract_answer(r"it is \boxed 5."), extract_answer(r"\boxed{12")
    ('7', '5', None)
    """
    if "\\boxed" in text or "\\fbox" in text:
        boxed = _last_boxed(text)
        if boxed is not None:
            return boxed
    answer = fmt.extract_tag(text, "answer")
    if answer is None:
        return None
    if "\\boxed" in answer or "\\fbox" in answer:
        return _last_boxed(answer)
    return _strip_delimiters(answer) or None


# ----------------------------------------------------------------------------------------------------
# Gold text, wrapping, fast paths
# ----------------------------------------------------------------------------------------------------


def gold_text(ground_truth: Any) -> str:
    """The gold answer as a string: a string as is, a finite real number in plain decimal notation.

    Anything else (list, dict, None, bool) raises ``TypeError``; NaN or infinity raise ``ValueError``.

    >>> gold_text(" 72 "), gold_text(3), gold_text(2.0), gold_text(1e-7)
    ('72', '3', '2', '0.0000001')
    >>> gold_text(["1", "2"])
    Traceback (most recent call last):
    ...
    TypeError: ground_truth must be a string or a number, got list (one gold answer per row)
    """
    if isinstance(ground_truth, str):
        return ground_truth.strip()
    if isinstance(ground_truth, Real) and not isinstance(ground_truth, bool):
        value = float(ground_truth)
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"ground_truth must be a finite number, got {ground_truth!r}")
        if value.is_integer() and abs(value) < 2**53:
            return str(int(value))
        return format(Decimal(repr(value)), "f")
    raise TypeError(
        f"ground_truth must be a string or a number, got {type(ground_truth).__name__} (one gold answer per row)"
    )


def wrap_latex(text: str) -> str:
    r"""The string math-verify parses for an answer: ``\boxed{text}``, unless ``text`` is already
    delimited (starts with ``$``, ``\(`` or ``\[``) or holds a box, in which case it is parsed as it is.

    A box is what math-verify reads best (and what the answer sat in): inside it ``\$5`` is a currency
    sign and ``12 $ and $ 13`` two numbers, as in the response.

    >>> wrap_latex(r"\frac{1}{2}"), wrap_latex("$x$"), wrap_latex(r"\boxed{3}"), wrap_latex(r"\$5")
    ('\\boxed{\\frac{1}{2}}', '$x$', '\\boxed{3}', '\\boxed{\\$5}')
    """
    text = text.strip()
    if text.startswith(("$", "\\(", "\\[")) or "\\boxed" in text or "\\fbox" in text:
        return text
    return "\\boxed{" + text + "}"


_NUMBER_RE = re.compile(
    r"""(?P<int>-?(?:0|[1-9]\d*))
    |(?P<dec>-?(?:0|[1-9]\d*)\.\d+)
    |(?P<sn>0|-?[1-9]\d*)/(?P<sd>[1-9]\d*)
    |(?P<fs>-?)\\[dtc]?frac\{(?P<fn>0|[1-9]\d*)\}\{(?P<fd>[1-9]\d*)\}""",
    re.VERBOSE | re.ASCII,  # ASCII: \d must not accept other scripts' digits
)
_NEAR = Fraction(1, 100_000)  # decimals closer than this are left to sympy's rounding rules


def _plain_number(text: str) -> tuple[Fraction, bool] | None:
    """(exact value, is a decimal) for the plain-number forms whose math-verify parse is known, else None."""
    if len(text) > 64:
        return None
    m = _NUMBER_RE.fullmatch(text)
    if m is None:
        return None
    if m["int"] is not None:
        return Fraction(int(m["int"])), False
    if m["dec"] is not None:
        digits = m["dec"].lstrip("-").replace(".", "").lstrip("0")
        value = Fraction(m["dec"])
        if len(digits) > 15 or abs(value) >= 10**9:  # keep to where binary floats hold every digit
            return None
        return value, True
    if m["sn"] is not None:
        return Fraction(int(m["sn"]), int(m["sd"])), False
    value = Fraction(int(m["fn"]), int(m["fd"]))
    return (-value if m["fs"] else value), False


def _numbers_verdict(pred: str, gold: str) -> bool | None:
    """math-verify's verdict for two plain numbers, or None where only sympy can tell.

    Equal values are equal for math-verify (sympy's structural, rounded or symbolic comparison).
    Different exact values (integers, fractions) are different. With a decimal involved, math-verify
    rounds to 6 places through sympy Floats, so values closer than 1e-5 are left to sympy itself.
    """
    p, g = _plain_number(pred), _plain_number(gold)
    if p is None or g is None:
        return None
    if p[0] == g[0]:
        return True
    if not (p[1] or g[1]) or abs(p[0] - g[0]) > _NEAR:
        return False
    return None


_LATEX_SPACE = " \t\n\r"  # what the LaTeX grammar skips (no other Unicode spaces)
_INFINITY = {"\\infty": 1, "+\\infty": 1, "-\\infty": -1}
_Element = tuple[Fraction, bool] | int  # a plain number (value, is a decimal), or +1 / -1 for +oo / -oo


@dataclass(frozen=True)
class _Bracketed:
    """A bracketed list of plain numbers as latex2sympy reads it: an interval or a tuple."""

    interval: bool
    left_open: bool
    right_open: bool
    items: tuple[_Element, ...]


def _element(text: str) -> _Element | None:
    text = text.strip(_LATEX_SPACE)
    if text in _INFINITY:
        return _INFINITY[text]
    if "/" in text:  # "a/b" becomes \frac only as a whole answer; inside a tuple sympy divides
        return None
    return _plain_number(text)


def _less(a: _Element, b: _Element) -> bool | None:
    """a < b, or None when too close to trust sympy's Float comparison the same way."""
    if isinstance(a, int) or isinstance(b, int):
        return (a == -1 if isinstance(a, int) else True) and (b == 1 if isinstance(b, int) else True)
    if abs(a[0] - b[0]) < Fraction(1, 10**9):
        return None
    return a[0] < b[0]


def _bracketed(text: str) -> _Bracketed | None:
    """``(a, b)``, ``[a, b)``, ``(a, b, c)`` ... of plain numbers and infinities, as latex2sympy parses them:
    two ascending ends make an interval; ``(…)`` or ``[…]`` around anything else make a tuple. Every other
    shape (empty or single-point intervals, ``(5, 1]``, nested brackets) is left to sympy (None)."""
    text = text.strip()
    if len(text) > 256:
        return None
    if text.startswith("\\left"):
        text = text[5:]
    if text[-7:-1] == "\\right":
        text = text[:-7] + text[-1]
    if len(text) < 2 or text[0] not in "([" or text[-1] not in ")]":
        return None
    inner = text[1:-1]
    if any(c in inner for c in "()[]") or "\\left" in inner or "\\right" in inner:
        return None
    items = [_element(part) for part in inner.split(",")]
    if len(items) < 2 or any(item is None for item in items):
        return None
    left_open, right_open = text[0] == "(", text[-1] == ")"
    if len(items) == 2:
        ascending = _less(items[0], items[1])
        if ascending is None:
            return None
        if ascending:  # sympy opens an infinite end whatever the bracket: [-oo, 3) is (-oo, 3)
            return _Bracketed(True, left_open or items[0] == -1, right_open or items[1] == 1, tuple(items))
    if left_open != right_open or any(isinstance(item, int) for item in items):
        return None  # (5, 1] is empty, and infinities make no tuple
    return _Bracketed(False, left_open, right_open, tuple(items))


def _element_verdict(gold: _Element, pred: _Element) -> bool | None:
    if isinstance(gold, int) or isinstance(pred, int):
        return gold == pred
    if gold[0] == pred[0]:
        return True
    if not (gold[1] or pred[1]) or abs(gold[0] - pred[0]) > _NEAR:
        return False
    return None


def _bracketed_verdict(pred: str, gold: str) -> bool | None:
    """math-verify's verdict for two intervals / tuples of plain numbers, or None where only sympy can tell.

    Mirrors math-verify's set comparison: intervals need the same open/closed ends and equal ends;
    tuples equal lengths and equal items in order; an open interval matches a pair item by item.
    """
    g, p = _bracketed(gold), _bracketed(pred)
    if g is None or p is None:
        return None
    if g.interval and p.interval:
        if (g.left_open, g.right_open) != (p.left_open, p.right_open):
            return False
    elif g.interval or p.interval:
        interval, pair = (g, p) if g.interval else (p, g)
        if not (interval.left_open and interval.right_open) or len(pair.items) != 2:
            return False
    elif len(g.items) != len(p.items):
        return False
    verdicts = [_element_verdict(a, b) for a, b in zip(g.items, p.items, strict=True)]
    if False in verdicts:
        return False
    return None if None in verdicts else True


# Exact sums of terms  c * sqrt(r) * pi^k * x^a * y^b ...  with rational c and square-free r, for a small
# LaTeX subset; latex2sympy reads these strings as the same real numbers / polynomials (see _exact_verdict).
_Monomial = tuple[int, int, tuple[tuple[str, int], ...]]  # (square-free radicand, power of pi, variables)
_Exact = dict[_Monomial, Fraction]
_EXACT_TOKEN_RE = re.compile(
    r"[ \t\n\r]*(\\[dtc]?frac(?![a-zA-Z])|\\sqrt(?![a-zA-Z])|\\pi(?![a-zA-Z])|\\cdot(?![a-zA-Z])"
    r"|\\times(?![a-zA-Z])|0(?!\d)|[1-9]\d{0,5}(?!\d)|[xyznk]|[-+/^{}])",
    re.ASCII,
)
_DIGITS = "0123456789"
_VARIABLES = "xyznk"  # letters no normalization touches (units strip "m", "s", "t"...; e, i are constants)


def _exact_tokens(text: str) -> list[str] | None:
    tokens, pos, end = [], 0, len(text.rstrip(_LATEX_SPACE))
    while pos < end:
        m = _EXACT_TOKEN_RE.match(text, pos)
        if m is None:
            return None
        tokens.append(m.group(1))
        pos = m.end()
    return tokens


def _square_free(n: int) -> tuple[int, int]:
    """n = k^2 * r with r square-free: (k, r). Trial division, so n is kept below 10^10 by the caller."""
    if n > 10**10:
        raise ValueError("radicand too large")
    k, r, f = 1, 1, 2
    while f * f <= n:
        while n % (f * f) == 0:
            n //= f * f
            k *= f
        f += 1
    return k, r * n


def _times(a: _Exact, b: _Exact) -> _Exact:
    out: _Exact = {}
    for (ra, pa, va), ca in a.items():
        for (rb, pb, vb), cb in b.items():
            k, r = _square_free(ra * rb)
            powers = dict(va)
            for v, e in vb:
                powers[v] = powers.get(v, 0) + e
            key = (r, pa + pb, tuple(sorted(powers.items())))
            out[key] = out.get(key, Fraction(0)) + ca * cb * k
    return {k: c for k, c in out.items() if c}


def _plus(a: _Exact, b: _Exact, sign: int = 1) -> _Exact:
    out = dict(a)
    for key, c in b.items():
        out[key] = out.get(key, Fraction(0)) + sign * c
    return {k: c for k, c in out.items() if c}


class _ExactParser:
    """expr := [+-] term ([+-] term)*;  term := factor ([\\cdot] factor)* [/ int];
    factor := int (first, or after \\cdot) | \\frac{expr}{constant} | \\sqrt{int} | \\pi | var [^digit | ^{int}]."""

    def __init__(self, tokens: list[str]) -> None:
        self.tokens, self.i = tokens, 0

    def peek(self) -> str | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self, expected: str | None = None) -> str:
        tok = self.peek()
        if tok is None or (expected is not None and tok != expected):
            raise ValueError(tok)
        self.i += 1
        return tok

    def expr(self) -> _Exact:
        sign = -1 if self.peek() == "-" else 1
        if self.peek() in ("-", "+"):
            self.take()
        total = _plus({}, self.term(), sign)
        while self.peek() in ("+", "-"):
            sign = 1 if self.take() == "+" else -1
            total = _plus(total, self.term(), sign)
        return total

    def term(self) -> _Exact:
        leading_integer = (self.peek() or "")[:1] in _DIGITS
        value = self.factor(first=True)
        if leading_integer and (self.peek() or "").endswith("frac"):
            raise ValueError("mixed number")  # latex2sympy reads 2\\frac{1}{2} as 5/2
        while self.peek() not in (None, "+", "-", "}", "/"):
            explicit = self.peek() in ("\\cdot", "\\times")  # "x \\cdot 3", never "x3"
            if explicit:
                self.take()
            value = _times(value, self.factor(first=explicit))
        if self.peek() == "/":
            self.take()
            den = self.integer()
            if den == 0 or self.peek() not in (None, "+", "-", "}"):
                raise ValueError("/")
            value = _times(value, {(1, 0, ()): Fraction(1, den)})
        return value

    def integer(self) -> int:
        tok = self.take()
        if tok[:1] not in _DIGITS:
            raise ValueError(tok)
        return int(tok)

    def factor(self, first: bool) -> _Exact:
        tok = self.take()
        if tok[:1] in _DIGITS and first:
            return {(1, 0, ()): Fraction(int(tok))} if tok != "0" else {}
        if tok.startswith("\\") and tok.endswith("frac"):
            self.take("{")
            num = self.expr()
            self.take("}")
            self.take("{")
            den = self.expr()
            self.take("}")
            if len(den) != 1 or next(iter(den)) != (1, 0, ()):
                raise ValueError("denominator")
            return _times(num, {(1, 0, ()): 1 / next(iter(den.values()))})
        if tok == "\\sqrt":
            self.take("{")
            radicand = self.integer()
            self.take("}")
            k, r = _square_free(radicand)
            return {(r, 0, ()): Fraction(k)} if radicand else {}
        if tok == "\\pi":
            return {(1, 1, ()): Fraction(1)}
        if tok in _VARIABLES:
            power = 1
            if self.peek() == "^":
                self.take()
                if self.peek() == "{":
                    self.take()
                    power = self.integer()
                    self.take("}")
                else:
                    digit = self.take()
                    if len(digit) != 1 or digit not in _DIGITS:
                        raise ValueError(digit)
                    power = int(digit)
            return {(1, 0, ((tok, power),)): Fraction(1)} if power else {(1, 0, ()): Fraction(1)}
        raise ValueError(tok)


def _exact(text: str) -> _Exact | None:
    """The exact value of a small-LaTeX answer (rationals, square roots, pi, polynomials), else None."""
    if len(text) > 200:
        return None
    tokens = _exact_tokens(text)
    if not tokens:
        return None
    parser = _ExactParser(tokens)
    try:
        value = parser.expr()
    except (ValueError, ZeroDivisionError):
        return None
    return value if parser.peek() is None else None


def _exact_verdict(pred: str, gold: str) -> bool | None:
    """math-verify's verdict for two answers of the small LaTeX subset of :func:`_exact`, else None.

    There latex2sympy yields real numbers or real polynomials, and math-verify's comparison (sympy
    equality, then ``evalf`` of the difference, then ``simplify``) says equal exactly when the values
    are. A lone variable is left to sympy (math-verify compares symbol names there) unless the strings
    are identical.
    """
    p, g = _exact(pred), _exact(gold)
    if p is None or g is None:
        return None
    if pred == gold:
        return True
    if any(list(v.items()) == [((1, 0, ((name, 1),)), 1)] for v in (p, g) for name in _VARIABLES):
        return None  # a bare symbol ("x", also "1x"): math-verify compares symbol names there, not values
    return p == g


class _LRU:
    """A small thread-safe LRU mapping."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._data: OrderedDict[Any, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Any) -> Any:
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    def put(self, key: Any, value: Any) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.size:
                self._data.popitem(last=False)


@dataclass(frozen=True)
class Verdict:
    """The outcome of one check: ``correct``, and ``timeout`` when the budget ran out (then wrong)."""

    correct: bool
    timeout: bool = False


@dataclass(frozen=True)
class CheckerStats:
    """Counters of this process since start (see :func:`cache_info`)."""

    fast_path: int  # answered without sympy: numbers, intervals / tuples, small exact LaTeX, known gold
    cache_hits: int  # answered from the (pred, gold) verdict cache
    checks: int  # sent to a checker process (sympy)
    gold_parses: int  # golds parsed by checker processes (cache misses)
    timeouts: int  # checks that ran out of budget (checker killed)
    crashes: int  # checkers that died while checking (answer counted wrong)
    checkers_started: int  # checker processes forked
    local_checks: int  # checks run in this process because checker processes could not start


_COUNTERS = dict.fromkeys(CheckerStats.__dataclass_fields__, 0)


def _count(name: str, n: int = 1) -> None:
    _COUNTERS[name] += n


def cache_info() -> CheckerStats:
    """Counters of the fast paths, caches and checker processes of this process.

    >>> before = cache_info().fast_path
    >>> verify_answer("1/2", "0.5"), cache_info().fast_path - before
    (True, 1)
    """
    return CheckerStats(**_COUNTERS)


# ----------------------------------------------------------------------------------------------------
# Checker processes
# ----------------------------------------------------------------------------------------------------
# Layout: this (reward) process -- control socket --> server process (fresh interpreter, math-verify
# imported, single-threaded) -- fork --> checker processes, each talking to this process over its own
# socket pair (the server hands our end over with SCM_RIGHTS). We kill a checker that overruns.

_SERVER_CODE = "import sys; from reward_fns.math import _serve; _serve(int(sys.argv[1]))"


def _serve(fd: int) -> None:
    """Entry point of the server process: warm math-verify up, then fork one checker per request."""
    logging.getLogger("math_verify").setLevel(logging.ERROR)  # we disable its (signal) timeouts on purpose
    control = socket.socket(fileno=fd)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # checkers are reaped automatically
    parse, verify_mv = _math_verify()
    for text in ("\\boxed{\\frac{1}{2}}", "\\boxed{(1, 2]}", "\\boxed{x^2+\\sqrt{2}\\pi}", "$1,2$"):
        verify_mv(parse(text, parsing_timeout=None), parse(text, parsing_timeout=None), timeout_seconds=None)
    control.sendall(b"R")
    while _recv_or_eof(control):
        ours, theirs = socket.socketpair()
        pid = os.fork()
        if pid == 0:
            control.close()
            ours.close()
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            _checker_loop(theirs)
        theirs.close()
        try:
            socket.send_fds(control, [pid.to_bytes(8, "little")], [ours.fileno()])
        except OSError:  # the reward process is gone
            break
        finally:
            ours.close()
    os._exit(0)


def _recv_or_eof(sock: socket.socket) -> bytes:
    try:
        return sock.recv(1)
    except OSError:
        return b""


def _math_verify() -> tuple[Callable[..., Any], Callable[..., Any]]:
    from math_verify import parse, verify

    return parse, verify


def _checker_loop(sock: socket.socket) -> None:
    """A checker: answer (gold, pred) requests until the reward process goes away."""
    try:
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: die with the server
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (CHECKER_MEMORY_BYTES, CHECKER_MEMORY_BYTES))
    except Exception:  # not Linux: the server's EOF still ends us
        pass
    conn = Connection(sock.detach())
    parse, verify_mv = _math_verify()
    parsed: OrderedDict[str, list[Any]] = OrderedDict()

    def parse_cached(text: str) -> tuple[list[Any], bool]:
        hit = parsed.get(text)
        if hit is not None:
            parsed.move_to_end(text)
            return hit, False
        value = parse(text, parsing_timeout=None)
        if len(text) <= _CACHE_MAX_CHARS:
            parsed[text] = value
            while len(parsed) > PARSE_CACHE_SIZE:
                parsed.popitem(last=False)
        return value, True

    while True:
        try:
            gold_w, pred_w = conn.recv()
        except (EOFError, OSError):
            os._exit(0)
        fresh = False
        try:
            gold, fresh = parse_cached(gold_w)
            # verify(g, g) is True exactly when the parse holds a non-empty string (str == str)
            self_match = any(isinstance(x, str) and x.strip() for x in gold)
            pred, _ = parse_cached(pred_w)
            reply = (bool(verify_mv(gold, pred, timeout_seconds=None)), self_match, fresh)
        except BaseException:  # MemoryError, RecursionError, ...: a wrong answer, never a dead checker
            reply = (False, False, fresh)
        try:
            conn.send(reply)
        except OSError:
            os._exit(0)


class _Checker:
    __slots__ = ("pid", "conn", "golds")

    def __init__(self, pid: int, conn: Connection) -> None:
        self.pid = pid
        self.conn = conn
        self.golds: OrderedDict[str, None] = OrderedDict()  # mirror of the golds its cache holds


class _CheckerPool:
    """Checker processes of this process; each call holds one checker for the length of the check."""

    def __init__(self, max_checkers: int) -> None:
        self.pid = os.getpid()
        self.max_checkers = max_checkers
        self._cond = threading.Condition()
        self._idle: list[_Checker] = []
        self._live: dict[int, _Checker] = {}
        self._reserved = 0  # checkers being forked
        self._server_lock = threading.Lock()
        self._server: subprocess.Popen[bytes] | None = None
        self._control: socket.socket | None = None

    # -- server --
    def start(self) -> None:
        with self._server_lock:
            if self._server is None or self._server.poll() is not None:
                self._start_server()

    def _start_server(self) -> None:
        self._stop_server()
        ours, theirs = socket.socketpair()
        package_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
        try:
            self._server = subprocess.Popen(
                [sys.executable, "-c", _SERVER_CODE, str(theirs.fileno())],
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,  # a Ctrl-C in the terminal is for us, not for it
            )
        finally:
            theirs.close()
        self._control = ours
        ours.settimeout(_SERVER_START_TIMEOUT_S)
        try:
            ready = ours.recv(1)
        except OSError:
            ready = b""
        if ready != b"R":
            self._stop_server()
            raise RuntimeError("reward_fns.math: the checker server process did not start")
        ours.settimeout(None)

    def _stop_server(self) -> None:
        if self._control is not None:
            self._control.close()
            self._control = None
        if self._server is not None:
            if self._server.poll() is None:
                self._server.kill()
            self._server.wait()
            self._server = None

    def _fork_checker(self) -> _Checker:
        with self._server_lock:
            for attempt in range(2):
                if self._server is None or self._server.poll() is not None:
                    self._start_server()
                assert self._control is not None
                try:
                    self._control.sendall(b"F")
                    msg, fds, _, _ = socket.recv_fds(self._control, 8, 1)
                    if len(msg) == 8 and len(fds) == 1:
                        break
                except OSError:
                    pass
                self._stop_server()
                if attempt:
                    raise RuntimeError("reward_fns.math: could not fork a checker process")
        _count("checkers_started")
        return _Checker(int.from_bytes(msg, "little"), Connection(fds[0]))

    # -- checkers --
    def _acquire(self, gold_w: str, deadline: float) -> _Checker | None:
        with self._cond:
            while True:
                if self._idle:
                    for i in range(len(self._idle) - 1, -1, -1):
                        if gold_w in self._idle[i].golds:
                            return self._idle.pop(i)
                    return self._idle.pop()
                if len(self._live) + self._reserved < self.max_checkers:
                    self._reserved += 1
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._cond.wait(remaining)
        try:
            checker = self._fork_checker()
        finally:
            with self._cond:
                self._reserved -= 1
                self._cond.notify()
        with self._cond:
            self._live[checker.pid] = checker
        return checker

    def _release(self, checker: _Checker) -> None:
        with self._cond:
            self._idle.append(checker)
            self._cond.notify()

    def _discard(self, checker: _Checker) -> None:
        try:
            os.kill(checker.pid, signal.SIGKILL)
        except OSError:
            pass
        checker.conn.close()
        with self._cond:
            self._live.pop(checker.pid, None)
            self._cond.notify()

    def check(self, gold_w: str, pred_w: str, timeout_s: float) -> tuple[Verdict | None, bool | None]:
        """(verdict, whether the gold matches itself or None if unknown) of one sympy check.

        A verdict carries ``timeout=True`` when the pair itself ran out of time; when no checker was
        free within the budget (every one busy in other threads) the result is ``None`` instead."""
        self.start()  # the one-time server start is not charged to this call's budget
        deadline = time.monotonic() + timeout_s
        checker = self._acquire(gold_w, deadline)
        if checker is None:
            return None, None
        try:
            checker.conn.send((gold_w, pred_w))
            ready = checker.conn.poll(max(0.0, deadline - time.monotonic()))
            reply = checker.conn.recv() if ready else None
        except (EOFError, OSError):
            self._discard(checker)
            _count("crashes")
            logger.warning("reward_fns.math: a checker process died on pred %.80r (counted wrong)", pred_w)
            return Verdict(False), None
        if reply is None:
            self._discard(checker)
            _count("timeouts")
            return Verdict(False, timeout=True), None
        correct, self_match, fresh = reply
        _count("gold_parses", int(fresh))
        if len(gold_w) <= _CACHE_MAX_CHARS:
            checker.golds[gold_w] = None
            checker.golds.move_to_end(gold_w)
            while len(checker.golds) > PARSE_CACHE_SIZE // 2:
                checker.golds.popitem(last=False)
        self._release(checker)
        return Verdict(bool(correct)), bool(self_match)

    def close(self) -> None:
        with self._cond:
            checkers = list(self._live.values())
            self._live.clear()
            self._idle.clear()
        for checker in checkers:
            try:
                os.kill(checker.pid, signal.SIGKILL)
            except OSError:
                pass
            checker.conn.close()
        with self._server_lock:
            self._stop_server()


class _State:
    """Everything this process keeps; rebuilt in a forked child (sockets and locks do not survive fork)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pool: _CheckerPool | None = None
        self.local_only = False  # checker processes could not start here
        self.verdicts = _LRU(VERDICT_CACHE_SIZE)
        self.self_match = _LRU(VERDICT_CACHE_SIZE // 16)  # gold -> its parse matches itself

    def get_pool(self) -> _CheckerPool | None:
        with self.lock:
            if self.pool is None and not self.local_only:
                self.pool = _CheckerPool(MAX_CHECKERS)
            return self.pool


_STATE = _State()


def _after_fork_in_child() -> None:
    global _STATE
    old, _STATE = _STATE, _State()
    if old.pool is not None:  # close our copies of the parent's sockets; its processes stay its own
        for checker in list(old.pool._live.values()):
            checker.conn.close()
        if old.pool._control is not None:
            old.pool._control.close()


def _shutdown() -> None:
    if _STATE.pool is not None and _STATE.pool.pid == os.getpid():
        _STATE.pool.close()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(_shutdown)


def warmup() -> None:
    """Start the checker server now instead of on the first sympy check (about a second, once).

    >>> warmup()
    """
    pool = _STATE.get_pool()
    if pool is not None:
        try:
            pool.start()
        except (OSError, RuntimeError) as e:
            _use_local(e)


def _use_local(error: BaseException) -> None:
    logger.error(
        "reward_fns.math: checker processes unavailable (%s); checking in-process, where the time budget "
        "holds only on the main thread",
        error,
    )
    _STATE.local_only = True


def _check_local(gold_w: str, pred_w: str, timeout_s: float) -> Verdict:
    """Fallback without checker processes: math-verify in this process, its own timeouts on the main thread."""
    _count("local_checks")
    parse, verify_mv = _math_verify()
    seconds = max(1, round(timeout_s)) if threading.current_thread() is threading.main_thread() else None
    start = time.monotonic()
    correct = verify_mv(
        parse(gold_w, parsing_timeout=seconds), parse(pred_w, parsing_timeout=seconds), timeout_seconds=seconds
    )
    return Verdict(bool(correct), timeout=not correct and time.monotonic() - start >= timeout_s)


# ----------------------------------------------------------------------------------------------------
# Public verbs
# ----------------------------------------------------------------------------------------------------


def _cache_key(pred: str, gold: str) -> tuple[str, str]:
    if len(pred) + len(gold) <= _CACHE_MAX_CHARS:
        return pred, gold
    digest = hashlib.blake2b(pred.encode("utf-8", "surrogatepass"), digest_size=32)
    digest.update(b"\0" + gold.encode("utf-8", "surrogatepass"))
    return "", digest.hexdigest()  # no real pair has an empty pred


def verify(pred: str | None, gold: str, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> Verdict:
    r"""Whether the answer ``pred`` equals ``gold``, as math-verify says, within ``timeout_s`` seconds.

    The verdict is math-verify's default ``verify(parse(wrap_latex(gold)), parse(wrap_latex(pred)))``.
    Works from any thread or process and never raises; running out of time gives
    ``Verdict(correct=False, timeout=True)``. An empty or missing ``pred`` is wrong.

    >>> verify(r"\dfrac{2}{4}", "0.5")
    Verdict(correct=True, timeout=False)
    >>> verify("(1, 3]", "(1,3]")
    Verdict(correct=True, timeout=False)
    >>> verify(None, "3")
    Verdict(correct=False, timeout=False)
    """
    p = "" if pred is None else str(pred).strip()
    g = "" if gold is None else str(gold).strip()
    if not p or not g:
        return Verdict(False)
    fast = _numbers_verdict(p, g)
    if fast is None:
        fast = _bracketed_verdict(p, g)
    if fast is None:
        fast = _exact_verdict(p, g)
    if fast is None and p == g and _STATE.self_match.get(g):
        fast = True
    if fast is not None:
        _count("fast_path")
        return Verdict(fast)
    key = _cache_key(p, g)
    cached = _STATE.verdicts.get(key)
    if cached is not None:
        _count("cache_hits")
        return cached
    gold_w, pred_w = wrap_latex(g), wrap_latex(p)
    pool = _STATE.get_pool()
    if pool is not None:
        try:
            verdict, self_match = pool.check(gold_w, pred_w, float(timeout_s))
        except (OSError, RuntimeError) as e:  # no checker processes here: check in-process from now on
            _use_local(e)
            pool = None
        else:
            _count("checks")
            if verdict is None:  # every checker busy for the whole budget: not this pair's fault, not cached
                _count("timeouts")
                return Verdict(False, timeout=True)
            if self_match is not None and len(g) <= _CACHE_MAX_CHARS:
                _STATE.self_match.put(g, self_match)
    if pool is None:
        verdict = _check_local(gold_w, pred_w, float(timeout_s))
    _STATE.verdicts.put(key, verdict)  # timeouts too: the same pair would burn the same budget again
    return verdict


def verify_answer(pred: str | None, gold: str, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> bool:
    r"""Whether the answer ``pred`` equals ``gold`` (see :func:`verify`); False on timeout.

    >>> verify_answer("1/2", r"\frac{1}{2}"), verify_answer(r"2\sqrt{2}", r"\sqrt{8}"), verify_answer("3", "4")
    (True, True, False)
    """
    return verify(pred, gold, timeout_s=timeout_s).correct


def score_answer(
    solution_str: str, gold: str, scheme: str, *, timeout_s: float = DEFAULT_TIMEOUT_S, error: str = ""
) -> dict[str, Any]:
    r"""Score a response against a gold string under ``scheme`` (shared by the ``math`` and ``vote`` scorers).

    An empty ``gold`` makes every answer wrong; ``error`` is then reported in the result.

    >>> score_answer(r"\boxed{4}", "4", "simplerl")["score"]
    1.0
    """
    pred = extract_answer(solution_str)
    parsed = pred is not None
    format_ok = fmt.format_ok(scheme, solution_str, parsed)
    verdict = verify(pred, gold, timeout_s=timeout_s) if parsed and gold else Verdict(False)
    return schemes.make_result(
        schemes.score(scheme, format_ok=format_ok, parsed=parsed, correct=verdict.correct),
        acc=float(verdict.correct),
        format_ok=format_ok,
        pred=pred,
        timeout=verdict.timeout,
        error=error,
    )


def score(
    solution_str: str,
    ground_truth: Any,
    extra_info: dict[str, Any] | None,
    scheme: str,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    **kwargs: Any,
) -> dict[str, Any]:
    r"""The ``math`` scorer: extract the answer, verify it against ``ground_truth``, apply ``scheme``.

    ``ground_truth`` is one gold answer, a string or a number; other types raise ``TypeError`` (which
    :func:`reward_fns.compute_score` turns into the failure score). ``timeout_s`` is the time budget of
    the check (``+reward.custom_reward_function.reward_kwargs.timeout_s``); other keyword arguments
    verl passes are ignored. The result has exactly :data:`reward_fns.schemes.RESULT_KEYS`; ``pred``
    is the extracted answer and ``timeout`` says the check ran out of time (the answer counts wrong).

    >>> r = score(r"<think>so</think><answer>\boxed{0.5}</answer>", r"\frac{1}{2}", {}, "r1")
    >>> r["score"], r["acc"], r["format_ok"], r["pred"], r["timeout"]
    (2.0, 1.0, True, '0.5', False)
    >>> score("no answer here", 7, None, "simplerl")["score"]
    -1.0
    """
    return score_answer(solution_str, gold_text(ground_truth), scheme, timeout_s=timeout_s)
