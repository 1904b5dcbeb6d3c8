r"""Reasoning behaviours of one response: verification, backtracking, ... as flags and counts. Pure, torch-free.

Users watch RL runs for the moment reasoning appears. This module names what to watch, from the seed notes:

- the four habits of the Cognitive Behaviors paper (Gandhi et al., arXiv 2503.01307): **verification**
  (checking a result), **backtracking** (abandoning an approach), **subgoal setting** (explicit decomposition)
  and **backward chaining** (reasoning from the goal back to what is given);
- Logic-RL's **thinking words** (Xie et al., arXiv 2502.14768: responses with "wait", "verify", "yet" earn higher
  reward) and its finding that **language mixing** in the reasoning lowers reward;
- **repetition** (a policy stuck in a loop) and the response length in words.

The paper classified behaviours with GPT-4o-mini; here every behaviour is a set of regular expressions (English and
Chinese, listed with an example each in :data:`PATTERNS`), so that it runs on every response of every step.
Measured precision and recall per behaviour, on the hand-labelled snippets in ``tests/data/behaviours.jsonl``, are
printed by ``tests/test_behaviours.py``.

The patterns look at the *reasoning part* of the response: the text inside ``<think>…</think>`` (a response
without ``<think>`` is read as starting inside one, as R1-style prompts end with ``<think>``), else the text before
``<answer>``, else the whole response. ``length_words`` counts the whole response.

>>> r = reasoning_behaviours("<think>2 + 3 = 6. Wait, that's wrong. Let me check: 2 + 3 = 5.</think><answer>5</answer>")
>>> [k for k in BEHAVIOURS if r[k]]
['verification', 'backtracking', 'thinking_words']
>>> r["thinking_words_count"], r["length_words"]
(1, 17)
>>> reasoning_behaviours(b"\x00\xff")["length_words"]           # bad input: zeros, never an exception
0
>>> language_consistency("<think>先算出 x 的值。Then we add 3.</think>")  # 5 CJK characters, 3 English words
0.625
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "BEHAVIOURS",
    "PATTERNS",
    "reasoning_behaviours",
    "language_consistency",
    "reasoning_part",
    "repeated_ngram_ratio",
    "behaviour_metrics",
    "metric_names",
]

BEHAVIOURS: tuple[str, ...] = (
    "verification",
    "backtracking",
    "subgoal_setting",
    "backward_chaining",
    "thinking_words",
    "language_mixing",
    "repetition",
)

# Responses longer than this many characters (about 8x verl's usual 8K-token response cap) are bad input: zeros.
MAX_CHARS = 262_144

# Language mixing: the minority script (CJK characters vs English words) must make up at least this share of the
# reasoning's script units, and at least MIXING_MIN_UNITS of them, so that one stray word is not mixing.
MIXING_MIN_SHARE = 0.05
MIXING_MIN_UNITS = 3

# Repetition: Data-Juicer's word_repetition_filter definition (the share of word n-grams occurring more than once;
# the same measure as verl_selfplay.filters' repetition filter, there on tokens). n = 10 words as there; the flag
# needs a ratio above REPETITION_THRESHOLD -- lower than the filter's 0.5, since this flag watches, not drops.
REPETITION_N = 10
REPETITION_THRESHOLD = 0.3

# behaviour -> [(pattern, example it matches)], matched on the lower-cased reasoning. An English match must start at a
# word boundary (checked in code: a leading \b makes Python's regex engine try every position, 4x slower). A pattern
# runs only when one of its anchors (_ANCHORS, literal substrings every match contains) is in the text; the Chinese
# patterns run only on text that is not pure ASCII.
PATTERNS: dict[str, list[tuple[str, str]]] = {
    "verification": [
        (r"let(?:'s| me| us) (?:double[- ])?(?:check|verify|confirm|re-?check)", "Let me double-check the sum."),
        (r"(?:double[- ]check|re-?check|sanity check|cross-check)", "A quick sanity check: 12 * 3 = 36."),
        (r"let(?:'s| me| us) re-?(?:count|compute|calculate)\b", "Let me recount the outcomes."),
        (r"verif(?:y|ying|ied|ication)\b", "Verifying: 4 * 9 = 36, correct."),
        (r"check(?:ing)?(?: this| that| it| our| the (?:answer|result|solution))?\s*:", "Check: 3 + 4 = 7."),
        (r"to (?:check|confirm|make sure)\b", "To confirm, substitute x = 2."),
        (
            r"(?:plug(?:ging)?|substitut(?:e|ing))(?: it| this| them| these| x = \S+| the \w+)? back\b",
            "Plugging back in, 2(3) = 6.",
        ),
        (r"(?:which|this|that|it) (?:matches|checks out|is consistent|confirms)\b", "This checks out."),
        (r"consistent with (?:the|all|every|our|both)\b", "This is consistent with all the statements."),
        (
            r"验证|检验|验算|(?:再|重新)?检查(?:一下|：|:)|再检查|核对|确认一下|代回|代入检验",
            "验证一下：3 × 4 = 12，正确。",
        ),
    ],
    "backtracking": [
        (
            r"(?:that|this|it)(?:'s| is| was) (?:wrong|incorrect|not right|not correct|a mistake)",
            "That's wrong, 4 is even.",
        ),
        (
            r"(?:that|this|it) (?:doesn't|does not|won't|will not|can't|cannot) (?:work|be right|be correct)",
            "That doesn't work.",
        ),
        (r"i (?:made|have made) (?:a |an )?(?:mistake|error)", "I made a mistake in the second line."),
        (
            r"(?:let me|let's|i'll|we should|i should) (?:try again|start over|reconsider|rethink|redo|re-?examine)",
            "Let me reconsider.",
        ),
        (
            r"(?:try|use|take) (?:a |an )?(?:different|another|new) (?:approach|method|way|strategy|assumption)",
            "Let's try a different approach.",
        ),
        (r"(?:scratch that|go back|going back|start over|back to the drawing board)\b", "Scratch that, the base is 6."),
        (r"(?:leads? to|gives?|is|reach|get) a contradiction\b", "If A is a knight, this leads to a contradiction."),
        (
            r"不对|错了|有误|算错|矛盾|重新(?:考虑|计算|思考|检查|来)|换(?:一种|个)(?:方法|思路)|推翻",
            "不对，这里应该是减法。",
        ),
    ],
    "subgoal_setting": [
        (r"step (?:1|one)\b", "Step 1: find the radius."),
        (r"(?:first|firstly),? (?:we|i|let's|let me)\b", "First, we find the common denominator."),
        (r"(?:let's|let me|we can|we'll|i'll) break (?:this|it|the problem) (?:down|into)", "Let's break this down."),
        (r"(?:break|split|divide) (?:the problem|this|it) into\b", "Split the problem into two parts."),
        (r"sub-?(?:goals?|problems?|tasks?)\b", "The first subproblem is the area."),
        (
            r"we (?:need|have) to (?:first )?(?:find|compute|calculate|determine|figure out)\b[^\n]{0,80}\bthen\b",
            "We need to find x, then y.",
        ),
        (r"(?:case|part) (?:1|one|a)\b", "Case 1: n is even."),
        (r"第一步|首先|分(?:成|为)(?:两|几|三)|子问题|分解|步骤", "首先，求出公共分母。"),
    ],
    "backward_chaining": [
        (r"(?:work(?:ing|ed)?|reason(?:ing)?) backwards?\b", "Working backwards from 24."),
        (
            r"start(?:ing)? (?:from|with|at) the (?:goal|target|answer|end|result|conclusion)\b",
            "Starting from the goal, 24 = 4 * 6.",
        ),
        (
            r"(?:to|in order to) (?:get|reach|obtain|make|achieve|end up with) [^.;\n]{1,40}?,? (?:we|i) "
            r"(?:would |will )?(?:need|must|have to)\b",
            "To get 24, we need 4 and 6.",
        ),
        (
            r"for [^.;\n]{1,50}? to (?:be|hold|equal|work)\b[^.;\n]{0,40}?\bmust\b",
            "For the sum to be even, n must be odd.",
        ),
        (r"what (?:do|would) (?:we|i) need\b", "What would we need for the product to be 24?"),
        (
            r"倒推|逆推|反推|从(?:结论|目标|结果|答案)(?:出发|开始|倒)|要(?:使|想|得到)[^。]{1,20}?(?:需要|必须)",
            "从目标24倒推：24 = 4 × 6。",
        ),
    ],
    "thinking_words": [
        (
            r"(?:wait|hmm+|verify|yet|re-?evaluate|re-?check|actually|alternatively|on second thought|let me think"
            r"|hold on|oh)\b",
            "Wait, the base is 6.",
        ),
        (r"等等|等一下|嗯|不过|然而|其实|或者说|再想想", "等等，这里的符号不对。"),
    ],
}

# Per pattern (same order as PATTERNS), literal substrings of which every match contains one; None: a Chinese pattern.
_ANCHORS: dict[str, list[tuple[str, ...] | None]] = {
    "verification": [
        ("check", "verif", "confirm"),
        ("check",),
        ("count", "compute", "calculate"),
        ("verif",),
        ("check",),
        ("to check", "to confirm", "to make sure"),
        (" back",),
        ("matches", "checks out", "consistent", "confirms"),
        ("consistent with",),
        None,
    ],
    "backtracking": [
        ("wrong", "incorrect", "not right", "not correct", "mistake"),
        ("work", "be right", "be correct"),
        ("mistake", "error"),
        ("try again", "start over", "reconsider", "rethink", "redo", "examine"),
        ("approach", "method", "way", "strategy", "assumption"),
        ("scratch that", "go back", "going back", "start over", "drawing board"),
        ("contradiction",),
        None,
    ],
    "subgoal_setting": [
        ("step 1", "step one"),
        ("first",),
        ("break",),
        (" into",),
        ("sub",),
        ("then",),
        ("case ", "part "),
        None,
    ],
    "backward_chaining": [
        ("backward",),
        ("start",),
        ("need", "must", "have to"),
        ("must",),
        (" need",),
        None,
    ],
    "thinking_words": [
        (
            "wait",
            "hmm",
            "verify",
            "yet",
            "evaluate",
            "check",
            "actually",
            "alternatively",
            "second thought",
            "let me think",
            "hold on",
            "oh",
        ),
        None,
    ],
}

_COMPILED: dict[str, list[tuple[tuple[str, ...] | None, re.Pattern[str]]]] = {
    name: [(anchors, re.compile(p)) for anchors, (p, _) in zip(_ANCHORS[name], pats, strict=True)]
    for name, pats in PATTERNS.items()
}


def _count(pattern: re.Pattern[str], text: str) -> int:
    """Matches of ``pattern`` in ``text`` whose start is not inside an English word."""
    n = 0
    for m in pattern.finditer(text):
        i = m.start()
        if i == 0 or not (text[i - 1].isascii() and text[i - 1].isalnum()) or not text[i].isascii():
            n += 1
    return n


def _behaviour_count(name: str, text: str, ascii_only: bool) -> int:
    n = 0
    for anchors, pattern in _COMPILED[name]:
        if anchors is None:
            if not ascii_only:
                n += len(pattern.findall(text))
        elif any(a in text for a in anchors):
            n += _count(pattern, text)
    return n


_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3040-\u30ff\uac00-\ud7af"  # Han, kana, hangul
# What is not prose: code blocks, inline code, LaTeX math and commands (x, \frac, AB are not "English").
_NOT_PROSE = re.compile(r"```.*?```|`[^`\n]*`|\$\$.*?\$\$|\$[^$\n]*\$|\\\(.*?\\\)|\\\[.*?\\\]|\\[A-Za-z]+", re.DOTALL)
_TAGS = re.compile(r"</?(?:think|answer)>")
_ENGLISH_WORD = re.compile(r"[A-Za-z]{2,}")
_CJK_CHAR = re.compile(rf"[{_CJK}]")
_CJK_SPLIT = re.compile(rf"([{_CJK}])")


def _words(text: str) -> list[str]:
    """Whitespace-separated words, each CJK character a word of its own."""
    return text.split() if text.isascii() else _CJK_SPLIT.sub(r" \1 ", text).split()


def _text(response: Any) -> str | None:
    """The response as text, or ``None`` for bad input (not a string, binary, over :data:`MAX_CHARS`)."""
    if not isinstance(response, str) or not response or len(response) > MAX_CHARS or "\x00" in response:
        return None
    return response


def reasoning_part(response: str) -> str:
    """The reasoning of a response: inside ``<think>…</think>``, else before ``<answer>``, else all of it.

    >>> reasoning_part("<think>add them</think><answer>5</answer>"), reasoning_part("add them</think> 5")
    ('add them', 'add them')
    >>> reasoning_part("so 5 <answer>5</answer>")
    'so 5 '
    """
    start = response.find("<think>")
    start = 0 if start < 0 else start + len("<think>")
    end = response.find("</think>", start)
    if end < 0:
        end = response.find("<answer>", start)
    return response[start:] if end < 0 else response[start:end]


def repeated_ngram_ratio(units: Sequence[str], n: int = REPETITION_N) -> float:
    """Share of the word ``n``-grams of ``units`` that occur more than once (Data-Juicer's repetition ratio).

    >>> repeated_ngram_ratio("a b c a b c z".split(), n=3)      # 'a b c' twice among 5 trigrams
    0.4
    >>> repeated_ngram_ratio(["a", "b"], n=3)
    0.0
    """
    count = len(units) - n + 1
    if count <= 0 or n < 1:
        return 0.0
    counts = Counter(zip(*(units[i : i + count] for i in range(n)), strict=True))
    return sum(c for c in counts.values() if c > 1) / count


def _scripts(reasoning: str) -> tuple[int, int]:
    """(CJK characters, English words of 2+ letters) in the prose of ``reasoning``."""
    prose = _NOT_PROSE.sub(" ", reasoning) if ("$" in reasoning or "\\" in reasoning or "`" in reasoning) else reasoning
    cjk = len(_CJK_CHAR.findall(prose))
    latin = sum(1 for w in _ENGLISH_WORD.findall(prose) if not (w.isupper() and len(w) <= 3))  # AB, GCD: names
    return cjk, latin


def language_consistency(response: Any, language: str | None = None) -> float:
    """Share of the reasoning's words written in one script: 1.0 is one language throughout; bad input 0.0.

    Words are English words (two letters or more, outside LaTeX and code; short capitals such as ``AB`` are names)
    and CJK characters (each counts as one word). ``language="en"`` or ``"zh"`` scores the share of that language,
    as DeepSeek-R1's language-consistency reward (arXiv 2501.12948: "the proportion of target language
    words in the CoT"); ``None`` scores the share of whichever script dominates. A reasoning without words of
    either script scores 0.0.

    >>> language_consistency("<think>We add 2 and 3.</think>")
    1.0
    >>> language_consistency("<think>We add 2 and 3.</think>", language="zh")
    0.0
    >>> language_consistency("")
    0.0
    """
    text = _text(response)
    if text is None:
        return 0.0
    cjk, latin = _scripts(reasoning_part(text))
    total = cjk + latin
    if total == 0:
        return 0.0
    if language is None:
        return max(cjk, latin) / total
    if language in ("zh", "ja", "ko", "cjk"):
        return cjk / total
    if language == "en":
        return latin / total
    raise ValueError(f"unknown language {language!r}; valid: en, zh, ja, ko, cjk, or None (the dominant script)")


def _zeros() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in BEHAVIOURS:
        out[key] = False
        out[f"{key}_count"] = 0
    out["length_words"] = 0
    return out


def reasoning_behaviours(response: Any) -> dict[str, Any]:
    """Flags and counts of reasoning behaviours in one response.

    Returns, for each name in :data:`BEHAVIOURS`, ``name`` (bool: the behaviour shows) and ``name_count`` (int:
    how many matches), plus ``length_words`` (words of the whole response; a CJK character counts as a word).
    The counts are: pattern matches for the four habits and thinking words; words of the minority script for
    ``language_mixing``; repeated word 10-grams for ``repetition``. Empty, non-string, binary (NUL bytes) and
    over-long (more than :data:`MAX_CHARS` characters) responses give all zeros; nothing raises.

    >>> r = reasoning_behaviours("Step 1: find x. To get 10, we need x = 4. Hmm, verify: 4 + 6 = 10.")
    >>> {k: r[k] for k in ("subgoal_setting", "backward_chaining", "verification", "thinking_words")}
    {'subgoal_setting': True, 'backward_chaining': True, 'verification': True, 'thinking_words': True}
    >>> reasoning_behaviours("我们先求 x 的值。Then we add three numbers together and divide by two.")["language_mixing"]
    True
    """
    out = _zeros()
    text = _text(response)
    if text is None:
        return out
    lower = text.lower()
    out["length_words"] = len(_words(_TAGS.sub(" ", lower) if "<" in lower else lower))
    reasoning = reasoning_part(lower)
    ascii_only = reasoning.isascii()
    for name in PATTERNS:
        count = _behaviour_count(name, reasoning, ascii_only)
        out[name] = count > 0
        out[f"{name}_count"] = count
    if not ascii_only:  # pure ASCII has no CJK: no mixing
        cjk, latin = _scripts(reasoning_part(text))
        minority = min(cjk, latin)
        if minority >= MIXING_MIN_UNITS and minority >= MIXING_MIN_SHARE * (cjk + latin):
            out["language_mixing"], out["language_mixing_count"] = True, minority
    words = _words(reasoning)
    count = len(words) - REPETITION_N + 1
    ratio = repeated_ngram_ratio(words) if count > 0 else 0.0
    if ratio > REPETITION_THRESHOLD:
        out["repetition"], out["repetition_count"] = True, round(ratio * count)
    return out


def metric_names(prefix: str = "behaviour") -> list[str]:
    """The names :func:`behaviour_metrics` returns, in order.

    >>> metric_names()[:3]
    ['behaviour/verification/rate', 'behaviour/verification/reward_gap', 'behaviour/backtracking/rate']
    >>> metric_names()[-1]
    'behaviour/length_words/mean'
    """
    names = [f"{prefix}/{k}/{s}" for k in BEHAVIOURS for s in ("rate", "reward_gap")]
    return names + [f"{prefix}/length_words/mean"]


def _mean(xs: list[float]) -> float:
    return math.fsum(xs) / len(xs) if xs else float("nan")


def behaviour_metrics(
    results: Sequence[Mapping[str, Any]], rewards: Sequence[float] | None = None, prefix: str = "behaviour"
) -> dict[str, float]:
    """Per-batch metrics from :func:`reasoning_behaviours` results and each response's reward.

    ``{prefix}/{name}/rate``: the share of responses showing the behaviour. ``{prefix}/{name}/reward_gap``: the mean
    reward of responses with it minus that of responses without it (NaN when either side is empty, no rewards are
    given, or a reward is not a finite number). ``{prefix}/length_words/mean``: the mean length in words. An empty
    batch gives NaN everywhere.

    >>> rs = [reasoning_behaviours(t) for t in ("Wait, 5.", "It is 4.", "Hmm, 5.", "So 3.")]
    >>> m = behaviour_metrics(rs, rewards=[1.0, 0.0, 1.0, 0.5])
    >>> m["behaviour/thinking_words/rate"], m["behaviour/thinking_words/reward_gap"]
    (0.5, 0.75)
    """
    n = len(results)
    gaps_ok = rewards is not None and len(rewards) == n
    if gaps_ok:
        try:
            values = [float(r) for r in rewards]  # type: ignore[union-attr]
        except (TypeError, ValueError):
            values, gaps_ok = [], False
        gaps_ok = gaps_ok and all(math.isfinite(v) for v in values)
    out: dict[str, float] = {}
    for key in BEHAVIOURS:
        flags = [bool(r.get(key, False)) for r in results]
        out[f"{prefix}/{key}/rate"] = sum(flags) / n if n else float("nan")
        if gaps_ok:
            with_ = [v for v, f in zip(values, flags, strict=True) if f]
            without = [v for v, f in zip(values, flags, strict=True) if not f]
            out[f"{prefix}/{key}/reward_gap"] = _mean(with_) - _mean(without)
        else:
            out[f"{prefix}/{key}/reward_gap"] = float("nan")
    out[f"{prefix}/length_words/mean"] = _mean([float(r.get("length_words", 0)) for r in results])
    return out
