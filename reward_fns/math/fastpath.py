r"""Exact fast paths: math-verify's verdict, computed without sympy, for answer pairs whose outcome is known.

Plain numbers (integers, decimals, ``a/b``, ``\frac{a}{b}``; decimals within 1e-5 of each other are left to
sympy's rounding), intervals and tuples of plain numbers, and a small LaTeX subset (sums of rational multiples of
square roots, pi and powers of x, y, z, n, k: ``3\sqrt{5}``, ``\frac{3\pi}{4}``, ``5+3x^{2}``), all in exact
arithmetic. Where only sympy can tell, the answer is None. tests/test_math.py checks every path against live
math-verify.

>>> fast_verdict("0.5", r"\frac{1}{2}"), fast_verdict("(1, 3]", "(1,3)"), fast_verdict(r"\sqrt{8}", r"2\sqrt{2}")
(True, False, True)
>>> fast_verdict(r"\sin x", r"\cos x") is None
True
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

__all__ = ["fast_verdict"]


def fast_verdict(pred: str, gold: str) -> bool | None:
    """math-verify's verdict for two stripped, non-empty answers where it is known without sympy, else None.

    Bare strings are read as math-verify reads them boxed; a string that is one formula around a plain number
    (``$26$``, ``\\( 0.5 \\)``) as that number. Anything else with a delimiter (prose) is left to sympy.
    """
    pred, gold = _formula_number(pred), _formula_number(gold)
    verdict = _numbers_verdict(pred, gold)
    if verdict is None:
        verdict = _bracketed_verdict(pred, gold)
    if verdict is None:
        verdict = _exact_verdict(pred, gold)
    return verdict


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


_FORMULAS = (("$$", "$$"), ("\\[", "\\]"), ("\\(", "\\)"), ("$", "$"))


def _formula_number(text: str) -> str:
    """The plain number of a string that is exactly one formula around it (``$-3.5$``, ``$$ \\frac{1}{2} $$``),
    else the string itself. math-verify reads these as it reads the boxed number (tests/test_math.py checks)."""
    for left, right in _FORMULAS:
        if text.startswith(left) and text.endswith(right) and len(text) > len(left) + len(right):
            inner = text[len(left) : -len(right)].strip(" ")
            return inner if _plain_number(inner) is not None else text
    return text


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
