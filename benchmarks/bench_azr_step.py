r"""Seconds of sandbox work per AZR step: ``reward_fns.code`` on a node-sized pool vs the reference's serial executor.

One reference-sized Absolute Zero step (DESIGN.md, "Step"), for each task type (deduction ``code_o``, abduction
``code_i``, induction ``code_f``):

* **validation** of 64 proposals: static checks, then the program runs on its input(s), twice (determinism);
  induction proposals give 10 inputs for a buffer program (5 shown to the solver, 5 hidden);
* **learnability**: 8 solver attempts at each valid proposal, checked like solver answers (the proposer's reward is
  ``1 - solve rate``); identical attempts at the same proposal are checked once, as the reference's ``answer_cache``
  does;
* **solver checks** of 64 solver answers for buffer tasks: deduction compares values, abduction re-executes the
  program on the predicted input, induction runs the predicted program on the 5 hidden pairs.

Programs come from a seeded generator (``--seed``): small functions (string, list, arithmetic and dict operations,
loops, recursion) with some proposals invalid (syntax errors, ``import random`` / ``time.time()``, no function ``f``,
a crash on their input), one per task type that loops forever and one that is slow; solver answers are right, wrong
or malformed, and a few loop (an abduction input of 0 for a Collatz-style loop, an induction guess
``while True: pass``): ``--loops`` sets how many of each (0 for none).

The two sides, same programs, same run:

* **ours**: every check goes through the public API of ``reward_fns.code.azr`` (``validate_proposal``,
  ``check_deduction`` with the known gold output, ``check_abduction``, ``check_induction``) on one
  :class:`~reward_fns.code.Sandbox` with ``--workers`` jobs at a time (default: ``os.cpu_count()``), fed by a thread
  pool: everything is submitted at once, and each valid proposal's learnability checks are submitted the moment its
  validation returns. It runs a second time phase by phase (all of one phase at once) for the per-phase times.
* **reference style**: the AZR reference's ``PythonExecutor`` (``exec`` in a one-worker process pool, one call at a
  time, its check templates: ``CHECK_DETERMINISM_TEMPLATE`` calls ``f`` twice in one ``exec``, deduction first
  compares ``eval(gold) == eval(answer)`` on the host and execs only when that fails, abduction and each hidden
  induction pair are one ``exec`` each; its banned-import check before validation). A
  ``concurrent.futures.ProcessPoolExecutor(1)`` stands in for its ``pebble.ProcessPool(max_workers=1)``; a timeout
  is a ``SIGALRM`` in the worker (its ``timeout_decorator``), backed by killing and restarting the pool (what pebble
  does). The reference has no sandbox, so this baseline runs the programs **outside any sandbox**, in a plain child
  process. That is acceptable here only because the benchmark generates every program itself; never point this
  baseline at model output.

Both sides use the same per-call timeout, ``--timeout`` (1 s by default). The reference's is 10 s, so with its real
setting every loop would cost it 10 s; the shorter timeout keeps the run short and treats both sides alike.

Verdicts are compared: the set of valid proposals and their gold outputs, every proposal's solve rate and every
solver verdict must agree (checks that hit a timeout on purpose are left out); a disagreement stops the benchmark.

Target (AZR issue): >= 10x the reference's seconds per step on 2 cores.
Run: ``nice python benchmarks/bench_azr_step.py`` (a few minutes on 2 cores), ``--quick`` for a small step.
Writes nothing.
"""

from __future__ import annotations

import argparse
import ast
import io
import json
import os
import pickle
import signal
import sys
import threading
import time
import traceback
from collections import Counter
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor, wait
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import redirect_stdout
from dataclasses import dataclass, field
from random import Random
from typing import Any

from tqdm import tqdm

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from reward_fns.code import Sandbox  # noqa: E402
from reward_fns.code.azr import (  # noqa: E402
    check_abduction,
    check_deduction,
    check_induction,
    validate_proposal,
    values_equal,
)

# CPython 3.11 bug (python/cpython#106905): ast.parse from several threads at once can raise "SystemError: AST
# constructor recursion depth mismatch". The checks parse programs and literals on the caller's threads, so this
# benchmark serialises ast.parse (microseconds per call, next to milliseconds per sandbox job).
_AST_LOCK = threading.Lock()
_ast_parse = ast.parse


def _locked_parse(*args: Any, **kwargs: Any) -> ast.AST:
    with _AST_LOCK:
        return _ast_parse(*args, **kwargs)


ast.parse = _locked_parse  # also covers ast.literal_eval, which calls the module's parse

TASKS = ("code_o", "code_i", "code_f")
NAMES = {"code_o": "deduction", "code_i": "abduction", "code_f": "induction"}
N_INPUTS_F = 10  # induction: 10 inputs, the first 5 shown, the last 5 hidden (DESIGN.md, AZR)
N_HIDDEN_F = 5

