"""Knights & Knaves puzzles: a generator with unique solutions, Logic-RL's answer parser and its reward.

On the island every inhabitant is a knight, who always tells the truth, or a knave, who always lies.
Each inhabitant makes one statement about the others; the task is to say who is what. The puzzles
follow the K&K benchmark (Xie et al. 2024, "On Memorization of Large Language Models in Logical
Reasoning", arXiv 2410.23123) that Logic-RL (Xie et al. 2025, arXiv 2502.14768) trains on; the
difficulty is the number of people N (2..8).

Statements use the K&K data files' structure, so the ``statements`` column of Logic-RL's parquet
files can be read back with :func:`solve`:

==============================  =============================================
``('telling-truth', i)``        person i is a knight
``('lying', i)``                person i is a knave
``('not', s)``                  s is false
``('and', s1, s2, ...)``        all hold (``'or'``: at least one holds)
``('->', s1, s2)``              if s1 then s2
``('<=>', s1, s2)``             s1 if and only if s2
==============================  =============================================

Scoring (:func:`score`, data sources ``knights_knaves`` and ``kk_logic``) uses Logic-RL's ``kk.py``
reward: format +1 / -1 (each of ``<think>``, ``</think>``, ``<answer>``, ``</answer>`` exactly once,
in order), answer +2 all identities right, -1.5 parsed but wrong, -2 unparseable, empty or format
failed; totals 3, -0.5, -1, -3. Logic-RL checks the tags in the prompt's tail plus the response,
and its prompts end with ``<think>``; :func:`score` says when our score equals its.

>>> p = generate_puzzle(3, seed=7)
>>> len(solve(p.statements))
1
>>> answer = "...</think><answer>" + p.solution_text + "</answer>"  # after a prompt ending in <think>
>>> score(answer, p.ground_truth(), {}, "logicrl", think_prefilled=True)["score"]
3.0
"""

from __future__ import annotations

import ast
import json
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from reward_fns import schemes
from reward_fns.format import extract_tag, format_ok

__all__ = [
    "Puzzle",
    "generate_puzzle",
    "solve",
    "render_statement",
    "parse_answer",
    "parse_solution_text",
    "score",
    "score_kk_logic",
]

Statement = tuple  # nested tuples, see the module docstring

MIN_PEOPLE, MAX_PEOPLE = 2, 8  # the K&K benchmark's sizes, 2 to 8 people (Xie et al. 2024)
_LEAVES = ("telling-truth", "lying")
_BINARY = ("and", "or", "->", "<=>")
# Top-level shapes, equally likely, as in K&K's sampler (depth 2, width 2).
_SHAPES = ("leaf", "not", "and", "or", "->", "<=>")
_MAX_RESAMPLES = 100_000  # a guard only: measured mean < 10, max < 100 redraws (300 seeds per size)

# Single-word names (Logic-RL's ground-truth parser reads the first [A-Za-z]+ word of each line).
_NAMES = (
    "Zoey", "Oliver", "Ethan", "Mia", "Liam", "Ava", "Noah", "Emma", "Lucas", "Sofia", "Mason", "Amelia",
    "Henry", "Harper", "Jack", "Chloe", "Owen", "Lily", "Samuel", "Aria", "David", "Ella", "Joseph", "Nora",
    "Daniel", "Ruby", "Isaac", "Hazel", "Leo", "Violet", "Caleb", "Stella", "Aiden", "Scarlett", "Logan",
    "Penelope", "Elijah", "Aurora", "Jacob", "Evelyn",
)  # fmt: skip

_SAYINGS = (
    "{name} says that {content}.",
    "{name} tells you that {content}.",
    '{name} claims, "{Content}."',
    '"{Content}," says {name}.',
    'In {name}\'s words: "{Content}."',
    '{name} remarks: "{Content}."',
)

