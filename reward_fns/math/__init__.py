r"""Math answers: extract the final answer of a response and check it against the gold with math-verify.

Three verbs, from the outside in:

- :func:`extract_answer` takes the last ``\boxed{…}`` (nested braces; also ``\fbox{…}`` and ``\boxed 5``),
  else the last ``<answer>…</answer>`` content (:func:`answer_to_check` also gives the string checked);
- :func:`verify_answer` / :func:`verify` say whether an extracted answer equals the gold;
- :func:`score` is the ``math`` scorer that :func:`reward_fns.compute_score` dispatches to.

One module per job:

- :mod:`reward_fns.math.extract`: the answer of a response, the gold as text, the string math-verify parses;
- :mod:`reward_fns.math.fastpath`: exact verdicts without sympy where math-verify's outcome is known;
- :mod:`reward_fns.math.verification`: the math-verify call in checker processes under a time budget, the
  verdict cache, and the counters of :func:`cache_info`.

**Semantics.** A verdict is exactly math-verify's default ``verify(parse(gold), parse(pred))`` (the
``math_verify`` package of Kydlíček et al., Hugging Face), with both strings first made parseable by
:func:`wrap_latex`: a *bare* string (no ``$``, ``\(``, ``\[`` or box, see :func:`is_delimited`) is read as
``\boxed{…}`` (a bare ``\frac{1}{2}`` would silently fail to parse); a delimited one is parsed as it is,
prose included (``The answer is $26$`` is 26). In a response, a boxed answer is checked as its box and an
``<answer>`` tag's content as written (:func:`answer_to_check`). Fast paths answer first, in exact arithmetic,
where math-verify's outcome is known; everything else goes to sympy, in checker processes killed at the time
budget (``timeout_s``, default 5 s per call): a timeout is a wrong answer with ``timeout=True``, never an
exception, in any thread, and is never cached.

>>> extract_answer(r"so $x = \boxed{\frac{1}{2}}$.")
'\\frac{1}{2}'
>>> verify_answer("0.5", r"\frac{1}{2}")
True
>>> score(r"<think>1+1</think><answer>\boxed{2}</answer>", "2", {}, "r1")["score"]
2.0
"""

from __future__ import annotations

from typing import Any

from reward_fns import format as fmt
from reward_fns import schemes
from reward_fns.math.extract import answer_to_check, extract_answer, gold_text, is_delimited, wrap_latex
from reward_fns.math.verification import (
    DEFAULT_TIMEOUT_S,
    CheckerStats,
    Verdict,
    cache_info,
    verify,
    verify_answer,
    warmup,
)

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "CheckerStats",
    "Verdict",
    "answer_to_check",
    "cache_info",
    "extract_answer",
    "gold_text",
    "is_delimited",
    "score",
    "score_answer",
    "verify",
    "verify_answer",
    "warmup",
    "wrap_latex",
]


def score_answer(
    solution_str: str, gold: str, scheme: str, *, timeout_s: float = DEFAULT_TIMEOUT_S, error: str = ""
) -> dict[str, Any]:
    r"""Score a response against a gold string under ``scheme`` (shared by the ``math`` and ``vote`` scorers).

    An empty ``gold`` makes every answer wrong; ``error`` is then reported in the result.

    >>> score_answer(r"\boxed{4}", "4", "simplerl")["score"]
    1.0
    """
    found = answer_to_check(solution_str)
    pred, checked = found if found is not None else (None, None)
    parsed = pred is not None
    format_ok = fmt.format_ok(scheme, solution_str, parsed)
    verdict = verify(checked, gold, timeout_s=timeout_s) if parsed and gold else Verdict(False)
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