# ----------------------------------------------------------------------------------------------- corpus
WORDS = ("apple", "banana", "kiwi", "level", "python", "rotor", "zebra", "hello", "world", "data", "queue", "stack")
LOOP_PROGRAM = "def f(x):\n    while True:\n        pass\n    return x"
LOOP_GUESS = "def f(*args):\n    while True:\n        pass"


def _word(r: Random) -> str:
    return r.choice(WORDS) + r.choice(WORDS)[: r.randint(0, 4)]


def _nested(r: Random, depth: int = 0) -> list:
    return [
        _nested(r, depth + 1) if depth < 2 and r.random() < 0.3 else r.randint(-5, 9) for _ in range(r.randint(1, 4))
    ]


def fam_reverse_pad(r: Random):
    c, k = r.choice("xyz#!"), r.randint(2, 4)
    return f"def f(s):\n    return s[::-1] + {c!r} * (len(s) % {k})", lambda r: repr(_word(r))


def fam_caesar(r: Random):
    m = r.randint(1, 3)
    prog = f"""def f(s, k):
    out = []
    for ch in s:
        if ch.isalpha():
            base = ord('a') if ch.islower() else ord('A')
            out.append(chr((ord(ch) - base + k * {m}) % 26 + base))
        else:
            out.append(ch)
    return ''.join(out)"""
    return prog, lambda r: f"{_word(r).capitalize()!r}, {r.randint(1, 25)}"


def fam_rle(r: Random):
    m = r.randint(1, 2)
    prog = f"""def f(s):
    if not s:
        return []
    runs = [[s[0], 1]]
    for ch in s[1:]:
        if ch == runs[-1][0]:
            runs[-1][1] += 1
        else:
            runs.append([ch, 1])
    return [(c, n) for c, n in runs if n >= {m}]"""
    return prog, lambda r: repr("".join(r.choice("aab") for _ in range(r.randint(5, 12))))


def fam_filter_scale(r: Random):
    a, b = r.randint(2, 5), r.randint(2, 3)
    c = r.randrange(b)
    prog = f"def f(xs):\n    return [x * {a} for x in xs if x % {b} == {c}]"
    return prog, lambda r: repr([r.randint(-9, 30) for _ in range(r.randint(3, 8))])


def fam_prefix_max(r: Random):
    a = r.randint(0, 3)
    prog = f"""def f(xs):
    best, out = None, []
    for x in xs:
        best = x if best is None or x > best else best
        out.append(best + {a})
    return out"""
    return prog, lambda r: repr([r.randint(-9, 30) for _ in range(r.randint(3, 8))])


def fam_digit_sum(r: Random):
    p = r.randint(1, 3)
    prog = f"""def f(n):
    n = abs(n)
    total = 0
    while n:
        total += (n % 10) ** {p}
        n //= 10
    return total"""
    return prog, lambda r: str(r.randint(-99999, 999999))


def fam_collatz(r: Random):  # loops forever for n <= 0: the source of looping abduction answers
    c = r.randint(0, 5)
    prog = f"""def f(n):
    steps = 0
    while n != 1:
        n = n // 2 if n % 2 == 0 else 3 * n + 1
        steps += 1
    return steps + {c}"""
    return prog, lambda r: str(r.randint(2, 60))


def fam_word_freq(r: Random):
    k = r.randint(2, 3)
    prog = f"""def f(words):
    counts = {{}}
    for w in words:
        counts[w] = counts.get(w, 0) + 1
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:{k}]"""
    return prog, lambda r: repr([r.choice(WORDS[:5]) for _ in range(r.randint(4, 9))])


def fam_group_mod(r: Random):
    m = r.randint(2, 4)
    prog = f"""def f(d):
    out = {{}}
    for k, v in d.items():
        out.setdefault(v % {m}, []).append(k)
    return {{k: sorted(v) for k, v in sorted(out.items())}}"""
    return prog, lambda r: repr({w: r.randint(0, 20) for w in r.sample(WORDS, 4)})


def fam_fib(r: Random):
    c = r.randint(0, 2)
    prog = f"def f(n):\n    if n < 2:\n        return n + {c}\n    return f(n - 1) + f(n - 2)"
    return prog, lambda r: str(r.randint(5, 15))


def fam_flatten(r: Random):
    a = r.randint(1, 3)
    prog = f"""def f(xs):
    out = []
    for x in xs:
        if isinstance(x, list):
            out.extend(f(x))
        else:
            out.append(x * {a})
    return out"""
    return prog, lambda r: repr(_nested(r))