_PREFIX = (
    "A very special island is inhabited only by knights and knaves. "
    "Knights always tell the truth, and knaves always lie. "
)
_QUESTION = "So who is a knight and who is a knave?"


@dataclass(frozen=True)
class Puzzle:
    """One Knights & Knaves puzzle with its unique solution.

    ``solution[i]`` is True when ``names[i]`` is a knight; ``statements[i]`` is what ``names[i]``
    says; ``solution_text`` is Logic-RL's ``solution_text_format`` (``(k) Name is a knight|knave``).

    >>> p = generate_puzzle(2, seed=0)
    >>> p.n_people, len(p.statements), p.solution_text.count("\\n")
    (2, 2, 1)
    """

    n_people: int
    seed: int
    names: tuple[str, ...]
    statements: tuple[Statement, ...]
    solution: tuple[bool, ...]
    text: str
    solution_text: str

    def ground_truth(self) -> dict[str, str]:
        """The ground truth in the shape of Logic-RL's parquet rows (``reward_model.ground_truth``).

        >>> gt = generate_puzzle(2, seed=0).ground_truth()
        >>> sorted(gt)
        ['solution_text_format', 'statements']
        >>> solve(gt["statements"]) == [generate_puzzle(2, seed=0).solution]
        True
        """
        return {"solution_text_format": self.solution_text, "statements": repr(self.statements)}


# ----------------------------------------------------------------------------------------------
# Solving
# ----------------------------------------------------------------------------------------------


@cache
def _knight_masks(n: int) -> tuple[int, ...]:
    """Bit ``a`` of mask ``i`` is set when person ``i`` is a knight in assignment ``a`` (bit i of a)."""
    return tuple(sum(1 << a for a in range(1 << n) if a >> i & 1) for i in range(n))


def _mask(stmt: Statement, knights: tuple[int, ...], full: int) -> int:
    """The set of assignments (as a bitmask) under which ``stmt`` is true."""
    op = stmt[0]
    if op == "telling-truth":
        return knights[stmt[1]]
    if op == "lying":
        return full & ~knights[stmt[1]]
    if op == "not":
        return full & ~_mask(stmt[1], knights, full)
    subs = [_mask(s, knights, full) for s in stmt[1:]]
    if op == "and":
        out = full
        for m in subs:
            out &= m
        return out
    if op == "or":
        out = 0
        for m in subs:
            out |= m
        return out
    if op == "->":
        return full & (~subs[0] | subs[1])
    return full & ~(subs[0] ^ subs[1])  # '<=>'


def _check_statement(stmt: Any, n: int) -> None:
    if not isinstance(stmt, tuple) or not stmt:
        raise ValueError(f"statement must be a non-empty tuple, got {stmt!r}")
    op, args = stmt[0], stmt[1:]
    if op in _LEAVES:
        if len(args) != 1 or not isinstance(args[0], int) or isinstance(args[0], bool) or not 0 <= args[0] < n:
            raise ValueError(f"{op!r} needs one person index in 0..{n - 1}, got {stmt!r}")
        return
    arity = {"not": (1, 1), "and": (2, None), "or": (2, None), "->": (2, 2), "<=>": (2, 2)}.get(op)
    if arity is None:
        raise ValueError(f"unknown operator {op!r} in {stmt!r}; valid: {', '.join(_LEAVES + ('not',) + _BINARY)}")
    lo, hi = arity
    if len(args) < lo or (hi is not None and len(args) > hi):
        raise ValueError(f"operator {op!r} got {len(args)} operands in {stmt!r}")
    for sub in args:
        _check_statement(sub, n)


def _as_statements(statements: Sequence[Statement] | str) -> tuple[Statement, ...]:
    if isinstance(statements, str):
        try:
            statements = ast.literal_eval(statements)
        except (ValueError, SyntaxError) as e:
            raise ValueError(f"statements string is not a tuple literal like Logic-RL's: {e}") from None
    if not isinstance(statements, (tuple, list)) or not statements:
        raise ValueError(f"statements must be a non-empty sequence (one per person), got {statements!r}")
    out = tuple(statements)
    if len(out) > 20:
        raise ValueError(f"{len(out)} people is too many to enumerate (at most 20)")
    for stmt in out:
        _check_statement(stmt, len(out))
    return out


