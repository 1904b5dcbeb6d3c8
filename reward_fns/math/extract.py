r"""Which strings get compared: the final answer of a response, the gold answer as text, and the LaTeX string
math-verify parses for either.

>>> extract_answer(r"so $x = \boxed{\frac{1}{2}}$.")
'\\frac{1}{2}'
"""

from __future__ import annotations

import re
from decimal import Decimal
from numbers import Real
from typing import Any

from reward_fns import format as fmt

__all__ = ["answer_to_check", "extract_answer", "gold_text", "is_delimited", "wrap_latex"]

_BRACE_RE = re.compile(r"[{}]")
# math-verify joins adjacent boxes ("\boxed{-2} and \boxed{1}" -> "-2,1"); the same separators.
_SEPARATOR_RE = re.compile(r"\b(and|or)\b|,|;")
_DELIMITERS = (("$$", "$$"), ("\\[", "\\]"), ("\\(", "\\)"), ("$", "$"))
# an opening math delimiter as math-verify's own patterns find one: $, $$, \( or \[ not after a backslash
_DELIMITER_RE = re.compile(r"(?<!\\)(?:\$|\\[(\[])")


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


def _extract(text: str) -> tuple[str, bool] | None:
    """(answer, came from a box), or None."""
    if "\\boxed" in text or "\\fbox" in text:
        boxed = _last_boxed(text)
        if boxed is not None:
            return boxed, True
    answer = fmt.extract_tag(text, "answer")
    if answer is None:
        return None
    if "\\boxed" in answer or "\\fbox" in answer:
        boxed = _last_boxed(answer)
        return None if boxed is None else (boxed, True)
    answer = answer.strip()
    return (answer, False) if answer else None


def extract_answer(text: str) -> str | None:
    r"""The final answer of a response, or None when it has none.

    The last ``\boxed{…}`` wins (nested braces kept; ``\fbox{…}`` and ``\boxed 5`` count too). Boxes
    just before it are joined the way math-verify joins them (less than 10 characters apart, or less
    than 70 with a comma, semicolon, "and" or "or" between): ``\boxed{-2} and \boxed{1}`` gives ``-2,1``.
    Without a box, the content of the last ``<answer>…</answer>``, with one enclosing ``$…$``,
    ``$$…$$``, ``\(…\)`` or ``\[…\]`` removed. A last box with unbalanced braces (a truncated
    response) is no answer. Linear time; any string is safe.

    This is the answer as shown (``pred`` in the score, what votes group); the string that is checked
    is :func:`answer_to_check`'s, which keeps the delimiters (math-verify reads ``$50\%$`` and
    ``50\%`` differently).

    >>> extract_answer(r"First \boxed{1}. Checking that again it is wrong. The answer is \boxed{\frac{a}{b^{2}}}")
    '\\frac{a}{b^{2}}'
    >>> extract_answer("<think>...</think><answer> $x^2$ </answer>")
    'x^2'
    >>> extract_answer(r"\boxed{-2} and \boxed{1}")
    '-2,1'
    >>> extract_answer(r"\fbox{7}"), extract_answer(r"it is \boxed 5."), extract_answer(r"\boxed{12")
    ('7', '5', None)
    """
    found = _extract(text)
    if found is None:
        return None
    answer, boxed = found
    return answer if boxed else (_strip_delimiters(answer) or None)


def answer_to_check(text: str) -> tuple[str, str] | None:
    r"""``(answer, checked)`` of a response, or None when it has none: ``answer`` is :func:`extract_answer`'s,
    ``checked`` the string to verify, written so that :func:`wrap_latex` gives math-verify what the response
    holds.

    A boxed answer is checked as that box: its content, re-boxed explicitly when it holds a delimiter
    (``\boxed{12 $ and $ 13}`` is two numbers, its content alone is a formula `` and ``). An ``<answer>``
    tag's content is checked as written, delimiters and prose included: ``The answer is $26$`` is 26 for
    math-verify, but boxed whole it is a product of letters.

    >>> answer_to_check(r"so \boxed{\frac{1}{2}}")
    ('\\frac{1}{2}', '\\frac{1}{2}')
    >>> answer_to_check("<answer>The answer is $26$</answer>")
    ('The answer is $26$', 'The answer is $26$')
    >>> answer_to_check("<answer>$50\\%$</answer>"), answer_to_check(r"\boxed{$5}")
    (('50\\%', '$50\\%$'), ('$5', '\\boxed{$5}'))
    """
    found = _extract(text)
    if found is None:
        return None
    answer, boxed = found
    if boxed:
        return answer, ("\\boxed{" + answer + "}" if is_delimited(answer) else answer)
    shown = _strip_delimiters(answer)
    return (shown, answer) if shown else None


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


def is_delimited(text: str) -> bool:
    r"""Whether ``text`` is written with math delimiters, so math-verify parses it as it is: it holds a
    ``$`` (``$$``), ``\(`` or ``\[`` not escaped by a backslash, or a ``\boxed``/``\fbox``. A string without
    any is *bare*.

    >>> is_delimited("The answer is $26$"), is_delimited(r"\(x\)"), is_delimited(r"\$5"), is_delimited("x != 5")
    (True, True, False, False)
    """
    return _DELIMITER_RE.search(text) is not None or "\\boxed" in text or "\\fbox" in text


def wrap_latex(text: str) -> str:
    r"""The string math-verify parses for an answer: ``\boxed{text}`` when ``text`` is bare, else ``text``
    as it is (see :func:`is_delimited`).

    A bare answer is LaTeX without delimiters, which math-verify reads only inside a box (a bare
    ``\frac{1}{2}`` silently fails to parse, ``x != 5`` parses as 5). A delimited one is parsed as written,
    prose included: ``The answer is $26$`` is 26 (boxed whole, it would be a product of letters).

    >>> wrap_latex(r"\frac{1}{2}"), wrap_latex(r"\$5"), wrap_latex("The answer is $26$"), wrap_latex(r"\boxed{3}")
    ('\\boxed{\\frac{1}{2}}', '\\boxed{\\$5}', 'The answer is $26$', '\\boxed{3}')
    """
    text = text.strip()
    return text if is_delimited(text) else "\\boxed{" + text + "}"