def fam_bubble(r: Random):
    k = r.randint(2, 4)
    prog = f"""def f(xs):
    xs = list(xs)
    swaps = 0
    for i in range(len(xs)):
        for j in range(len(xs) - 1 - i):
            if xs[j] > xs[j + 1]:
                xs[j], xs[j + 1] = xs[j + 1], xs[j]
                swaps += 1
    return xs[:{k}], swaps"""
    return prog, lambda r: repr([r.randint(-9, 30) for _ in range(r.randint(3, 9))])


FAMILIES = (
    fam_reverse_pad, fam_caesar, fam_rle, fam_filter_scale, fam_prefix_max, fam_digit_sum,
    fam_collatz, fam_word_freq, fam_group_mod, fam_fib, fam_flatten, fam_bubble,
)  # fmt: skip
SLOW_FIB_N = (21, 22)  # naive recursion, tens of ms: slow but well under any timeout used here

# Invalid proposals: (kind, how often per 64 proposals of code_o / code_i). The rest are valid.
INVALID_MIX = {"syntax": 3, "forbidden": 4, "no_f": 2, "error": 3}
FORBIDDEN = (  # in the reference's banned list as well as ours, so both reject them before running
    "import random\ndef f(xs):\n    return [x + random.randint(0, 9) for x in xs]",
    "import time\ndef f(x):\n    return (x, time.time() > 0)",
    "from random import shuffle\ndef f(xs):\n    xs = list(xs)\n    shuffle(xs)\n    return xs",
    "import datetime\ndef f(n):\n    return datetime.date.today().year + n",
)
ERRORS = (  # run, then raise on their input
    "def f(xs):\n    return xs[len(xs) + 2]",
    "def f(x):\n    total = 0\n    return x / total",
    "def f(s):\n    return int(s) + undefined_name",
)


def _host_call(program: str, args: str) -> str:
    """``repr(f(*args))`` in this process: only for the generator's own trusted, terminating programs."""
    g: dict = {}
    exec(program, g)
    return repr(eval(f"f({args})", g))


def _perturb(text: str, r: Random) -> str:
    v = ast.literal_eval(text)
    if isinstance(v, bool) or v is None:
        return repr(not v)
    if isinstance(v, (int, float)):
        return repr(v + r.choice((-2, -1, 1, 3)))
    if isinstance(v, str):
        return repr(v + "a" if r.random() < 0.5 else v[::-1] + "z")
    if isinstance(v, list):
        return repr(v[:-1] if v and r.random() < 0.5 else v + [0])
    if isinstance(v, tuple):
        return repr(v[::-1] if len(set(map(repr, v))) > 1 else v + (0,))
    if isinstance(v, dict):
        return repr(dict(list(v.items())[1:]) if v else {0: 0})
    return repr([v])


def _reformat(text: str) -> str:
    """The same value, written differently (as a model might)."""
    if text.startswith("'") and '"' not in text and "\\" not in text:
        return '"' + text[1:-1] + '"'
    return text.replace(", ", ",")


def _malformed(text: str, r: Random) -> str:
    return r.choice((text[:-1] if len(text) > 2 else "[" + text, "The answer is " + text, "```\n" + text))


@dataclass
class Proposal:
    task: str
    kind: str  # valid, slow, loop, syntax, forbidden, no_f, error, bad_input
    program: str
    inputs: list[str]  # 1 (code_o, code_i) or N_INPUTS_F (code_f)
    answers: list[str] = field(default_factory=list)  # the 8 learnability attempts (outputs, inputs or programs)
    looping: set[int] = field(default_factory=set)  # attempts that loop forever (on purpose)


@dataclass
class SolverTask:
    task: str
    program: str
    input: str
    gold: str  # code_o / code_i: the gold output; code_f: unused
    pairs: list[tuple[str, str]]  # code_f: the hidden pairs
    answer: str
    looping: bool = False


def _attempts(task: str, prog: str, inp: str, gold: str, gen, r: Random, k: int, refamily) -> list[str]:
    """k solver attempts at one task: right with a per-task probability, else wrong or malformed; models repeat
    themselves, so attempts are drawn from a small pool of candidates."""
    p = r.choice((0.0, 0.25, 0.5, 0.75, 1.0))
    if task == "code_o":
        right, wrong = [gold, _reformat(gold)], [_perturb(gold, r), _perturb(gold, r)]
        bad = _malformed(gold, r)
    elif task == "code_i":
        right, wrong = [inp, _reformat(inp)], [gen(r), gen(r)]
        bad = _malformed(inp, r)
    else:
        right, wrong = [prog], [refamily(r)[0], refamily(r)[0]]
        bad = prog.replace(":", "", 1)  # a syntax error
    return [r.choice(right) if r.random() < p else bad if r.random() < 0.15 else r.choice(wrong) for _ in range(k)]