def _solution_mask(statements: tuple[Statement, ...]) -> int:
    n = len(statements)
    full = (1 << (1 << n)) - 1
    knights = _knight_masks(n)
    consistent = full
    for i, stmt in enumerate(statements):
        # a knight's statement is true, a knave's is false: knight_i <=> stmt_i
        consistent &= full & ~(knights[i] ^ _mask(stmt, knights, full))
    return consistent


def solve(statements: Sequence[Statement] | str) -> list[tuple[bool, ...]]:
    """All assignments (True = knight) that make every knight's statement true and every knave's false.

    ``statements[i]`` is person i's statement, as nested tuples or as the string in Logic-RL's
    ``statements`` column. Enumerates all 2^N assignments; a malformed statement raises ``ValueError``.

    >>> solve((("lying", 1), ("and", ("telling-truth", 0), ("telling-truth", 1))))
    [(True, False)]
    >>> solve("(('telling-truth', 1), ('telling-truth', 0))")  # both knights, or both knaves
    [(False, False), (True, True)]
    >>> solve((("maybe", 1), ("lying", 0)))
    Traceback (most recent call last):
    ...
    ValueError: unknown operator 'maybe' in ('maybe', 1); valid: telling-truth, lying, not, and, or, ->, <=>
    """
    stmts = _as_statements(statements)
    n = len(stmts)
    mask = _solution_mask(stmts)
    return [tuple(bool(a >> i & 1) for i in range(n)) for a in range(1 << n) if mask >> a & 1]


# ----------------------------------------------------------------------------------------------
# Rendering
# ----------------------------------------------------------------------------------------------


def _role(knight: bool) -> str:
    return "knight" if knight else "knave"


def render_statement(names: Sequence[str], stmt: Statement) -> str:
    """A statement in plain English, as it appears in the puzzle text.

    >>> names = ("Zoey", "Oliver")
    >>> render_statement(names, ("not", ("lying", 1)))
    'Oliver is not a knave'
    >>> render_statement(names, ("->", ("telling-truth", 0), ("lying", 1)))
    'if Zoey is a knight then Oliver is a knave'
    >>> render_statement(names, ("<=>", ("lying", 1), ("telling-truth", 0)))
    'Oliver is a knave if and only if Zoey is a knight'
    """
    op = stmt[0]
    if op in _LEAVES:
        return f"{names[stmt[1]]} is a {_role(op == 'telling-truth')}"
    if op == "not" and stmt[1][0] in _LEAVES:
        return f"{names[stmt[1][1]]} is not a {_role(stmt[1][0] == 'telling-truth')}"

    def sub(s: Statement) -> str:
        text = render_statement(names, s)
        return text if s[0] in _LEAVES or (s[0] == "not" and s[1][0] in _LEAVES) else f"({text})"

    if op == "not":
        return f"it is not true that {sub(stmt[1])}"
    if op in ("and", "or"):
        parts = [sub(s) for s in stmt[1:]]
        return ", ".join(parts[:-1]) + f" {op} " + parts[-1]
    if op == "->":
        return f"if {sub(stmt[1])} then {sub(stmt[2])}"
    return f"{sub(stmt[1])} if and only if {sub(stmt[2])}"


def _list_names(names: Sequence[str]) -> str:
    if len(names) == 2:
        return f"{names[0]} and {names[1]}"
    return ", ".join(names[:-1]) + ", and " + names[-1]


def _solution_text(names: Sequence[str], solution: Sequence[bool]) -> str:
    return "\n".join(
        f"({k}) {name} is a {_role(knight)}" for k, (name, knight) in enumerate(zip(names, solution, strict=True), 1)
    )


