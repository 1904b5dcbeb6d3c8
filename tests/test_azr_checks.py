"""AZR task checks (reward_fns.code.azr) and the code_exec / azr_* data sources of compute_score.

All executions go through a real Sandbox (fork server + fresh child per job).
"""

from __future__ import annotations

import json

import pytest

from reward_fns import RESULT_KEYS, compute_score
from reward_fns.code import Sandbox, configure_default_sandbox
from reward_fns.code.azr import (
    check_abduction,
    check_deduction,
    check_induction,
    check_program,
    extract_answer,
    extract_blocks,
    extract_code,
    parse_proposal,
    parse_solver_answer,
    task_type,
    validate_proposal,
    values_equal,
)
from reward_fns.code.forbidden import FORBIDDEN_MODULES, find_forbidden


@pytest.fixture(scope="module")
def sb():
    with Sandbox(workers=2, timeout=2.0, memory_mb=256) as box:
        yield box


@pytest.fixture(scope="module")
def default_box():
    configure_default_sandbox(workers=2, timeout=2.0, memory_mb=256)
    yield
    configure_default_sandbox()


def wrap(answer: str, think: str = "reasoning") -> str:
    return f"<think>{think}</think>\n<answer>{answer}</answer>"


# ------------------------------------------------------------------------------------------ forbidden list
@pytest.mark.parametrize(
    "code",
    [
        "import os\ndef f(a): return a",
        "import os.path\ndef f(a): return a",
        "from os import path\ndef f(a): return a",
        "import subprocess as sp\ndef f(a): return a",
        "from importlib import import_module\ndef f(a): return a",
        "import random\ndef f(a): return random.random()",
        "import time\ndef f(a): return time.time()",
        "from datetime import datetime\ndef f(a): return datetime.now()",
        "import _thread\ndef f(a): return a",
        "import sys\ndef f(a): return sys.modules",
        "def f(a):\n    import socket\n    return a",
        "def f(a): return open('/etc/passwd').read()",
        "def f(a): return eval(a)",
        "def f(a): exec(a)",
        "def f(a): return __import__('os')",
        "def f(a): return globals()",
        "def f(a): return ().__class__.__bases__[0].__subclasses__()",
        "def f(a): return f.__globals__",
        "def f(a): return getattr(a, '__class__')",
        "def f(a, n): return getattr(a, n)",
        "def f(a):\n    g = getattr\n    return g(a, 'x')",
        "def f(a): return __builtins__",
        "def f(a): return input()",
        "def f(a): breakpoint()",
        "def f(a): return id(a)",
        "def f(a):\n    g = a\n    return input()",
        "def f(a): return hash(a)",
        "from . import x\ndef f(a): return a",
        "def f(a): return (lambda: 0).__code__",
    ],
)
def test_forbidden_constructs_are_found(code):
    assert find_forbidden(code) is not None
    assert check_program(code)[0] == "forbidden"


@pytest.mark.parametrize(
    "code",
    [
        "from collections import Counter, deque\nimport itertools, math, heapq, bisect, functools, string, re\n"
        "def f(a):\n    return sorted(Counter(a).items())",
        "from functools import lru_cache\n@lru_cache(None)\ndef f(n):\n    return n if n < 2 else f(n - 1) + f(n - 2)",
        "class Node:\n    def __init__(self, v):\n        self.v = v\n    def __repr__(self):\n        return f'Node({self.v})'\n"
        "def f(a):\n    return repr(Node(a))",
        "def f(x, *args, key=None, **kw):\n    def inner(y):\n        return y * 2\n    return [inner(v) for v in (x, *args)]",
        "from dataclasses import dataclass\n@dataclass\nclass P:\n    x: int\ndef f(a):\n    return getattr(P(a), 'x')",
        "import statistics\ndef f(a):\n    return statistics.mean(a)",
        "def f(input, memo={}):\n    return input",  # variables named like harmless builtins (from AZR's seeds)
        "def f(name, info):\n    return name\n\ninput = 'John', {'age': 20}",
        "def f(a):\n    id = a + 1\n    return id",
    ],
)
def test_ordinary_programs_are_allowed(code):
    assert check_program(code) is None, find_forbidden(code)


def test_forbidden_list_covers_the_reference_list():
    reference = ["logging", "random", "multiprocessing", "pebble", "subprocess", "threading", "datetime", "time",
                 "hashlib", "hmac", "bcrypt", "os", "sys", "calendar"]  # fmt: skip
    assert set(reference) <= FORBIDDEN_MODULES
    for extra in ("shutil", "socket", "ctypes", "importlib", "pickle", "io", "pathlib", "signal", "asyncio"):
        assert extra in FORBIDDEN_MODULES