def make_step(seed: int, proposals: int, samples: int, solver: int, loops: int) -> tuple[list, list]:
    """The proposals and solver tasks of one step, deterministic given ``seed``."""
    r = Random(seed)
    props: list[Proposal] = []
    tasks: list[SolverTask] = []
    scale = proposals / 64
    for task in TASKS:
        n_invalid = {k: max(1, round(v * scale)) for k, v in INVALID_MIX.items()}
        if task == "code_f":  # the program comes from the buffer; invalid proposals have bad inputs
            n_invalid = {"bad_input": max(1, round(3 * scale)), "error": max(1, round(4 * scale))}
        kinds = [k for k, n in n_invalid.items() for _ in range(n)] + ["loop"] * loops + ["slow"]
        kinds += ["valid"] * (proposals - len(kinds))
        r.shuffle(kinds)
        if loops and "valid" in kinds:  # a Collatz program to draw a looping attempt (input 0) from
            kinds[kinds.index("valid")] = "collatz"
        for kind in kinds[:proposals]:
            fam = fam_collatz if kind == "collatz" or (task == "code_f" and kind == "loop") else r.choice(FAMILIES)
            prog, gen = fam(r)
            n_in = N_INPUTS_F if task == "code_f" else 1
            inputs = [gen(r) for _ in range(n_in)]
            if kind == "slow":
                prog, gen = fam_fib(r)
                inputs = [str(r.choice(SLOW_FIB_N))] + [gen(r) for _ in range(n_in - 1)]
            elif kind == "loop":
                if task == "code_f":
                    inputs[r.randrange(n_in)] = "0"  # the buffer program never returns on this input
                else:
                    prog, inputs = LOOP_PROGRAM, [gen(r)]
            elif kind == "syntax":
                prog = prog.replace("):", ")", 1)
            elif kind == "forbidden":
                prog, inputs = r.choice(FORBIDDEN), [repr([r.randint(0, 9) for _ in range(3)])]
            elif kind == "no_f":
                prog = prog.replace("def f(", "def g(").replace(" f(", " g(")
            elif kind == "error" and task != "code_f":
                prog, inputs = r.choice(ERRORS), [r.choice((repr([1, 2]), "3", repr("7")))]
            elif kind == "error":
                inputs[r.randrange(n_in)] = "1, 2, 3"  # one argument too many for every family: TypeError
            elif kind == "bad_input":
                inputs[r.randrange(n_in)] = "[1, 2"
            p = Proposal(task, "valid" if kind == "collatz" else kind, prog, inputs)
            if p.kind in ("valid", "slow"):
                outs = [_host_call(prog, i) for i in inputs]
                if task == "code_f":
                    p.answers = _attempts(task, prog, "", "", gen, r, samples, fam)
                else:
                    p.answers = _attempts(task, prog, inputs[0], outs[0], gen, r, samples, fam)
                if kind == "collatz" and task != "code_f":
                    p.answers[0] = "0"  # abduction: loops; deduction: just wrong
                    p.looping = {0} if task == "code_i" else set()
                elif kind == "collatz":
                    p.answers[0] = LOOP_GUESS
                    p.looping = {0}
            props.append(p)
        n_loop = loops if task != "code_o" else 0  # deduction compares values: nothing to loop
        for j in range(solver):
            looping = j < n_loop
            fam = fam_collatz if looping else r.choice(FAMILIES)
            prog, gen = fam(r)
            inputs = [gen(r) for _ in range(N_INPUTS_F if task == "code_f" else 1)]
            outs = [_host_call(prog, i) for i in inputs]
            pairs = list(zip(inputs[-N_HIDDEN_F:], outs[-N_HIDDEN_F:], strict=True))
            answer = _attempts(task, prog, inputs[0], outs[0], gen, r, 1, fam)[0]
            if looping:
                answer = "0" if task == "code_i" else LOOP_GUESS
            tasks.append(SolverTask(task, prog, inputs[0], outs[0], pairs, answer, looping))
        r.shuffle(tasks)
    return props, tasks


# ------------------------------------------------------------------------------------------ reference side
# The reference's check templates (LeapLabTHU/Absolute-Zero-Reasoner, absolute_zero_reasoner/utils/code_utils/
# templates.py); its executor execs all lines but the last and evals the last one.
CHECK_DETERMINISM = "{code}\nreturns = f({inputs})\nif returns != f({inputs}):\n    raise Exception('Non-deterministic code')\nrepr(returns)"
EVAL_INPUT_PREDICTION = "{code}\n{gold_output} == f({agent_input})"
EVAL_OUTPUT_PREDICTION = "{code}\neval({gold_output}) == eval({agent_output})"
# The reference's banned imports (azr_ppo_trainer.yaml); its only static check.
REF_BANNED = ("logging", "random", "multiprocessing", "pebble", "subprocess", "threading", "datetime", "time",
              "hashlib", "hmac", "bcrypt", "os.sys", "os.path", "sys.exit", "os.environ", "calendar")  # fmt: skip


