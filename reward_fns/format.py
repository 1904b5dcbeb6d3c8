"""Tag-format checks for R1-style responses (``<think>…</think><answer>…</answer>``).

Base-model prompts often end with ``<think>`` (the R1 / Logic-RL / AZR wrappers), so the response
verl decodes starts inside the think block; chat-template prompts end with the assistant header and
the response opens ``<think>`` itself. verl hands the scorer the response alone, so every check
takes ``think_prefilled``, what the prompt did (:func:`scored_text`):

- ``True``: the prompt ended with ``<think>``; the checks read ``"<think>" + response``, so a
  response that opens ``<think>`` again has two of them and fails.
- ``False``: the prompt did not; the checks read the response alone.
- ``None`` (not known, the default): a response with no ``<think>`` is read as ``True``, any other
  as ``False``. This accepts both prompt styles, and so is more lenient than either.

>>> r1_format_ok("<think>2+2=4</think> <answer>4</answer>")
True
>>> r1_format_ok("2+2=4</think><answer>4</answer>")       # <think> came from the prompt
True
>>> r1_format_ok("<think>2+2=4</think><answer>4</answer>", think_prefilled=True)  # a second <think>
False
>>> r1_format_ok("<think>a</think><answer>4</answer><answer>5</answer>")
False
>>> extract_tag("<answer> 1 </answer> junk <answer>2</answer>", "answer")
'2'
"""

from __future__ import annotations

import re

_TAGS = ("<think>", "</think>", "<answer>", "</answer>")
_R1_RE = re.compile(r"^\s*<think>.*?</think>\s*<answer>.*?</answer>\s*$", re.DOTALL)


def scored_text(response: str, think_prefilled: bool | None = None) -> str:
    """The text the tag checks read: ``response`` after whatever ``<think>`` the prompt ended with.

    ``think_prefilled`` says whether the prompt ended with ``<think>`` (``None``: not known, so a
    response without ``<think>`` is taken to continue one; see the module docstring).

    >>> scored_text("x</think>", True), scored_text("<think>x</think>", True)
    ('<think>x</think>', '<think><think>x</think>')
    >>> scored_text("x</think>", False), scored_text("x</think>"), scored_text("<think>x</think>")
    ('x</think>', '<think>x</think>', '<think>x</think>')
    """
    if think_prefilled is None:
        think_prefilled = "<think>" not in response
    return "<think>" + response if think_prefilled else response


def tags_in_order(text: str, *, think_prefilled: bool | None = None) -> bool:
    """Logic-RL's format rule: each of the four tags appears exactly once, in order.

    The rule reads :func:`scored_text` ``(text, think_prefilled)``; with ``think_prefilled=True`` it
    is Logic-RL's ``validate_response_structure`` on what Logic-RL scores after an R1 prompt.

    >>> tags_in_order("<think>x</think>\\n<answer>y</answer> trailing text")
    True
    >>> tags_in_order("<answer>y</answer><think>x</think>")
    False
    >>> tags_in_order("<think>x</think><answer>y</answer>", think_prefilled=True)
    False
    """
    text = scored_text(text, think_prefilled)
    positions = []
    for tag in _TAGS:
        if text.count(tag) != 1:
            return False
        positions.append(text.find(tag))
    return positions == sorted(positions)


def r1_format_ok(text: str, *, think_prefilled: bool | None = None) -> bool:
    """The R1 format: exactly one think block followed by exactly one answer block, nothing outside.

    The check reads :func:`scored_text` ``(text, think_prefilled)``.
    """
    text = scored_text(text, think_prefilled)
    return tags_in_order(text, think_prefilled=False) and _R1_RE.match(text) is not None


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


def format_ok(scheme: str, text: str, parsed: bool, *, think_prefilled: bool | None = None) -> bool:
    """Whether ``text`` is well formatted under ``scheme``.

    ``simplerl`` asks only for an extractable final answer (``parsed``); ``logicrl`` for Logic-RL's tag
    rule (:func:`tags_in_order`); ``r1`` and ``azr`` for the strict R1 layout (:func:`r1_format_ok`).
    ``think_prefilled`` says whether the prompt ended with ``<think>`` (see the module docstring).

    >>> format_ok("simplerl", "the answer is \\\\boxed{3}", parsed=True)
    True
    >>> format_ok("r1", "the answer is \\\\boxed{3}", parsed=True)
    False
    >>> format_ok("logicrl", "<think>a</think><answer>b</answer>", parsed=True, think_prefilled=True)
    False
    """
    if scheme == "simplerl":
        return bool(parsed)
    if scheme == "logicrl":
        return tags_in_order(text, think_prefilled=think_prefilled)
    return r1_format_ok(text, think_prefilled=think_prefilled)