# ----------------------------------------------------------------------------------------------
# Generation
# ----------------------------------------------------------------------------------------------
# Only rng.random() is used: Python guarantees its sequence for a given seed across versions, but
# not that of choice()/shuffle()/randrange(), so puzzles stay identical on every supported Python.


def _below(rng: random.Random, n: int) -> int:
    return min(int(rng.random() * n), n - 1)


def _leaf(rng: random.Random, speaker: int, n: int, *, others_only: bool, exclude: int = -1) -> Statement:
    while True:
        person = _below(rng, n)
        kind = _LEAVES[_below(rng, 2)]
        if person == exclude or (person == speaker and (others_only or kind == "lying")):
            continue  # no self-verdicts at the top level: they are vacuous or contradictory
        return (kind, person)


def _sample_statement(rng: random.Random, speaker: int, n: int) -> Statement:
    shape = _SHAPES[_below(rng, len(_SHAPES))]
    if shape == "leaf":
        return _leaf(rng, speaker, n, others_only=True)
    if shape == "not":
        return ("not", _leaf(rng, speaker, n, others_only=True))
    first = _leaf(rng, speaker, n, others_only=False)
    second = _leaf(rng, speaker, n, others_only=False, exclude=first[1])  # two different people
    return (shape, first, second)


def _sample_consistent(rng: random.Random, speaker: int, solution: tuple[bool, ...]) -> Statement:
    """A statement that is true if the speaker is a knight and false if a knave, under ``solution``."""
    n = len(solution)
    index = sum(1 << i for i, knight in enumerate(solution) if knight)
    while True:
        stmt = _sample_statement(rng, speaker, n)
        if bool(_mask(stmt, _knight_masks(n), (1 << (1 << n)) - 1) >> index & 1) == solution[speaker]:
            return stmt


def generate_puzzle(n_people: int, seed: int) -> Puzzle:
    """A Knights & Knaves puzzle with ``n_people`` (2..8) inhabitants and exactly one solution.

    The same ``(n_people, seed)`` always gives the same puzzle, on every Python version, and the
    global ``random`` state is neither used nor changed. The hidden roles are drawn first, each
    person gets a statement consistent with them, and statements are redrawn until enumeration of
    all 2^N assignments finds no other solution.

    >>> p = generate_puzzle(3, seed=1)
    >>> p.names
    ('Aurora', 'Harper', 'Oliver')
    >>> print(p.solution_text)
    (1) Aurora is a knight
    (2) Harper is a knave
    (3) Oliver is a knight
    >>> p == generate_puzzle(3, seed=1), solve(p.statements) == [p.solution]
    (True, True)
    >>> generate_puzzle(9, seed=0)
    Traceback (most recent call last):
    ...
    ValueError: n_people must be an int in 2..8, got 9
    """
    if not isinstance(n_people, int) or isinstance(n_people, bool) or not MIN_PEOPLE <= n_people <= MAX_PEOPLE:
        raise ValueError(f"n_people must be an int in {MIN_PEOPLE}..{MAX_PEOPLE}, got {n_people!r}")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    rng = random.Random(f"reward_fns.logic:{n_people}:{seed}")

    pool = list(_NAMES)
    names = tuple(pool.pop(_below(rng, len(pool))) for _ in range(n_people))
    solution = tuple(rng.random() < 0.5 for _ in range(n_people))
    statements = [_sample_consistent(rng, i, solution) for i in range(n_people)]
    for _ in range(_MAX_RESAMPLES):
        mask = _solution_mask(tuple(statements))
        if mask & (mask - 1) == 0:  # one bit: the hidden solution is the only one
            break
        speaker = _below(rng, n_people)
        statements[speaker] = _sample_consistent(rng, speaker, solution)
    else:  # pragma: no cover - would need a generator bug
        raise RuntimeError(f"no unique puzzle for n_people={n_people}, seed={seed}")

    sayings = [
        _SAYINGS[_below(rng, len(_SAYINGS))].format(
            name=name, content=(c := render_statement(names, stmt)), Content=c[0].upper() + c[1:]
        )
        for name, stmt in zip(names, statements, strict=True)
    ]
    text = f"{_PREFIX}You meet {n_people} inhabitants: {_list_names(names)}. " + " ".join(sayings) + f" {_QUESTION}"
    return Puzzle(
        n_people=n_people,
        seed=seed,
        names=names,
        statements=tuple(statements),
        solution=solution,
        text=text,
        solution_text=_solution_text(names, solution),
    )