def _on_alarm(signum, frame):
    raise TimeoutError("Timeout")


def _ref_execute(snippet: str, timeout: float) -> tuple[Any, str]:
    """The reference's ``PythonExecutor.execute(auto_mode=True)``, in the pool's worker: exec, then eval the last
    line, under a ``SIGALRM`` timeout (its ``timeout_decorator``). UNSANDBOXED: trusted, generated programs only."""
    code = snippet.strip().split("\n")
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        g: dict = {}
        if "print(" in code[-1]:
            buf = io.StringIO()
            with redirect_stdout(buf):
                exec("\n".join(code), g)
            result = buf.getvalue()
        else:
            exec("\n".join(code[:-1]), g)
            result = eval(code[-1], g)
        report = "Done"
        str(result)
        pickle.dumps(result)
    except BaseException:  # noqa: B036 - the reference's bare except
        result, report = "", traceback.format_exc().split("\n")[-2]
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    return result, report


class RefExecutor:
    """One worker process, one call at a time, like the reference's ``PythonExecutor(max_workers=1)``."""

    GRACE = 0.5  # the pool-side timeout backs up the worker's alarm (C code that never checks signals)

    def __init__(self, timeout: float):
        self.timeout = timeout
        self.pool: ProcessPoolExecutor | None = None
        self.calls = self.timeouts = self.restarts = 0

    def apply(self, snippet: str) -> tuple[str, str]:
        if self.pool is None:
            self.pool = ProcessPoolExecutor(max_workers=1)
        self.calls += 1
        fut = self.pool.submit(_ref_execute, snippet, self.timeout)
        try:
            res, report = fut.result(timeout=self.timeout + self.GRACE)
        except FutureTimeout:  # kill the stuck worker and start a fresh pool, as pebble does
            for p in list(getattr(self.pool, "_processes", {}).values()):
                p.kill()
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool, self.restarts = None, self.restarts + 1
            res, report = "", "Timeout Error"
        if "timeout" in report.lower():
            self.timeouts += 1
        return str(res).strip(), str(report).strip()

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True)


def _ref_banned(code: str) -> bool:
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return False  # the reference then runs it, and the run fails
    for node in ast.walk(tree):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
        if isinstance(node, ast.ImportFrom):
            names = [node.module or ""] + [f"{node.module}.{a.name}" for a in node.names]
        if any(n == b or n.startswith(b + ".") for n in names for b in REF_BANNED):
            return True
    return False


def ref_validate(ex: RefExecutor, p: Proposal) -> tuple[bool, str, tuple[str, ...]]:
    if _ref_banned(p.program):
        return False, "forbidden", ()
    outs = []
    for inp in p.inputs:
        res, report = ex.apply(CHECK_DETERMINISM.format(code=p.program, inputs=inp))
        if report != "Done":
            return False, "timeout" if "timeout" in report.lower() else "error", ()
        outs.append(res)
    return True, "", tuple(outs)


def ref_deduction(ex: RefExecutor, program: str, gold: str, answer: str) -> bool:
    try:  # the reference's fast path: no execution when the values are equal
        if eval(gold) == eval(answer):  # trusted generated answers only
            return True
    except Exception:
        pass
    res, report = ex.apply(EVAL_OUTPUT_PREDICTION.format(code=program, gold_output=gold, agent_output=answer))
    return report == "Done" and res == "True"


def ref_abduction(ex: RefExecutor, program: str, gold: str, answer: str) -> bool:
    res, report = ex.apply(EVAL_INPUT_PREDICTION.format(code=program, gold_output=gold, agent_input=answer))
    return report == "Done" and res == "True"


def ref_induction(ex: RefExecutor, answer: str, pairs: list[tuple[str, str]]) -> bool:
    passed = [ref_abduction(ex, answer, out, inp) for inp, out in pairs]  # one exec per hidden pair
    return all(passed)


def _ref_check(ex: RefExecutor, task: str, program: str, inp: str, gold: str, pairs, answer: str) -> bool:
    if task == "code_o":
        return ref_deduction(ex, program, gold, answer)
    if task == "code_i":
        return ref_abduction(ex, program, gold, answer)
    return ref_induction(ex, answer, pairs)


def _hidden(p: Proposal, outs: tuple[str, ...]) -> list[tuple[str, str]]:
    return list(zip(p.inputs[-N_HIDDEN_F:], outs[-N_HIDDEN_F:], strict=True))


