"""Hand-written AZR tasks: the seeds every buffer starts from, and a held-out set for validation.

The reference seeds deduction and abduction with the identity function ``def f(a): return a`` on ``'Hello world'``
(AZR paper, §3.3.1, and ``absolute_zero_reasoner/data_construction``) and then lets the base model propose 256
more; these are a few more hand-written ones in the same spirit, so a small model has varied references from the
first step. The held-out programs never enter a buffer: they build the fixed validation set that
``trainer.test_freq`` scores (:func:`validation_tasks`). Outputs are written here as ``repr`` strings and checked
against the sandbox by ``tests/test_azr.py``.
"""

from __future__ import annotations

from verl_selfplay.azr.buffers import Task

IDENTITY = "def f(a):\n    return a"

# (program, input, repr(output)); deduction and abduction share them, as in the reference.
_CODE_SEEDS: list[tuple[str, str, str]] = [
    (IDENTITY, "'Hello world'", "'Hello world'"),
    ("def f(a):\n    return a + 3", "5", "8"),
    ("def f(a):\n    return a * 2", "7", "14"),
    ("def f(s):\n    return s[::-1]", "'abc'", "'cba'"),
    ("def f(xs):\n    return sorted(xs)", "[3, 1, 2]", "[1, 2, 3]"),
    ("def f(xs):\n    return sum(xs)", "[1, 2, 3, 4]", "10"),
    ("def f(s):\n    return s.upper()", "'hi'", "'HI'"),
    ("def f(a, b):\n    return a - b", "9, 4", "5"),
    ("def f(xs):\n    return [x for x in xs if x % 2 == 0]", "[1, 2, 3, 4]", "[2, 4]"),
    ("def f(s):\n    return len(s)", "'hello'", "5"),
]

# (program, 10 inputs, 10 repr outputs, message) for induction
_INDUCTION_SEEDS: list[tuple[str, list[str], list[str], str]] = [
    (
        "def f(a):\n    return a + 1",
        [str(i) for i in range(10)],
        [str(i + 1) for i in range(10)],
        "The function does one small arithmetic step.",
    ),
    (
        "def f(s):\n    return s[::-1]",
        ["'ab'", "'abc'", "'x'", "'hello'", "'12'", "'aa'", "'xyz'", "'no'", "'pq'", "'dog'"],
        ["'ba'", "'cba'", "'x'", "'olleh'", "'21'", "'aa'", "'zyx'", "'on'", "'qp'", "'god'"],
        "It rearranges the characters of a string.",
    ),
    (
        "def f(xs):\n    return max(xs)",
        ["[1, 2]", "[5, 3]", "[0]", "[7, 7, 1]", "[-1, -2]", "[4, 9, 2]", "[3]", "[8, 1]", "[2, 6]", "[1, 0, 5]"],
        ["2", "5", "0", "7", "-1", "9", "3", "8", "6", "5"],
        "Think about which element of the list is chosen.",
    ),
]

# held out: never in a buffer, used only for validation
_HELD_OUT: list[tuple[str, str, str]] = [
    ("def f(a):\n    return a - 1", "10", "9"),
    ("def f(a):\n    return a * a", "4", "16"),
    ("def f(s):\n    return s + s", "'ab'", "'abab'"),
    ("def f(xs):\n    return xs[0]", "[9, 8]", "9"),
    ("def f(s):\n    return s.lower()", "'AB'", "'ab'"),
    ("def f(xs):\n    return len(xs)", "[1, 1, 1]", "3"),
]
_HELD_OUT_INDUCTION: list[tuple[str, list[str], list[str], str]] = [
    (
        "def f(a):\n    return a * 3",
        [str(i) for i in range(10)],
        [str(i * 3) for i in range(10)],
        "The function scales its argument.",
    ),
    (
        "def f(xs):\n    return min(xs)",
        ["[1, 2]", "[5, 3]", "[0]", "[7, 7, 1]", "[-1, -2]", "[4, 9, 2]", "[3]", "[8, 1]", "[2, 6]", "[1, 0, 5]"],
        ["1", "3", "0", "1", "-2", "2", "3", "1", "2", "0"],
        "Which element of the list is chosen?",
    ),
]


def _code_tasks(task_type: str, items: list[tuple[str, str, str]]) -> list[Task]:
    return [Task(task_type, program, [inp], [out]) for program, inp, out in items]


def _induction_tasks(items: list[tuple[str, list[str], list[str], str]]) -> list[Task]:
    return [Task("induction", p, list(i), list(o), message=m) for p, i, o, m in items]


def seed_tasks() -> dict[str, list[Task]]:
    """The hand-written seed tasks of each type (fresh objects on every call)."""
    return {
        "deduction": _code_tasks("deduction", _CODE_SEEDS),
        "abduction": _code_tasks("abduction", _CODE_SEEDS),
        "induction": _induction_tasks(_INDUCTION_SEEDS),
    }


def validation_tasks() -> dict[str, list[Task]]:
    """The held-out tasks of each type, for the fixed validation set (never in a buffer)."""
    return {
        "deduction": _code_tasks("deduction", _HELD_OUT),
        "abduction": _code_tasks("abduction", _HELD_OUT),
        "induction": _induction_tasks(_HELD_OUT_INDUCTION),
    }