# ----------------------------------------------------------------------------------------------
# Parsing and scoring (Logic-RL semantics)
# ----------------------------------------------------------------------------------------------

_GT_LINE = re.compile(r"\b([A-Za-z]+)\b.*?\b(knight|knave)\b", re.IGNORECASE)
_ROLE_WORD = re.compile(r"knight|knave", re.IGNORECASE)


def parse_answer(text: str, names: Sequence[str]) -> dict[str, bool] | None:
    """Logic-RL's answer parser: ``{name: is_knight}``, or ``None`` when the answer cannot be parsed.

    It parses only when the words "knight" and "knave" occur in the lower-cased text (also inside
    "knights") exactly once per person in total, and every name is followed by
    ``is a knight`` / ``is a knave``. Numbering, a bold line and trailing punctuation are fine;
    ``**Zoey** is a knight`` is not, as in Logic-RL (scores must equal Logic-RL's).

    >>> parse_answer("(1) **Zoey is a knight.**\\n(2) oliver is a Knave", ["Zoey", "Oliver"])
    {'Zoey': True, 'Oliver': False}
    >>> parse_answer("Zoey is a knight, Oliver is a knave, so there is one knight.", ["Zoey", "Oliver"]) is None
    True
    >>> parse_answer("Zoey is a knight and Ethan is a knave", ["Zoey", "Oliver"]) is None
    True
    """
    said = _said_roles(text, names)
    return None if said is None else {name: role == "knight" for name, role in said.items()}


def _said_roles(text: Any, names: Sequence[str]) -> dict[str, str] | None:
    """Each name's lower-cased role word as matched (``knight``, ``knave``, or a Unicode case
    variant that lower-cases to neither and so is never right), or ``None``: Logic-RL's parser."""
    if not isinstance(text, str) or not names:
        return None
    low = text.lower()  # str.lower, as Logic-RL counts: "KNİGHT".lower() holds no "knight"
    if low.count("knight") + low.count("knave") != len(names):
        return None
    out: dict[str, str] = {}
    for name in names:
        m = re.search(rf"\b{re.escape(name)}\b\s+is\s+a\s+\b(knight|knave)\b", text, re.IGNORECASE)
        if m is None:
            return None
        out[name] = m.group(1).lower()
    return out


def parse_solution_text(solution_text: str) -> dict[str, bool]:
    """Read Logic-RL's ``solution_text_format`` (one ``(k) Name is a knight|knave`` per line).

    Like Logic-RL, the name is the first word of each line. Unlike Logic-RL, which skips them
    silently, a line that does not name exactly one role, or a repeated name, raises ``ValueError``.

    >>> parse_solution_text("(1) Zoey is a knight\\n(2) Oliver is a knave\\n")
    {'Zoey': True, 'Oliver': False}
    >>> parse_solution_text("Zoey is a knight, and Oliver is a knave.")
    Traceback (most recent call last):
    ...
    ValueError: solution line 1 names 2 roles; expected one '(k) Name is a knight|knave' per line: 'Zoey is a knight, and Oliver is a knave.'
    """
    roles: dict[str, bool] = {}
    for k, line in enumerate(solution_text.split("\n"), 1):
        line = line.strip()
        if not line:
            continue
        m = _GT_LINE.search(line)
        n_roles = len(_ROLE_WORD.findall(line))
        if m is None or n_roles != 1:
            raise ValueError(
                f"solution line {k} names {n_roles} roles; expected one '(k) Name is a knight|knave' per line: {line!r}"
            )
        name = m.group(1)
        if name in roles:
            raise ValueError(f"solution line {k} repeats {name!r}")
        roles[name] = m.group(2).lower() == "knight"
    if not roles:
        raise ValueError("solution text has no '(k) Name is a knight|knave' lines")
    return roles