def run_reference(props: list[Proposal], tasks: list[SolverTask], timeout: float) -> dict:
    ex = RefExecutor(timeout)
    ex.apply("x = 1\nx")  # start the worker outside the timed part, as a long-lived trainer would have
    ex.calls = 0
    out: dict = {"phase_s": {}, "valid": [], "rates": {}, "solver": []}
    t0 = time.perf_counter()
    for p in tqdm(props, desc="reference: validation", unit="proposal", leave=False):
        out["valid"].append(ref_validate(ex, p))
    t1 = time.perf_counter()
    learn = [(i, p) for i, p in enumerate(props) if out["valid"][i][0]]
    for i, p in tqdm(learn, desc="reference: learnability", unit="proposal", leave=False):
        outs = out["valid"][i][2]
        cache: dict[str, bool] = {}
        rate = []
        for a in p.answers:
            if a not in cache or p.task == "code_f":  # the reference caches answers, except for induction
                cache[a] = _ref_check(ex, p.task, p.program, p.inputs[0], outs[0], _hidden(p, outs), a)
            rate.append(cache[a])
        out["rates"][i] = sum(rate) / len(rate)
    t2 = time.perf_counter()
    for s in tqdm(tasks, desc="reference: solver checks", unit="answer", leave=False):
        out["solver"].append(_ref_check(ex, s.task, s.program, s.input, s.gold, s.pairs, s.answer))
    t3 = time.perf_counter()
    ex.close()
    out["phase_s"] = {"validation": t1 - t0, "learnability": t2 - t1, "solver checks": t3 - t2}
    out["step_s"] = t3 - t0
    out["calls"], out["timeouts"], out["restarts"] = ex.calls, ex.timeouts, ex.restarts
    return out


# ------------------------------------------------------------------------------------------------ our side
def _our_validate(sb: Sandbox, p: Proposal):
    return validate_proposal(p.program, p.inputs if p.task == "code_f" else p.inputs[0], repeats=2, sandbox=sb)


def _our_check(sb: Sandbox, task: str, program: str, inp: str, gold: str, pairs, answer: str) -> bool:
    if task == "code_o":  # the gold output is known (from validation, or the buffer): nothing to run
        return check_deduction(program, inp, answer, expected_output=gold, sandbox=sb)
    if task == "code_i":
        return check_abduction(program, answer, gold, sandbox=sb)
    return check_induction(answer, pairs, sandbox=sb) == 1.0


def _learn_jobs(p: Proposal, v) -> list[tuple[str, tuple]]:
    """The distinct attempts at a valid proposal and the arguments of their check."""
    outs = v.outputs
    return [(a, (p.task, p.program, p.inputs[0], outs[0], _hidden(p, outs), a)) for a in dict.fromkeys(p.answers)]


def _rate(p: Proposal, verdicts: dict[str, bool]) -> float:
    return sum(verdicts[a] for a in p.answers) / len(p.answers)


class _Tracker:
    """Futures submitted from any thread (learnability checks are submitted by validation checks), and when each
    phase's last check finished."""

    def __init__(self, bar: tqdm):
        self.lock = threading.Lock()
        self.futures: list[Future] = []
        self.done_at: dict[str, float] = {}
        self.t0 = time.perf_counter()
        self.bar = bar

    def add(self, fut: Future, phase: str, n: int = 1) -> None:
        with self.lock:
            self.futures.append(fut)
            self.bar.total = (self.bar.total or 0) + n
        fut.add_done_callback(lambda _f: self._finished(phase))

    def _finished(self, phase: str) -> None:
        with self.lock:
            self.done_at[phase] = time.perf_counter() - self.t0
            self.bar.update(1)

    def wait_all(self) -> None:
        seen = 0
        while True:
            with self.lock:
                pending = self.futures[seen:]
            if not pending:
                return
            wait(pending)
            seen += len(pending)
            for f in pending:
                f.result()  # re-raise any error of the benchmark itself


def run_ours_pipelined(sb: Sandbox, props: list[Proposal], tasks: list[SolverTask], threads: int) -> dict:
    """Everything at once: validations and solver checks are submitted together; each valid proposal's
    learnability checks are submitted as soon as its validation returns."""
    out: dict = {"valid": [None] * len(props), "rates": {}, "solver": [None] * len(tasks)}
    with ThreadPoolExecutor(threads) as pool, tqdm(desc="ours: pipelined step", unit="check", leave=False) as bar:
        tr = _Tracker(bar)

        def validate(i: int, p: Proposal) -> None:
            v = out["valid"][i] = _our_validate(sb, p)
            if not v.valid:
                return
            jobs = _learn_jobs(p, v)
            verdicts: dict[str, bool] = {}
            left = [len(jobs)]
            lock = threading.Lock()

            def learn(a: str, args: tuple) -> None:
                verdicts[a] = _our_check(sb, *args)
                with lock:
                    left[0] -= 1
                    if left[0] == 0:
                        out["rates"][i] = _rate(p, verdicts)

            for a, args in jobs:
                tr.add(pool.submit(learn, a, args), "learnability")

        def solve(j: int, s: SolverTask) -> None:
            out["solver"][j] = _our_check(sb, s.task, s.program, s.input, s.gold, s.pairs, s.answer)

        for i, p in enumerate(props):
            tr.add(pool.submit(validate, i, p), "validation")
        for j, s in enumerate(tasks):
            tr.add(pool.submit(solve, j, s), "solver checks")
        tr.wait_all()
        out["step_s"] = time.perf_counter() - tr.t0
        out["done_at"] = tr.done_at
    return out


