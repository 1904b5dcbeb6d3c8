"""Absolute Zero Reasoner (AZR, arXiv 2505.03335) code tasks: proposal validation, solver checks, parsers, scorers.

AZR's convention: a task is a program defining a function ``f`` with at least one argument, plus inputs given as
Python argument text (``'Hello world'`` or ``[1, 2], 3``); an output is the ``repr`` of ``f(*input)``. Three task
types: deduction ``code_o`` (program + input -> output), abduction ``code_i`` (program + output -> any input that
reproduces it), induction ``code_f`` (input/output pairs + a message -> a program, scored on hidden pairs).

Every execution happens in a :class:`~reward_fns.code.Sandbox` (the shared :func:`default_sandbox` unless one is
passed). Values are compared as Python literals with ``==`` (``[1, 2]`` equals ``[1,2]``, ``1.0`` equals ``1``),
on the host: expected outputs never enter the sandbox, so a solver's program cannot read or forge them.

>>> v = validate_proposal("def f(s):\\n    return s[::-1]", "'Hello world'")
>>> v.valid, v.outputs
(True, ("'dlrow olleH'",))
>>> check_deduction("def f(s):\\n    return s[::-1]", "'ab'", '"ba"')
True
>>> check_abduction("def f(x):\\n    return x * 2", "[1]", "[1, 1]")
True
>>> check_induction("def f(a):\\n    return a + 1", [("1", "2"), ("5", "6"), ("0", "0")])
0.6666666666666666
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reward_fns.code.forbidden import find_forbidden
from reward_fns.code.sandbox import ExecResult, Sandbox, default_sandbox, parse_call_args
from reward_fns.format import extract_tag, format_ok
from reward_fns.schemes import make_result
from reward_fns.schemes import score as scheme_score

__all__ = [
    "TASK_TYPES",
    "Validation",
    "check_abduction",
    "check_deduction",
    "check_induction",
    "check_program",
    "extract_answer",
    "extract_blocks",
    "extract_code",
    "parse_proposal",
    "parse_solver_answer",
    "score",
    "score_abduction",
    "score_deduction",
    "score_induction",
    "task_type",
    "validate_proposal",
    "values_equal",
]

TASK_TYPES: tuple[str, ...] = ("code_o", "code_i", "code_f")
_TASK_ALIASES = {
    "code_o": "code_o",
    "deduction": "code_o",
    "code_i": "code_i",
    "abduction": "code_i",
    "code_f": "code_f",
    "induction": "code_f",
}
MAX_LITERAL_CHARS = 1 << 20  # longer predicted values are not parsed (the sandbox caps outputs at 1 MiB too)


def task_type(name: Any) -> str:
    """Normalise a task-type name: ``code_o``/``deduction``, ``code_i``/``abduction``, ``code_f``/``induction``;
    AZR's ``pred_``/``gen_`` prefixes are accepted. Raises ``ValueError`` naming the valid ones.

    >>> task_type("pred_code_i"), task_type("Induction")
    ('code_i', 'code_f')
    """
    key = str(name).strip().lower()
    for prefix in ("pred_", "gen_"):
        key = key.removeprefix(prefix)
    if key not in _TASK_ALIASES:
        raise ValueError(f"unknown AZR task type {name!r}; valid: {', '.join(_TASK_ALIASES)}")
    return _TASK_ALIASES[key]


# ------------------------------------------------------------------------------------------------ values
def _literal(text: Any) -> Any:
    if not isinstance(text, str):
        raise ValueError(f"expected a str, got {type(text).__name__}")
    text = text.strip()
    if not text or len(text) > MAX_LITERAL_CHARS:
        raise ValueError("empty or too long")
    try:
        return ast.literal_eval(text)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError) as e:
        raise ValueError(f"not a Python literal: {type(e).__name__}") from None


def values_equal(a: str, b: str) -> bool:
    """Whether two literal texts denote equal values under Python ``==``; ``False`` if either is not a literal.

    >>> values_equal("[1, 2]", "[1,2]"), values_equal("1.0", "1"), values_equal("'a'", '"a"')
    (True, True, True)
    >>> values_equal("(1, 2)", "[1, 2]"), values_equal("f(1)", "f(1)")
    (False, False)
    """
    try:
        va, vb = _literal(a), _literal(b)
    except ValueError:
        return False
    try:
        return bool(va == vb)
    except (RecursionError, MemoryError):
        return False


# ------------------------------------------------------------------------------------------ programs
@dataclass(frozen=True)
class Validation:
    """Result of :func:`validate_proposal`. ``reason`` is machine-readable (``""`` when valid):
    ``parse_error``, ``forbidden``, ``no_function``, ``multiple_functions``, ``no_arguments``, ``bad_input``,
    ``error``, ``timeout``, ``memory``, ``unrepresentable_output``, ``nondeterministic``, ``sandbox_error``.
    ``outputs`` holds ``repr(f(*input))`` per input when valid."""

    valid: bool
    reason: str = ""
    detail: str = ""
    outputs: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return self.valid


def check_program(program: Any) -> tuple[str, str] | None:
    """Static checks of an AZR program: ``None`` if fine, else ``(reason, detail)``.

    It must parse, use nothing from :mod:`reward_fns.code.forbidden`, and define exactly one top-level function,
    named ``f``, with at least one argument (classes, imports and constants may sit beside it).

    >>> check_program("def f(a):\\n    return a")
    >>> check_program("def g(a): return a")
    ('no_function', 'define exactly one top-level function, named f (found: g)')
    >>> check_program("import random\\ndef f(a): return random.random()")
    ('forbidden', 'import random')
    """
    if not isinstance(program, str) or not program.strip():
        return "parse_error", "empty program"
    try:
        tree = ast.parse(program)
    except (SyntaxError, ValueError, MemoryError, RecursionError) as e:
        return "parse_error", f"{type(e).__name__}: {e}"
    try:
        bad = find_forbidden(tree)
    except RecursionError:
        return "parse_error", "program is nested too deeply"
    if bad is not None:
        return "forbidden", bad
    defs = [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    names = [d.name for d in defs]
    if len(defs) > 1:
        return "multiple_functions", f"define exactly one top-level function, named f (found: {', '.join(names)})"
    if not defs or names[0] != "f" or isinstance(defs[0], ast.AsyncFunctionDef):
        found = ", ".join(names) or "none"
        return "no_function", f"define exactly one top-level function, named f (found: {found})"
    a = defs[0].args
    if not (a.posonlyargs or a.args or a.kwonlyargs or a.vararg or a.kwarg):
        return "no_arguments", "f must take at least one argument"
    return None


def _failure_reason(r: ExecResult) -> str:
    if r.timed_out:
        return "timeout"
    if r.memory_exceeded:
        return "memory"
    if r.reason in ("bad_input", "sandbox_error", "closed"):
        return "sandbox_error" if r.reason == "closed" else r.reason
    return "unrepresentable_output" if r.reason == "unrepresentable" else "error"


def _describe(r: ExecResult) -> str:
    if r.exc_type:
        return f"{r.exc_type}: {r.exc_message}"[:500]
    return r.reason


def validate_proposal(
    program: str,
    inputs: str | Sequence[str],
    repeats: int = 2,
    *,
    sandbox: Sandbox | None = None,
    timeout: float | None = None,
) -> Validation:
    """Check an AZR proposal: static rules (:func:`check_program`), literal inputs, it runs, and it is
    deterministic: each input runs ``repeats`` times, each time in a fresh process, and every run must return
    the same literal-representable value. Returns the outputs (``repr`` strings, one per input).

    >>> validate_proposal("import time\\ndef f(a): return time.time()", "1").reason
    'forbidden'
    >>> v = validate_proposal("def f(a):\\n    return {1, 2} | a", "{3}")
    >>> v.valid, v.outputs
    (True, ('{1, 2, 3}',))
    >>> validate_proposal("def f(a):\\n    return object()", "1").reason
    'unrepresentable_output'
    """
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats must be an int >= 1, got {repeats!r}")
    static = check_program(program)
    if static is not None:
        return Validation(False, *static)
    items = [inputs] if isinstance(inputs, str) else list(inputs)
    if not items:
        return Validation(False, "bad_input", "no inputs given")
    for i, text in enumerate(items):
        try:
            parse_call_args(text)
        except ValueError as e:
            return Validation(False, "bad_input", f"input {i}: {e}")
    sb = sandbox or default_sandbox()
    results = sb.run_many(
        [{"code": program, "call": text, "timeout": timeout} for text in items for _ in range(repeats)]
    )
    outputs = []
    for i in range(len(items)):
        runs = results[i * repeats : (i + 1) * repeats]
        for r in runs:
            if not r.ok:
                return Validation(False, _failure_reason(r), f"input {i}: {_describe(r)}")
        values = {r.value for r in runs}
        if len(values) > 1:
            return Validation(
                False, "nondeterministic", f"input {i}: {len(values)} different outputs in {repeats} runs"
            )
        value = runs[0].value
        try:
            _literal(value)
        except ValueError:
            return Validation(False, "unrepresentable_output", f"input {i}: {str(value)[:200]} is not a Python literal")
        outputs.append(value)
    return Validation(True, outputs=tuple(outputs))


def _run_call(program: str, args_text: str, sandbox: Sandbox | None, timeout: float | None) -> ExecResult:
    return (sandbox or default_sandbox()).run(program, call=args_text, timeout=timeout)


def check_deduction(
    program: str,
    input: str,
    predicted_output: str,
    *,
    expected_output: str | None = None,
    sandbox: Sandbox | None = None,
    timeout: float | None = None,
) -> bool:
    """Deduction (``code_o``): does ``predicted_output`` equal ``f(*input)`` as a value?

    ``expected_output`` (the task's gold ``repr``) skips running the program. A prediction that is not a literal
    (e.g. ``f(3)``, which would let a solver call the program) is wrong.

    >>> check_deduction("def f(x):\\n    return [x, x / 2]", "3", "[3, 1.5]")
    True
    >>> check_deduction("", "3", "[3.0, 1.5]", expected_output="[3, 1.5]")
    True
    """
    if expected_output is None:
        r = _run_call(program, input, sandbox, timeout)
        if not r.ok:
            return False
        expected_output = r.value
    return values_equal(expected_output, predicted_output)


def check_abduction(
    program: str,
    predicted_input: str,
    expected_output: str,
    *,
    sandbox: Sandbox | None = None,
    timeout: float | None = None,
) -> bool:
    """Abduction (``code_i``): re-execute ``f`` on ``predicted_input`` (literals only) and compare its value with
    ``expected_output``. Any input that reproduces the output is correct.

    >>> check_abduction("def f(a, b):\\n    return a + b", "2, 3", "5"), check_abduction("def f(a, b):\\n    return a + b", "(1, 4)", "5")
    (True, False)
    """
    r = _run_call(program, predicted_input, sandbox, timeout)
    return r.ok and values_equal(r.value, expected_output)


def _pairs(io_pairs: Any) -> list[tuple[str, str]]:
    if isinstance(io_pairs, str):
        io_pairs = json.loads(io_pairs)
    if hasattr(io_pairs, "tolist"):  # numpy arrays from parquet
        io_pairs = io_pairs.tolist()
    if isinstance(io_pairs, Mapping):
        if "inputs" in io_pairs and "outputs" in io_pairs:
            ins, outs = list(io_pairs["inputs"]), list(io_pairs["outputs"])
            if len(ins) != len(outs):
                raise ValueError(f"{len(ins)} inputs but {len(outs)} outputs")
            io_pairs = list(zip(ins, outs, strict=True))
        elif "pairs" in io_pairs:
            io_pairs = io_pairs["pairs"]
        else:
            raise ValueError("io pairs must be a list of (input, output), or a dict with 'inputs' and 'outputs'")
    out = []
    for p in io_pairs:
        if isinstance(p, Mapping):
            p = (p["input"], p["output"])
        if hasattr(p, "tolist"):
            p = p.tolist()
        inp, outp = p
        out.append((str(inp), str(outp)))
    if not out:
        raise ValueError("io pairs are empty")
    return out


def _induction(program: Any, io_pairs: Any, sandbox: Sandbox | None, timeout: float | None) -> tuple[float, bool]:
    pairs = _pairs(io_pairs)
    if check_program(program) is not None:
        return 0.0, False
    sb = sandbox or default_sandbox()
    results = sb.run_many([{"code": program, "call": inp, "timeout": timeout} for inp, _ in pairs])
    passed = sum(r.ok and values_equal(r.value, out) for r, (_, out) in zip(results, pairs, strict=True))
    return passed / len(pairs), any(r.timed_out for r in results)


def check_induction(
    predicted_program: str,
    io_pairs: Iterable[tuple[str, str]] | Mapping[str, Any] | str,
    *,
    sandbox: Sandbox | None = None,
    timeout: float | None = None,
) -> float:
    """Induction (``code_f``): the fraction of held-out ``(input, output)`` pairs that ``predicted_program``
    reproduces. The program must pass :func:`check_program` (else 0.0). ``io_pairs`` may also be a dict with
    ``inputs``/``outputs`` lists, a list of ``{"input", "output"}`` dicts, or the JSON text of either.

    >>> check_induction("def f(s):\\n    return s.upper()", {"inputs": ["'a'", "'b'"], "outputs": ["'A'", "'B'"]})
    1.0
    >>> check_induction("import os\\ndef f(s):\\n    return s.upper()", [("'a'", "'A'")])
    0.0
    """
    return _induction(predicted_program, io_pairs, sandbox, timeout)[0]


# ------------------------------------------------------------------------------------------------ parsers
_CODE_RE = re.compile(r"```(?:python3?|py)?[ \t]*\n(.*?)```", re.DOTALL | re.IGNORECASE)


def extract_answer(response: Any) -> str | None:
    """The content of the last complete ``<answer>…</answer>`` block, or ``None``.

    >>> extract_answer("<think>x</think><answer> 42 </answer>")
    '42'
    >>> extract_answer("<answer>unterminated") is None
    True
    """
    if not isinstance(response, str):
        return None
    return extract_tag(response, "answer")


def extract_code(text: Any, *, first: bool = False) -> str | None:
    """The last (or ``first``) fenced Python block (```` ```python ```` or a bare ```` ``` ````), or ``None``.

    >>> extract_code("```python\\ndef f(a):\\n    return a\\n```")
    'def f(a):\\n    return a'
    >>> extract_code("```input\\n'x'\\n```") is None
    True
    """
    if not isinstance(text, str):
        return None
    blocks = _CODE_RE.findall(text)
    if not blocks:
        return None
    code = (blocks[0] if first else blocks[-1]).strip()
    return code or None


def extract_blocks(text: Any, name: str) -> list[str]:
    """The stripped contents of every ```` ```name ```` fenced block, e.g. ``name="input"``.

    >>> extract_blocks("```input\\n1, 2\\n```\\n```input\\n'a'\\n```", "input")
    ['1, 2', "'a'"]
    """
    if not isinstance(text, str):
        return []
    pattern = re.compile(r"```" + re.escape(name) + r"[ \t]*\n(.*?)```", re.DOTALL | re.IGNORECASE)
    return [b.strip() for b in pattern.findall(text)]


def parse_solver_answer(response: Any, task: str) -> str | None:
    """The solver's answer for ``task``, from the last ``<answer>`` block; ``None`` if there is none.

    ``code_o``: the output (an ```` ```output ```` block, a bare fenced block, or the whole answer);
    ``code_i``: the input (likewise with ```` ```input ````); ``code_f``: the last Python block, or the whole
    answer when it is a bare ``def f``.

    >>> parse_solver_answer("<think>..</think><answer>```output\\n[1, 2]\\n```</answer>", "code_o")
    '[1, 2]'
    >>> parse_solver_answer("<think>..</think><answer>'abc', 3</answer>", "deduction")
    "'abc', 3"
    >>> parse_solver_answer("no answer tags", "code_f") is None
    True
    """
    task = task_type(task)
    ans = extract_answer(response)
    if ans is None:
        return None
    if task == "code_f":
        code = extract_code(ans)
        if code is None and re.search(r"^\s*def\s+f\s*\(", ans, re.MULTILINE):
            code = ans.strip()
        return code or None
    blocks = extract_blocks(ans, "output" if task == "code_o" else "input") or _CODE_RE.findall(ans)
    value = (blocks[-1] if blocks else ans).strip()
    return value or None


def parse_proposal(response: Any, task: str, num_inputs: int | None = None) -> dict[str, Any] | None:
    """A proposer's task from the last ``<answer>`` block, or ``None`` if it is incomplete.

    ``code_o``/``code_i``: ``{"program": <first python block>, "input": <first input block>}``;
    ``code_f``: ``{"inputs": [...], "message": str}`` (the last ``num_inputs`` input blocks when given, and a
    ```` ```message ```` block or ``<message>`` tag).

    >>> resp = "<think>..</think><answer>```python\\ndef f(a):\\n    return a\\n```\\n```input\\n'hi'\\n```</answer>"
    >>> parse_proposal(resp, "code_i")
    {'program': 'def f(a):\\n    return a', 'input': "'hi'"}
    """
    task = task_type(task)
    ans = extract_answer(response)
    if ans is None:
        return None
    inputs = extract_blocks(ans, "input")
    if task != "code_f":
        program = extract_code(ans, first=True)
        if program is None or not inputs:
            return None
        return {"program": program, "input": inputs[0]}
    if num_inputs is not None:
        if len(inputs) < num_inputs:
            return None
        inputs = inputs[-num_inputs:] if num_inputs else []
    messages = extract_blocks(ans, "message")
    message = messages[-1] if messages else extract_tag(ans, "message")
    if not inputs or not message:
        return None
    return {"inputs": inputs, "message": message}


# ------------------------------------------------------------------------------------------------ scorers
def _gold_output(ground_truth: Any) -> str:
    if isinstance(ground_truth, Mapping):
        ground_truth = ground_truth["output"]
    if not isinstance(ground_truth, str):
        raise ValueError(f"ground_truth must be the gold output's repr (str), got {type(ground_truth).__name__}")
    return ground_truth


def _score(
    task: str,
    text: str,
    ground_truth: Any,
    extra_info: dict,
    scheme: str,
    code_f_reward_type: str = "binary",
    timeout: float | None = None,
    sandbox: Sandbox | None = None,
) -> dict[str, Any]:
    if code_f_reward_type not in ("binary", "accuracy"):  # a config error, not a row problem: do not swallow it
        raise RuntimeError(f"unknown code_f_reward_type {code_f_reward_type!r}; valid: binary, accuracy")
    pred = parse_solver_answer(text, task)
    parsed = pred is not None
    # AZR scores a response whose answer cannot be parsed as a format error (-1), like a malformed one.
    fmt = format_ok(scheme, text, parsed) and (parsed or scheme != "azr")
    if not parsed:
        s = scheme_score(scheme, format_ok=fmt, parsed=False, correct=False)
        return make_result(s, format_ok=fmt, error="no answer could be parsed")
    role_reward, timed_out, error = 1.0, False, ""
    if task == "code_o":
        correct = values_equal(_gold_output(ground_truth), pred)
        if not correct:
            error = "wrong output" if _is_literal(pred) else "predicted output is not a Python literal"
    elif task == "code_i":
        program, gold = extra_info["program"], _gold_output(ground_truth)
        if not isinstance(program, str) or not program.strip():
            raise ValueError("extra_info['program'] must be the task's program (a non-empty str)")
        try:
            parse_call_args(pred)
        except ValueError as e:
            correct, error = False, f"predicted input is not a Python literal ({e})"
        else:
            r = _run_call(program, pred, sandbox, timeout)
            timed_out = r.timed_out
            correct = r.ok and values_equal(r.value, gold)
            if not correct:
                error = "wrong input" if r.ok else f"wrong input ({_describe(r)})"
    else:
        frac, timed_out = _induction(pred, ground_truth, sandbox, timeout)
        correct = frac == 1.0
        if code_f_reward_type == "accuracy":  # AZR's `accuracy` mode: the pass fraction is the reward
            correct, role_reward = frac > 0, frac
        if frac < 1.0:
            bad = check_program(pred)
            error = f"invalid program: {bad[0]}: {bad[1]}" if bad else f"passed {frac:.0%} of the hidden pairs"
    s = scheme_score(scheme, format_ok=fmt, parsed=True, correct=correct, role_reward=role_reward)
    acc = 1.0 if (correct and role_reward == 1.0) else 0.0
    return make_result(s, acc=acc, format_ok=fmt, pred=pred, timeout=timed_out, error=error)


def _is_literal(text: str) -> bool:
    try:
        _literal(text)
        return True
    except ValueError:
        return False


def _options(kwargs: dict) -> dict:
    """The keyword arguments the AZR scorers understand (verl may pass others, meant for other scorers)."""
    return {k: kwargs[k] for k in ("code_f_reward_type", "timeout", "sandbox") if kwargs.get(k) is not None}


def score(solution_str: str, ground_truth: Any, extra_info: dict, scheme: str, **kwargs: Any) -> dict[str, Any]:
    """Scorer of the ``code_exec`` data source: an AZR solver response, task type from ``extra_info``.

    ``extra_info``: ``task_type`` (``code_o``/``deduction``, ``code_i``/``abduction``, ``code_f``/``induction``;
    AZR's ``problem_type`` with ``pred_`` prefix also works) and ``program`` (the task's program; required for
    ``code_i``, unused by ``code_o`` and ``code_f``).
    ``ground_truth``: ``code_o`` and ``code_i``: the gold output, ``repr(f(*gold_input))`` (or a dict with
    ``output``); ``code_f``: the hidden pairs, as a list of ``(input, output)`` or ``{"input", "output"}``, a dict
    with ``inputs``/``outputs`` lists, or the JSON text of either.

    The answer is the last ``<answer>`` block (see :func:`parse_solver_answer`). Under the ``azr`` scheme: 1 if
    correct, -0.5 if well formatted but wrong, -1 for a format error or an answer that cannot be parsed.
    ``code_f`` is correct iff every hidden pair passes (AZR's ``code_f_reward_type=binary``); with
    ``code_f_reward_type="accuracy"`` the reward is the pass fraction (still -0.5 if it is 0). Keyword arguments:
    ``code_f_reward_type``, ``timeout`` (seconds per execution), ``sandbox`` (a :class:`Sandbox`; default: the
    shared one).

    >>> resp = "<think>reverse it</think><answer>'olleh'</answer>"
    >>> score(resp, "'olleh'", {"task_type": "code_o"}, "azr")["score"]
    1.0
    >>> score(resp, "'hello'", {"task_type": "deduction"}, "azr")["score"]
    -0.5
    >>> score("'olleh'", "'olleh'", {"task_type": "code_o"}, "azr")["score"]
    -1.0
    """
    info = extra_info or {}
    name = info.get("task_type", info.get("problem_type"))
    if name is None:
        raise ValueError(
            "extra_info['task_type'] is required for the code_exec data source; valid: " + ", ".join(TASK_TYPES)
        )
    return _score(task_type(name), solution_str, ground_truth, info, scheme, **_options(kwargs))


def score_deduction(
    solution_str: str, ground_truth: Any, extra_info: dict, scheme: str, **kwargs: Any
) -> dict[str, Any]:
    """Scorer of the ``azr_deduction`` data source (``code_o``); see :func:`score` for the fields."""
    return _score("code_o", solution_str, ground_truth, extra_info or {}, scheme, **_options(kwargs))


def score_abduction(
    solution_str: str, ground_truth: Any, extra_info: dict, scheme: str, **kwargs: Any
) -> dict[str, Any]:
    """Scorer of the ``azr_abduction`` data source (``code_i``); see :func:`score` for the fields."""
    return _score("code_i", solution_str, ground_truth, extra_info or {}, scheme, **_options(kwargs))


def score_induction(
    solution_str: str, ground_truth: Any, extra_info: dict, scheme: str, **kwargs: Any
) -> dict[str, Any]:
    """Scorer of the ``azr_induction`` data source (``code_f``); see :func:`score` for the fields."""
    return _score("code_f", solution_str, ground_truth, extra_info or {}, scheme, **_options(kwargs))
