"""Reward functions for self-play and curriculum RL, usable with or without verl.

Nothing here imports torch, ray or verl. The one verl-facing verb is :func:`compute_score`, which
has verl's custom-reward signature::

    reward.custom_reward_function.path=pkg://reward_fns
    reward.custom_reward_function.name=compute_score

>>> r = compute_score("math", "<think>half</think><answer>\\\\frac{1}{2}</answer>", "0.5")
>>> r["score"], r["acc"], r["format_ok"], r["pred"]
(2.0, 1.0, True, '\\\\frac{1}{2}')
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from typing import Any

from reward_fns.schemes import RESULT_KEYS, SCHEMES, check_scheme, failure_result

__all__ = ["compute_score", "DATA_SOURCES", "RESULT_KEYS", "SCHEMES", "known_data_sources"]

logger = logging.getLogger(__name__)

# data source -> ("module:function", default scheme). One line per data source; scorers are
# imported lazily so that `import reward_fns` stays cheap. A scorer has the signature
# fn(solution_str: str, ground_truth, extra_info: dict, scheme: str, **kwargs) -> dict (RESULT_KEYS).
_MATH = ("reward_fns.math:score", "r1")
DATA_SOURCES: dict[str, tuple[str, str]] = {
    "math": _MATH,
    # the names verl's own preprocessing scripts and common datasets use for MATH / GSM8K
    "lighteval/MATH": _MATH,
    "DigitalLearningGmbH/MATH-lighteval": _MATH,
    "HuggingFaceH4/MATH-500": _MATH,
    "math_dapo": _MATH,
    "openai/gsm8k": _MATH,
    "gsm8k": _MATH,
    "knights_knaves": ("reward_fns.logic:score", "logicrl"),
    "kk_logic": ("reward_fns.logic:score_kk_logic", "logicrl"),  # Logic-RL's parquet files: prompt ends <think>
    "vote": ("reward_fns.vote:score", "r1"),
    # AZR solver responses, scored in the sandbox (reward_fns.code.azr; extra_info/ground_truth fields there)
    "code_exec": ("reward_fns.code.azr:score", "azr"),  # task type from extra_info["task_type"]
    "azr_deduction": ("reward_fns.code.azr:score_deduction", "azr"),
    "azr_abduction": ("reward_fns.code.azr:score_abduction", "azr"),
    "azr_induction": ("reward_fns.code.azr:score_induction", "azr"),
}

_loaded: dict[str, Callable[..., dict[str, Any]]] = {}


def known_data_sources() -> list[str]:
    """The data-source names :func:`compute_score` accepts.

    >>> "kk_logic" in known_data_sources()
    True
    """
    return sorted(DATA_SOURCES)


def _scorer(path: str) -> Callable[..., dict[str, Any]]:
    fn = _loaded.get(path)
    if fn is None:
        module, name = path.split(":")
        fn = _loaded[path] = getattr(importlib.import_module(module), name)
    return fn


def _as_text(solution_str: Any) -> str:
    if isinstance(solution_str, str):
        return solution_str
    if isinstance(solution_str, (bytes, bytearray)):
        return bytes(solution_str).decode("utf-8", errors="replace")
    return "" if solution_str is None else str(solution_str)


def compute_score(
    data_source: str,
    solution_str: str,
    ground_truth: Any,
    extra_info: dict[str, Any] | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """Score one response; verl's custom reward function.

    Returns a dict with exactly the keys ``score`` (float reward), ``acc`` (1.0 / 0.0),
    ``format_ok`` (bool), ``pred`` (the extracted answer, "" if none), ``timeout`` (bool: the
    checker ran out of its time budget) and ``error`` ("" or why the sample got the failure score).

    Data sources and their default schemes: ``math`` and verl's MATH / GSM8K names (``r1``),
    ``knights_knaves`` and Logic-RL's ``kk_logic`` (``logicrl``), ``vote`` (``r1``; scores against
    ``extra_info["majority_label"]`` only, never ``ground_truth``; without a label: the failure score and an
    error saying vote relabelling is off), and the Absolute-Zero solver
    sources ``code_exec`` (task type from ``extra_info["task_type"]``), ``azr_deduction``,
    ``azr_abduction`` and ``azr_induction`` (``azr``; programs run in :mod:`reward_fns.code`'s sandbox,
    fields documented in :func:`reward_fns.code.azr.score`). Unknown names raise
    ``ValueError`` listing the known ones.

    ``language_reward`` (default 0: off) adds that weight times :func:`reward_fns.behaviours.language_consistency`
    of the response to ``score``: DeepSeek-R1's language-consistency reward (the share of the reasoning's words
    in one language; ``language="en"`` or ``"zh"`` names the target language, by default the dominant one). In
    verl: ``+reward.custom_reward_function.reward_kwargs.language_reward=0.1``.

    The scheme is ``kwargs["scheme"]`` (verl's ``+reward.custom_reward_function.reward_kwargs.scheme``),
    else ``extra_info["scheme"]``, else the data source's default. An unknown scheme raises
    ``ValueError`` naming the valid ones. A malformed response or ground truth never raises: it
    earns the scheme's failure score with ``error`` set.

    >>> compute_score("gsm8k", "so the answer is \\\\boxed{72}", "72", scheme="simplerl")["score"]
    1.0
    >>> compute_score("kk_logic", "", {"solution_text_format": "(1) Zoey is a knight"})["score"]
    -3.0
    >>> compute_score("mth", "x", "1")
    Traceback (most recent call last):
    ...
    ValueError: unknown data_source 'mth'; known: ...
    """
    entry = DATA_SOURCES.get(data_source)
    if entry is None:
        raise ValueError(f"unknown data_source {data_source!r}; known: {', '.join(known_data_sources())}")
    path, default_scheme = entry
    language_reward = kwargs.pop("language_reward", 0.0)
    language = kwargs.pop("language", None)
    extra_info = extra_info if isinstance(extra_info, dict) else {}
    scheme = check_scheme(kwargs.pop("scheme", None) or extra_info.get("scheme") or default_scheme)
    text = _as_text(solution_str)
    try:
        result = _scorer(path)(text, ground_truth, extra_info, scheme, **kwargs)
    except (TypeError, ValueError, KeyError) as e:  # bad ground_truth / extra_info: a row problem, not a crash
        logger.warning("compute_score(%s): %s", data_source, e)
        result = failure_result(scheme, f"{type(e).__name__}: {e}")
    if language_reward:
        from reward_fns.behaviours import language_consistency

        result["score"] = float(result["score"]) + float(language_reward) * language_consistency(text, language)
    return result
