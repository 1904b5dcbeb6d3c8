"""Tag-format checks for R1-style responses (``<think>…</think><answer>…</answer>``).

Base-model prompts usually end with ``<think>`` (the R1 / Logic-RL / AZR wrappers), so the
response verl decodes starts inside the think block. When a response holds no ``<think>`` tag
at all, the checks below treat it as prefilled by the prompt.

>>> r1_format_ok("<think>2+2=4</think> <answer>4</answer>")
True
>>> r1_format_ok("2+2=4</think><answer>4</answer>")       # <think> came from the prompt
True
>>> r1_format_ok("<think>a</think><answer>4</answer><answer>5</answer>")
False
>>> extract_tag("<answer> 1 </answer> junk <answer>2</answer>", "answer")
'2'
"""

from __future__ import annotations

import re

_TAGS = ("<think>", "</think>", "<answer>", "</answer>")
_R1_RE = re.compile(r"^\s*<think>.*?</think>\s*<answer>.*?</answer>\s*$", re.DOTALL)


def _with_think(text: str) -> str:
    return text if "<think>" in text else "<think>" + text


def tags_in_order(text: str) -> bool:
    """Logic-RL's format rule: each of the four tags appears exactly once, in order.

    >>> tags_in_order("<think>x</think>\\n<answer>y</answer> trailing text")
    True
    >>> tags_in_order("<answer>y</answer><think>x</think>")
    False
    """
    text = _with_think(text)
    positions = []
    for tag in _TAGS:
        if text.count(tag) != 1:
            return False
        positions.append(text.find(tag))
    return positions == sorted(positions)


def r1_format_ok(text: str) -> bool:
    """The R1 format: exactly one think block followed by exactly one answer block, nothing outside."""
    text = _with_think(text)
    return tags_in_order(text) and _R1_RE.match(text) is not None


def extract_tag(text: str, tag: str) -> str | None:
    """The stripped content of the last complete ``<tag>…</tag>`` block, or ``None``.

    >>> extract_tag("no tags here", "answer") is None
    True
    """
    close = f"</{tag}>"
    end = text.rfind(close)
    if end < 0:
        return None
    start = text.rfind(f"<{tag}>", 0, end)
    if start < 0:
        return None
    return text[start + len(tag) + 2 : end].strip()


def format_ok(scheme: str, text: str, parsed: bool) -> bool:
    """Whether ``text`` is well formatted under ``scheme``.

    ``simplerl`` asks only for an extractable final answer (``parsed``); ``logicrl`` for Logic-RL's tag
    rule (:func:`tags_in_order`); ``r1`` and ``azr`` for the strict R1 layout (:func:`r1_format_ok`).

    >>> format_ok("simplerl", "the answer is \\\\boxed{3}", parsed=True)
    True
    >>> format_ok("r1", "the answer is \\\\boxed{3}", parsed=True)
    False
    """
    if scheme == "simplerl":
        return bool(parsed)
    if scheme == "logicrl":
        return tags_in_order(text)
    return r1_format_ok(text)
