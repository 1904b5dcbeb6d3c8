"""Our rewards as TRL reward functions: ``GRPOTrainer(reward_funcs=[reward_func("math")], ...)``.

TRL's ``GRPOTrainer`` calls each reward function as ``f(prompts=..., completions=..., completion_ids=...,
**dataset_columns)`` (every dataset column except ``prompt``, each a list with one value per completion, plus
``trainer_state``, ``log_metric``, ...) and wants one float per completion. :func:`reward_func` builds such a
function around :func:`reward_fns.compute_score`: the gold answer comes from the dataset column ``ground_truth``
(``answer_column=`` changes it) and ``extra_info`` from the column ``extra_info`` when the dataset has one, so each
value equals ``compute_score(data_source, completion, gold, extra_info, scheme=scheme, **score_kwargs)["score"]``.

This module never imports TRL (nor torch): it only speaks TRL's call signature, so ``import reward_fns`` stays light.

Subtle points, said out loud:

- **Completions** are plain text (standard prompts) or a list of messages (conversational prompts); for messages the
  scored text is the content of the last ``assistant`` message (text parts joined when the content is a list of
  parts), which is what TRL's own ``accuracy_reward`` reads for single-turn completions.
- **Time budgets hold in TRL's process.** The math check's budget (``timeout_s``, default 5 s) runs in pre-started
  checker processes, not on ``signal.alarm``, so it holds whether TRL calls us on the main thread or not; the code
  data sources (``code_exec``, ``azr_*``) run programs in :mod:`reward_fns.code`'s sandbox, whose slim fork server
  never forks TRL's (large, multi-threaded) process.
- **Configuration errors fail at once**: an unknown data source or scheme when the function is built, a missing
  answer column at the first call (naming the columns the dataset has). A malformed row is never an error: it gets
  the scheme's failure score, as in :func:`reward_fns.compute_score`.
- When TRL passes ``log_metric`` (TRL >= 1.0), the function also logs the batch's ``{name}/acc`` and
  ``{name}/format_ok`` means next to TRL's own ``rewards/{name}/mean``.

>>> f = reward_func("math")
>>> f.__name__
'reward_fns_math'
>>> f(prompts=["What is 3+4?"] * 2, completions=["<think>3+4=7</think><answer>7</answer>", "8"],
...   ground_truth=["7", "7"])
[2.0, 0.0]
>>> chat = [[{"role": "assistant", "content": "<think>half</think><answer>\\\\frac{1}{2}</answer>"}]]
>>> reward_func("math", "simplerl", answer_column="solution")(prompts=[[]], completions=chat, solution=["0.5"])
[1.0]
>>> reward_func("math", "simplrl")
Traceback (most recent call last):
...
ValueError: unknown scheme 'simplrl'; valid: r1, simplerl, logicrl, azr
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from typing import Any

from reward_fns import DATA_SOURCES, compute_score, known_data_sources
from reward_fns.schemes import check_scheme

__all__ = ["completion_text", "reward_func"]

# keyword arguments TRL adds besides the dataset columns; never read as columns
_TRL_KWARGS = ("completion_ids", "trainer_state", "log_metric", "log_extra", "environments")


def completion_text(completion: Any) -> str:
    """The text to score of one TRL completion: the string itself, or the last assistant message's content.

    >>> completion_text("<answer>7</answer>")
    '<answer>7</answer>'
    >>> completion_text([{"role": "assistant", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}])
    'ab'
    >>> completion_text([{"role": "assistant", "content": "x"}, {"role": "tool", "content": "42"}])
    'x'
    >>> completion_text(None), completion_text([])
    ('', '')
    """
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        completion = [completion]
    if not isinstance(completion, Sequence) or not completion:
        return "" if completion is None or isinstance(completion, Sequence) else str(completion)
    messages = [m for m in completion if isinstance(m, dict)]
    assistant = [m for m in messages if m.get("role", "assistant") == "assistant"] or messages
    if not assistant:
        return ""
    content = assistant[-1].get("content")
    if isinstance(content, list):  # multimodal-style parts
        return "".join(p.get("text", "") if isinstance(p, dict) else str(p) for p in content)
    return "" if content is None else str(content)


def reward_func(
    data_source: str | None,
    scheme: str | None = None,
    *,
    answer_column: str = "ground_truth",
    extra_info_column: str = "extra_info",
    data_source_column: str = "data_source",
    name: str | None = None,
    **score_kwargs: Any,
) -> Callable[..., list[float]]:
    """A TRL ``GRPOTrainer`` reward function scoring each completion with :func:`reward_fns.compute_score`.

    ``data_source``: one of :func:`reward_fns.known_data_sources` for every row, or ``None`` to read each row's
    from the dataset column ``data_source_column`` (verl-format datasets have one). ``scheme``: the scoring scheme
    (``r1``, ``simplerl``, ``logicrl``, ``azr``); ``None`` leaves it to ``extra_info["scheme"]`` or the data
    source's default. ``answer_column``: the dataset column holding the gold answer. ``score_kwargs`` go to every
    ``compute_score`` call (``timeout_s=`` for math, ``think_prefilled=`` for Knights & Knaves, ``timeout=`` for
    code). ``name`` becomes the function's ``__name__``, which TRL logs rewards under (default
    ``reward_fns_<data_source>``). Unknown data sources and schemes raise ``ValueError`` naming the valid ones.

    >>> f = reward_func(None, name="mixed")
    >>> f(prompts=["p", "p"], completions=["<answer>7</answer>", "<think>x</think><answer>2</answer>"],
    ...   ground_truth=["7", "2"], data_source=["gsm8k", "math"], trainer_state=None)
    [1.0, 2.0]
    >>> f(prompts=["p"], completions=["7"], answer=["7"], data_source=["math"])
    Traceback (most recent call last):
    ...
    ValueError: reward_func 'mixed': the dataset has no column 'ground_truth' (pass answer_column=...); its columns: answer, data_source
    """
    if data_source is not None and data_source not in DATA_SOURCES:
        raise ValueError(f"unknown data_source {data_source!r}; known: {', '.join(known_data_sources())}")
    if scheme is not None:
        check_scheme(scheme)
    if name is None:
        name = "reward_fns_" + re.sub(r"\W+", "_", data_source or "rows").strip("_")
    kwargs = dict(score_kwargs)
    if scheme is not None:
        kwargs["scheme"] = scheme

    def column(columns: dict[str, Any], key: str, n: int) -> list[Any] | None:
        values = columns.get(key)
        if values is None:
            return None
        values = list(values)
        if len(values) != n:
            raise ValueError(f"reward_func {name!r}: column {key!r} has {len(values)} values for {n} completions")
        return values

    def reward(prompts: Sequence[Any], completions: Sequence[Any], **columns: Any) -> list[float]:
        n = len(completions)
        data = {k: v for k, v in columns.items() if k not in _TRL_KWARGS}
        golds = column(data, answer_column, n)
        if golds is None:
            known = ", ".join(sorted(data)) or "none"
            raise ValueError(
                f"reward_func {name!r}: the dataset has no column {answer_column!r} (pass answer_column=...); "
                f"its columns: {known}"
            )
        infos = column(data, extra_info_column, n) or [None] * n
        sources = [data_source] * n
        if data_source is None:
            sources = column(data, data_source_column, n)
            if sources is None:
                raise ValueError(
                    f"reward_func {name!r}: data_source=None reads each row's data source from the column "
                    f"{data_source_column!r}, which the dataset lacks; pass a data_source"
                )
        results = [
            compute_score(src, completion_text(c), gold, info if isinstance(info, dict) else None, **kwargs)
            for src, c, gold, info in zip(sources, completions, golds, infos, strict=True)
        ]
        log_metric = columns.get("log_metric")
        if callable(log_metric) and results:
            log_metric(f"{name}/acc", math.fsum(float(r["acc"]) for r in results) / n)
            log_metric(f"{name}/format_ok", math.fsum(float(r["format_ok"]) for r in results) / n)
        return [float(r["score"]) for r in results]

    reward.__name__ = reward.__qualname__ = name
    reward.__doc__ = f"TRL reward function: reward_fns.compute_score({data_source!r}, ..., scheme={scheme!r})."
    return reward