# ------------------------------------------------------------------------------------ validate_proposal
def test_valid_proposal_returns_repr_outputs(sb):
    program = "def f(s, k=1):\n    return {c: s.count(c) * k for c in sorted(set(s))}"
    v = validate_proposal(program, ["'abca'", "'zz', k=2", "''"], sandbox=sb)
    assert v.valid and bool(v) and v.reason == ""
    assert v.outputs == ("{'a': 2, 'b': 1, 'c': 1}", "{'z': 4}", "{}")


@pytest.mark.parametrize(
    "program, inputs, reason",
    [
        ("", "1", "parse_error"),
        ("def f(a) return a", "1", "parse_error"),
        ("def f(a):\n    return a\x00", "1", "parse_error"),
        ("import os\ndef f(a): return a", "1", "forbidden"),
        ("def g(a): return a", "1", "no_function"),
        ("x = 1", "1", "no_function"),
        ("async def f(a): return a", "1", "no_function"),
        ("def f(a): return a\ndef g(b): return b", "1", "multiple_functions"),
        ("def f(): return 1", "", "no_arguments"),
        ("def f(a): return a", "list(range(3))", "bad_input"),
        ("def f(a): return a", "x", "bad_input"),
        ("def f(a): return a", [], "bad_input"),
        ("def f(a):\n    return a[10]", "[1]", "error"),
        ("def f(a):\n    while True:\n        pass", "1", "timeout"),
        ("def f(a):\n    return bytearray(a)", "10 ** 10", "bad_input"),
        ("def f(a):\n    return bytearray(a)", "10000000000", "memory"),
        ("def f(a):\n    return object()", "1", "unrepresentable_output"),
        ("def f(a):\n    return float('inf')", "1", "unrepresentable_output"),
        ("def f(a):\n    return (x for x in a)", "[1]", "unrepresentable_output"),
        ("def f(a):\n    return 'x' * (4 << 20)", "1", "unrepresentable_output"),
        # statistics is allowed, but NormalDist.samples draws from a urandom-seeded RNG: caught at run time
        ("from statistics import NormalDist\ndef f(a):\n    return NormalDist().samples(a)", "3", "nondeterministic"),
    ],
)
def test_invalid_proposals_have_a_machine_readable_reason(sb, program, inputs, reason):
    v = validate_proposal(program, inputs, repeats=2, sandbox=sb, timeout=1.0)
    assert not v.valid and not v and v.reason == reason, v
    assert v.detail


def test_determinism_is_checked_in_separate_processes(sb):
    # a module-level counter would differ between two calls in one process; each repeat is a fresh process
    program = "calls = []\ndef f(a):\n    calls.append(a)\n    return len(calls)"
    v = validate_proposal(program, "0", repeats=3, sandbox=sb)
    assert v.valid and v.outputs == ("1",)
    with pytest.raises(ValueError, match="repeats"):
        validate_proposal(program, "0", repeats=0, sandbox=sb)


# ------------------------------------------------------------------------------------------ solver checks
@pytest.mark.parametrize(
    "gold, pred, equal",
    [
        ("[1, 2]", "[1,2]", True),
        ("1", "1.0", True),  # Python ==
        ("True", "1", True),  # Python ==
        ("'a'", '"a"', True),
        ("{'x': [1, (2, 3)]}", "{'x': [1.0, (2, 3)]}", True),
        ("{1, 2, 3}", "{3, 2, 1}", True),
        ("set()", "set()", True),
        ("(1, 2)", "[1, 2]", False),
        ("'1'", "1", False),
        ("None", "'None'", False),
        ("[1, 2]", "[1, 2] and more", False),
        ("[1, 2]", "", False),
        ("3", "f(1)", False),  # calling the program is not an answer
        ("3", "1 + 2", False),  # nor is arithmetic
        ("3", "__import__('os').getpid()", False),
    ],
)
def test_deduction_compares_values(sb, gold, pred, equal):
    assert values_equal(gold, pred) is equal
    assert check_deduction("", "0", pred, expected_output=gold) is equal


def test_deduction_runs_the_program_when_no_gold_is_given(sb):
    program = "def f(a, b):\n    return sorted(set(a) - set(b))"
    assert check_deduction(program, "[3, 1, 2, 2], [2]", "[1, 3]", sandbox=sb)
    assert not check_deduction(program, "[3, 1, 2, 2], [2]", "[3, 1]", sandbox=sb)
    assert not check_deduction("def f(a):\n    raise ValueError", "1", "None", sandbox=sb)