def run_ours_phased(sb: Sandbox, props: list[Proposal], tasks: list[SolverTask], threads: int) -> dict:
    """One phase after the other, each phase's checks all at once: per-phase times."""
    out: dict = {"phase_s": {}}
    with ThreadPoolExecutor(threads) as pool:
        t0 = time.perf_counter()
        valid = list(pool.map(lambda p: _our_validate(sb, p), props))
        t1 = time.perf_counter()
        jobs = [(i, a, args) for i, p in enumerate(props) if valid[i].valid for a, args in _learn_jobs(p, valid[i])]
        verdicts = list(pool.map(lambda job: _our_check(sb, *job[2]), jobs))
        t2 = time.perf_counter()
        list(pool.map(lambda s: _our_check(sb, s.task, s.program, s.input, s.gold, s.pairs, s.answer), tasks))
        t3 = time.perf_counter()
    by_prop: dict[int, dict[str, bool]] = {}
    for (i, a, _), ok in zip(jobs, verdicts, strict=True):
        by_prop.setdefault(i, {})[a] = ok
    out["rates"] = {i: _rate(props[i], v) for i, v in by_prop.items()}
    out["phase_s"] = {"validation": t1 - t0, "learnability": t2 - t1, "solver checks": t3 - t2}
    out["step_s"] = t3 - t0
    return out


# --------------------------------------------------------------------------------------------- comparison
def compare(props, tasks, ref: dict, ours: dict) -> list[str]:
    """Verdict disagreements between the two sides, leaving out checks that loop on purpose."""
    bad = []
    for i, (p, (r_ok, r_reason, r_outs), v) in enumerate(zip(props, ref["valid"], ours["valid"], strict=True)):
        if r_ok != v.valid:
            bad.append(f"proposal {i} ({p.task}, {p.kind}): valid ref={r_ok} ({r_reason}) ours={v.valid} ({v.reason})")
        elif r_ok and not all(values_equal(a, b) for a, b in zip(r_outs, v.outputs, strict=True)):
            bad.append(f"proposal {i} ({p.task}): outputs ref={r_outs} ours={v.outputs}")
    for i, rate in ref["rates"].items():
        if not props[i].looping and ours["rates"].get(i) != rate:
            bad.append(f"proposal {i} ({props[i].task}): solve rate ref={rate} ours={ours['rates'].get(i)}")
    for j, (s, a, b) in enumerate(zip(tasks, ref["solver"], ours["solver"], strict=True)):
        if not s.looping and a != b:
            bad.append(f"solver answer {j} ({s.task}): correct ref={a} ours={b} answer={s.answer[:60]!r}")
    return bad