def _ground_truth_roles(ground_truth: Any) -> dict[str, bool]:
    if isinstance(ground_truth, str):
        stripped = ground_truth.strip()
        if stripped.startswith(("{", "[")):
            try:
                ground_truth = json.loads(stripped)
            except json.JSONDecodeError as e:
                raise ValueError(f"ground_truth looks like JSON but does not parse: {e}") from None
        else:
            return parse_solution_text(ground_truth)
    if isinstance(ground_truth, Mapping):
        if "solution_text_format" not in ground_truth:
            raise ValueError(
                f"knights & knaves ground_truth needs a 'solution_text_format' key, got keys {sorted(map(str, ground_truth))}"
            )
        text = ground_truth["solution_text_format"]
        if not isinstance(text, str):
            raise TypeError(f"ground_truth['solution_text_format'] must be a str, got {type(text).__name__}")
        return parse_solution_text(text)
    raise TypeError(
        "knights & knaves ground_truth must be a dict with 'solution_text_format' (Logic-RL rows), its JSON "
        f"string, or the solution text itself; got {type(ground_truth).__name__}"
    )


def _answer_text(text: str) -> str:
    tagged = extract_tag(text, "answer")
    if tagged is not None:
        return tagged
    end = text.rfind("</think>")
    return text[end + len("</think>") :] if end >= 0 else text


def _think_prefilled(kwargs: dict[str, Any], extra_info: Mapping[str, Any], default: bool | None) -> bool | None:
    value = kwargs.get("think_prefilled")
    if value is None:
        value = extra_info.get("think_prefilled")
    if value is None:
        return default
    if not isinstance(value, bool):
        raise ValueError(f"think_prefilled must be true, false or unset, got {value!r}")
    return value


def score(
    solution_str: str, ground_truth: Any, extra_info: dict[str, Any] | None, scheme: str, **kwargs: Any
) -> dict[str, Any]:
    """Score a Knights & Knaves response; the scorer behind data source ``knights_knaves``.

    ``ground_truth`` is a Logic-RL row's dict (names and roles come from its ``solution_text_format``
    lines), the JSON string of one, or the solution text itself; anything else raises
    ``TypeError`` / ``ValueError`` (``compute_score`` turns that into the failure score).
    The answer is the last ``<answer>`` block (without one: the text after ``</think>``) read by
    :func:`parse_answer`. ``acc`` is 1.0 when every identity is right, whatever the format; ``pred``
    is the parsed answer (``Zoey=knight,...``).

    ``think_prefilled`` (``kwargs``, else ``extra_info``; ``True``, ``False`` or unset) says whether
    the prompt ended with ``<think>``; see :mod:`reward_fns.format`. Logic-RL's ``kk.py`` scores
    the text after the prompt's first ``Assistant:`` (else ``<|im_start|>assistant``). Under
    ``logicrl`` our score equals its (3, -0.5, -1 formatted but unparseable or empty, -3 format
    failure) whenever ``think_prefilled`` is set and says whether that prompt tail holds a
    ``<think>``, and the tail holds no other tag. Unset (the default here, as our own data's chat prompts may or may not end with ``<think>``),
    a response without ``<think>`` is scored as after ``<think>`` and one with it as standing alone;
    so, unlike Logic-RL, a response that opens ``<think>`` after a prompt ending in ``<think>`` can
    score 3 (Logic-RL: -3, two ``<think>``), and so can one that never opens it after a prompt that
    does not end in ``<think>`` (Logic-RL: -3, none).

    >>> gt = {"solution_text_format": "(1) Zoey is a knight\\n(2) Oliver is a knave", "statements": "..."}
    >>> r = score("<think>hmm</think><answer>Zoey is a knight, Oliver is a knave</answer>", gt, {}, "logicrl")
    >>> r["score"], r["acc"], r["format_ok"], r["pred"]
    (3.0, 1.0, True, 'Zoey=knight,Oliver=knave')
    >>> score("<think>hmm</think><answer>Zoey is a knave, Oliver is a knave</answer>", gt, {}, "logicrl")["score"]
    -0.5
    >>> score("<think>hmm</think><answer>both knights</answer>", gt, {}, "logicrl")["score"]
    -1.0
    >>> score("<think>hmm</think><answer>Zoey is a knight, Oliver is a knave</answer>", gt,
    ...       {"think_prefilled": True}, "logicrl")["score"]  # two <think>: the prompt's and the response's
    -3.0
    >>> score("Zoey is a knight, Oliver is a knave", gt, {}, "logicrl")["score"]
    -3.0
    >>> score("Zoey is a knight, Oliver is a knave", gt, {}, "r1")["score"]  # r1: accuracy + format
    1.0
    """
    return _score(solution_str, ground_truth, extra_info, scheme, kwargs, default_prefilled=None)