def test_abduction_re_executes_the_program(sb):
    program = "def f(a, b):\n    return a * b"
    assert check_abduction(program, "3, 4", "12", sandbox=sb)
    assert check_abduction(program, "2, 6", "12", sandbox=sb)  # any input that reproduces the output
    assert check_abduction(program, "b=6, a=2", "12.0", sandbox=sb)
    assert check_abduction(program, "'ab', 2", "'abab'", sandbox=sb)
    assert not check_abduction(program, "3, 5", "12", sandbox=sb)
    assert not check_abduction(program, "int('3'), 4", "12", sandbox=sb)  # not a literal
    assert not check_abduction(program, "3, 4) or (True", "12", sandbox=sb)  # no injection
    assert not check_abduction(program, "None, 4", "12", sandbox=sb)  # TypeError in f
    slow = "def f(a):\n    while a:\n        pass\n    return a"
    assert not check_abduction(slow, "1", "1", sandbox=sb, timeout=0.5)


def test_induction_counts_hidden_pairs(sb):
    pairs = [("1", "2"), ("2", "4"), ("3", "6"), ("0", "0"), ("-1", "-2")]
    assert check_induction("def f(x):\n    return 2 * x", pairs, sandbox=sb) == 1.0
    assert check_induction("def f(x):\n    return x + x if x > 0 else 0", pairs, sandbox=sb) == 0.8
    assert check_induction("def f(x):\n    return x", pairs, sandbox=sb) == 0.2
    assert check_induction("def f(x) return x", pairs, sandbox=sb) == 0.0
    assert check_induction("import os\ndef f(x):\n    return 2 * x", pairs, sandbox=sb) == 0.0
    loops = "def f(x):\n    while x == 3:\n        pass\n    return 2 * x"
    assert check_induction(loops, pairs, sandbox=sb, timeout=0.5) == 0.8
    as_dicts = [{"input": i, "output": o} for i, o in pairs]
    as_lists = {"inputs": [i for i, _ in pairs], "outputs": [o for _, o in pairs]}
    for form in (as_dicts, as_lists, json.dumps(as_dicts), json.dumps(as_lists)):
        assert check_induction("def f(x):\n    return 2 * x", form, sandbox=sb) == 1.0
    with pytest.raises(ValueError):
        check_induction("def f(x): return x", [], sandbox=sb)
    with pytest.raises(ValueError):
        check_induction("def f(x): return x", {"inputs": ["1"], "outputs": []}, sandbox=sb)


# ------------------------------------------------------------------------------------------------ parsers
@pytest.mark.parametrize(
    "response, task, expected",
    [
        (wrap("```output\n[1, 2]\n```"), "code_o", "[1, 2]"),
        (wrap("The output is\n```output\n'a'\n```\nor\n```output\n'b'\n```"), "code_o", "'b'"),
        (wrap("  {'k': 1}  "), "code_o", "{'k': 1}"),
        (wrap("```\n(1, 2)\n```"), "code_o", "(1, 2)"),
        (wrap("```input\n'abc', 3\n```"), "code_i", "'abc', 3"),
        (wrap("```python\ndef f(a):\n    return a\n```"), "code_f", "def f(a):\n    return a"),
        (wrap("def f(a):\n    return a"), "code_f", "def f(a):\n    return a"),
        (wrap("```python\nx = 1\n```\n```python\ndef f(a):\n    return 2\n```"), "code_f", "def f(a):\n    return 2"),
        (wrap(""), "code_o", None),
        (wrap("   "), "code_i", None),
        (wrap("no code here"), "code_f", None),
        ("<think>x</think><answer>unterminated", "code_o", None),
        ("plain text", "code_i", None),
        ("<answer></answer>", "code_o", None),
        (None, "code_o", None),
        (b"<answer>1</answer>", "code_o", None),
    ],
)
def test_parse_solver_answer(response, task, expected):
    assert parse_solver_answer(response, task) == expected


def test_parse_proposal_and_helpers():
    resp = wrap("```python\ndef f(a):\n    return a[::-1]\n```\n```input\n'hello'\n```")
    assert parse_proposal(resp, "code_o") == {"program": "def f(a):\n    return a[::-1]", "input": "'hello'"}
    assert parse_proposal(wrap("```python\ndef f(a): return a\n```"), "code_i") is None  # no input block
    assert parse_proposal(wrap("```input\n1\n```"), "code_o") is None  # no program
    inputs = "".join(f"```input\n{i}\n```\n" for i in range(12))
    induct = wrap(inputs + "```message\nadds one\n```")
    p = parse_proposal(induct, "code_f", num_inputs=10)
    assert p["inputs"] == [str(i) for i in range(2, 12)] and p["message"] == "adds one"
    assert parse_proposal(wrap(inputs + "<message>doubles</message>"), "induction")["message"] == "doubles"
    assert parse_proposal(induct, "code_f", num_inputs=20) is None
    assert parse_proposal(wrap(inputs), "code_f") is None  # no message
    assert parse_proposal("garbage", "code_f") is None
    assert extract_answer(42) is None and extract_code(None) is None and extract_blocks(None, "input") == []
    with pytest.raises(ValueError, match="valid: code_o"):
        task_type("code_x")