def _stats(sb: Sandbox) -> dict:
    try:  # the server's counters; a server that restarted (or a refactored one) may lack them
        return dict(sb.stats())
    except Exception:
        return {}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="a small step: 8 proposals and 8 solver answers per type")
    ap.add_argument("--proposals", type=int, default=64, help="proposals per task type (AZR: 64)")
    ap.add_argument("--samples", type=int, default=8, help="learnability attempts per valid proposal (AZR: 8)")
    ap.add_argument("--solver", type=int, default=64, help="solver answers per task type (AZR: 64)")
    ap.add_argument("--loops", type=int, default=1, help="looping programs / answers per place they can occur")
    ap.add_argument("--timeout", type=float, default=1.0, help="seconds per call, both sides (AZR reference: 10)")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="sandbox jobs at a time (ours)")
    ap.add_argument("--threads", type=int, default=64, help="threads submitting checks (ours)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true", help="also print the numbers as one JSON line")
    args = ap.parse_args(argv)
    if args.quick:
        args.proposals, args.solver = min(args.proposals, 8), min(args.solver, 8)

    props, tasks = make_step(args.seed, args.proposals, args.samples, args.solver, args.loops)
    kinds = Counter(f"{p.kind}" for p in props)
    n_learn = sum(len(p.answers) for p in props if p.kind in ("valid", "slow"))
    print(
        f"step: {len(props)} proposals ({', '.join(f'{k} {v}' for k, v in sorted(kinds.items()))}), "
        f"{n_learn} learnability attempts, {len(tasks)} solver answers; {os.cpu_count()} CPU cores, "
        f"timeout {args.timeout:g} s per call (both sides), seed {args.seed}"
    )
    with Sandbox(workers=args.workers, timeout=args.timeout, memory_mb=512) as sb:
        sb.run_many([{"code": "def f(x):\n    return x", "call": "1"}] * (2 * args.workers))  # start the server
        s0 = _stats(sb)
        ours = run_ours_pipelined(sb, props, tasks, args.threads)
        s1 = _stats(sb)
        phased = run_ours_phased(sb, props, tasks, args.threads)
    ref = run_reference(props, tasks, args.timeout)

    bad = compare(props, tasks, ref, ours)
    bad += [f"ours, phase by phase: solve rate of proposal {i} differs" for i, r in phased["rates"].items()
            if not props[i].looping and ours["rates"].get(i) != r]  # fmt: skip
    valid_ref = sum(v[0] for v in ref["valid"])
    reasons_ours = Counter(v.reason or "valid" for v in ours["valid"])
    jobs = s1.get("jobs", 0) - s0.get("jobs", 0) if s1 and s0 else None
    our_timeouts = s1.get("timeouts", 0) - s0.get("timeouts", 0) if s1 and s0 else None
    solved = sum(ours["solver"])

    print(f"\nverdicts: {valid_ref} valid proposals on both sides; ours by reason: "
          + ", ".join(f"{k} {v}" for k, v in sorted(reasons_ours.items())))  # fmt: skip
    print(f"  solver answers correct: {solved} of {len(tasks)}; mean solve rate of valid proposals "
          f"{sum(ours['rates'].values()) / max(1, len(ours['rates'])):.2f}; disagreements: {len(bad)}")  # fmt: skip
    print(f"  reference: {ref['calls']} exec calls, {ref['timeouts']} timeouts, {ref['restarts']} pool restarts")
    print(f"  ours:      {jobs if jobs is not None else '?'} sandbox jobs, "
          f"{our_timeouts if our_timeouts is not None else '?'} timeouts, workers={args.workers}, "
          f"threads={args.threads}")  # fmt: skip

    print(f"\n{'seconds':>32} {'reference':>10} {'ours':>8} {'speed-up':>9}")
    for phase, rs in ref["phase_s"].items():
        os_ = phased["phase_s"][phase]
        print(f"{phase + ' (ours: phase alone)':>32} {rs:>10.2f} {os_:>8.2f} {rs / os_:>8.1f}x")
    print(f"{'step, phase by phase':>32} {ref['step_s']:>10.2f} {phased['step_s']:>8.2f} "
          f"{ref['step_s'] / phased['step_s']:>8.1f}x")  # fmt: skip
    ratio = ref["step_s"] / ours["step_s"]
    print(f"{'step, ours pipelined':>32} {ref['step_s']:>10.2f} {ours['step_s']:>8.2f} {ratio:>8.1f}x")
    done = ", ".join(f"{k} {v:.2f} s" for k, v in sorted(ours["done_at"].items(), key=lambda kv: kv[1]))
    print(f"  ours pipelined, each phase's last check done at: {done}")
    print(f"  the reference with its own 10 s timeout: {ref['step_s'] + ref['timeouts'] * (10 - args.timeout):.1f} s "
          f"per step (this run plus {10 - args.timeout:g} s for each of its {ref['timeouts']} timeouts)")  # fmt: skip
    print(f"seconds per step: reference {ref['step_s']:.2f}, ours {ours['step_s']:.2f}; "
          f"speed-up {ratio:.1f}x (target >= 10x on 2 cores): {'met' if ratio >= 10 else 'MISSED'}")  # fmt: skip
    result = {
        "ref_step_s": ref["step_s"], "ours_step_s": ours["step_s"], "ours_phased_step_s": phased["step_s"],
        "ratio": ratio, "ref_phase_s": ref["phase_s"], "ours_phase_s": phased["phase_s"],
        "ref_timeouts": ref["timeouts"], "ours_timeouts": our_timeouts, "ref_calls": ref["calls"],
        "ours_jobs": jobs, "valid": valid_ref, "proposals": len(props), "solver": len(tasks),
        "disagreements": len(bad), "workers": args.workers, "timeout": args.timeout,
    }  # fmt: skip
    if args.json:
        print(json.dumps(result))
    for line in bad[:20]:
        print("DISAGREE", line)
    if bad:
        raise SystemExit(f"{len(bad)} verdict disagreements between ours and the reference")
    return result


if __name__ == "__main__":
    main()