def score_kk_logic(
    solution_str: str, ground_truth: Any, extra_info: dict[str, Any] | None, scheme: str, **kwargs: Any
) -> dict[str, Any]:
    """Score a response to a row of Logic-RL's own data files; the scorer behind data source ``kk_logic``.

    As :func:`score`, except that ``think_prefilled`` defaults to ``True``: both of Logic-RL's prompt
    templates (``examples/data_preprocess/kk.py``) end with ``Assistant: <think>`` or
    ``<|im_start|>assistant\\n<think>``, and Logic-RL's ``kk.py`` checks the tags in the text after
    that header, so it sees the prompt's ``<think>`` before every response (also when verl wraps the
    row's prompt in the model's chat template). Under ``logicrl`` the score then equals Logic-RL's:
    a response that opens ``<think>`` again fails the format (-3). Set ``think_prefilled=False`` for
    ``kk_logic`` rows whose prompt was rewritten to not end with ``<think>``.

    >>> gt, answer = "(1) Zoey is a knight\\n(2) Oliver is a knave", "<answer>Zoey is a knight, Oliver is a knave</answer>"
    >>> score_kk_logic("hmm</think>" + answer, gt, {}, "logicrl")["score"]
    3.0
    >>> score_kk_logic("<think>hmm</think>" + answer, gt, {}, "logicrl")["score"]  # a second <think>
    -3.0
    """
    return _score(solution_str, ground_truth, extra_info, scheme, kwargs, default_prefilled=True)


def _score(
    solution_str: str,
    ground_truth: Any,
    extra_info: dict[str, Any] | None,
    scheme: str,
    kwargs: dict[str, Any],
    *,
    default_prefilled: bool | None,
) -> dict[str, Any]:
    prefilled = _think_prefilled(kwargs, extra_info if isinstance(extra_info, Mapping) else {}, default_prefilled)
    roles = _ground_truth_roles(ground_truth)
    names = list(roles)
    said = _said_roles(_answer_text(solution_str), names)
    parsed = said is not None
    correct = parsed and all(said[n] == _role(roles[n]) for n in names)
    ok = format_ok(scheme, solution_str, parsed, think_prefilled=prefilled)
    pred_str = ",".join(f"{n}={said[n]}" for n in names) if said is not None else ""
    return schemes.make_result(
        schemes.score(scheme, format_ok=ok, parsed=parsed, correct=correct),
        acc=float(correct),
        format_ok=ok,
        pred=pred_str,
    )