# ------------------------------------------------------------------------------------ compute_score path
def _check_keys(r: dict) -> dict:
    assert tuple(sorted(r)) == tuple(sorted(RESULT_KEYS))
    return r


def test_compute_score_deduction(default_box):
    gt = "[3, 1.5]"
    ok = _check_keys(compute_score("azr_deduction", wrap("```output\n[3, 1.5]\n```"), gt))
    assert (ok["score"], ok["acc"], ok["format_ok"], ok["pred"], ok["error"]) == (1.0, 1.0, True, "[3, 1.5]", "")
    assert compute_score("azr_deduction", wrap("[3.0, 1.5]"), gt)["score"] == 1.0
    wrong = compute_score("azr_deduction", wrap("[3, 2]"), gt)
    assert (wrong["score"], wrong["acc"], wrong["error"]) == (-0.5, 0.0, "wrong output")
    cheat = compute_score("azr_deduction", wrap("f(3)"), gt)
    assert cheat["score"] == -0.5 and "not a Python literal" in cheat["error"]
    assert compute_score("azr_deduction", "[3, 1.5]", gt)["score"] == -1.0  # no tags: format error
    assert compute_score("azr_deduction", wrap("[3, 1.5]") + " trailing", gt)["score"] == -1.0
    assert compute_score("azr_deduction", wrap(""), gt)["score"] == -1.0  # nothing to parse: format error (AZR)
    assert compute_score("code_exec", wrap("[3, 1.5]"), {"output": gt}, {"task_type": "pred_code_o"})["score"] == 1.0


def test_compute_score_abduction(default_box):
    info = {"task_type": "code_i", "program": "def f(a, b):\n    return a - b"}
    assert _check_keys(compute_score("code_exec", wrap("```input\n5, 2\n```"), "3", info))["score"] == 1.0
    assert compute_score("azr_abduction", wrap("10, 7"), "3", info)["score"] == 1.0
    r = compute_score("azr_abduction", wrap("1, 2"), "3", info)
    assert r["score"] == -0.5 and r["error"] == "wrong input"
    r = compute_score("azr_abduction", wrap("abs(-5), 2"), "3", info)
    assert r["score"] == -0.5 and "not a Python literal" in r["error"]
    r = compute_score("azr_abduction", wrap("'a', 2"), "3", info)
    assert r["score"] == -0.5 and "TypeError" in r["error"]
    r = compute_score("azr_abduction", wrap("5, 2"), "3", {"task_type": "code_i"})  # no program: row problem
    assert r["score"] == -1.0 and "program" in r["error"]


def test_compute_score_induction(default_box):
    hidden = json.dumps([{"input": str(i), "output": str(i * i)} for i in range(5)])
    good = wrap("```python\ndef f(x):\n    return x * x\n```")
    partial = wrap("```python\ndef f(x):\n    return x * 2\n```")  # right for 0 and 2 only
    assert _check_keys(compute_score("azr_induction", good, hidden))["score"] == 1.0
    r = compute_score("azr_induction", partial, hidden)
    assert (r["score"], r["acc"], r["error"]) == (-0.5, 0.0, "passed 40% of the hidden pairs")
    r = compute_score("azr_induction", partial, hidden, code_f_reward_type="accuracy")
    assert r["score"] == pytest.approx(0.4) and r["acc"] == 0.0
    r = compute_score("azr_induction", wrap("```python\nimport os\ndef f(x):\n    return x * x\n```"), hidden)
    assert r["score"] == -0.5 and "forbidden" in r["error"]
    hang = wrap("```python\ndef f(x):\n    while True:\n        pass\n```")
    r = compute_score("azr_induction", hang, hidden, timeout=0.5)
    assert r["score"] == -0.5 and r["timeout"] is True
    assert compute_score("azr_induction", wrap("no program"), hidden)["score"] == -1.0
    with pytest.raises(RuntimeError, match="code_f_reward_type"):
        compute_score("azr_induction", good, hidden, code_f_reward_type="partial")


def test_compute_score_row_problems_get_the_failure_score(default_box):
    r = compute_score("code_exec", wrap("1"), "1", {})
    assert r["score"] == -1.0 and "task_type" in r["error"]
    r = compute_score("code_exec", wrap("1"), "1", {"task_type": "code_z"})
    assert r["score"] == -1.0 and "unknown AZR task type" in r["error"]
    r = compute_score("azr_deduction", wrap("1"), 1)  # ground truth must be the gold repr string
    assert r["score"] == -1.0
    r = compute_score("azr_induction", wrap("def f(x):\n    return x"), "not json")
    assert r["score"] == -1.0
    assert compute_score("azr_deduction", wrap("1"), "1", scheme="r1")["score"] == 2.0  # another scheme applies
