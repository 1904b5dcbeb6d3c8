r"""Verification: math-verify's verdict on an (answer, gold) pair within a time budget that holds in any thread.

A verdict is exactly math-verify's default ``verify(parse(gold), parse(pred))`` (the ``math_verify`` package of
Kydlíček et al., Hugging Face), with both strings first made parseable by :func:`~reward_fns.math.extract.wrap_latex`.
The exact fast paths of :mod:`reward_fns.math.fastpath` answer first; then a prediction identical to a gold whose
parse is known to match itself, and a cache of recent (prediction, gold) verdicts (never timeouts). Everything
else goes to sympy.

**Time budget.** math-verify's own timeouts use ``signal.alarm``, which works only on the main thread; verl calls
reward functions from a thread pool (``run_in_executor``), where those timeouts are refused, and a signal cannot
interrupt a long C call (big-integer powers) anyway. So the sympy path runs in checker processes and the budget is
enforced from outside: a checker that has not answered when the budget (``timeout_s``) runs out is killed with
SIGKILL and the answer counts as wrong with ``timeout=True``. This holds in any thread and in any worker process,
and never raises. Checkers are workers of a pre-started process server (:mod:`reward_fns._procserver`) that has
already imported math-verify: forked on demand (a few ms), so a killed checker is replaced at once; the reward
process itself never forks and never imports sympy. Each checker keeps an LRU cache of parsed strings, and calls
are routed to the checker that already holds their gold, so the gold shared by the n rollouts of a prompt is parsed
once. The server starts on first use (about a second, once per process; that start is not charged to the first
call's budget) and is restarted if it dies; call :func:`warmup` to pay the start up front.

**Default budget: 5 s per call** (:data:`DEFAULT_TIMEOUT_S`; parse gold, parse answer, compare, and any wait for
a free checker). That is math-verify's own default (5 s per parse and per comparison), so honest but slow checks
(a trigonometric ``simplify``, a large matrix) get the verdict math-verify gives them; 1 s would make them wrong
here and right there, and on a loaded node (verl scores while the next batch generates) would turn honest answers
into timeouts. The cost is bounded: only hostile answers run that long, each holds one checker for at most 5 s
while the rest of the batch goes on in the other checkers, and a training step takes minutes. Set it per run with
``+reward.custom_reward_function.reward_kwargs.timeout_s``. A timeout is never cached: it may come from a
momentary load or a small budget, so the same pair is checked again on its next call.

>>> verify_answer("0.5", r"\frac{1}{2}")
True
"""

from __future__ import annotations

import atexit
import hashlib
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from reward_fns._procserver import BudgetExceeded, ProcServer, Worker, WorkerLost
from reward_fns.math.extract import wrap_latex
from reward_fns.math.fastpath import fast_verdict

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "CheckerStats",
    "Verdict",
    "cache_info",
    "verify",
    "verify_answer",
    "warmup",
]

logger = logging.getLogger("reward_fns.math")

DEFAULT_TIMEOUT_S = 5.0  # per call, math-verify's own default (see the module docstring)


def _max_checkers() -> int:
    """Checker processes per reward process (idle ones cost little: forked, copy-on-write)."""
    value = os.environ.get("REWARD_FNS_MATH_CHECKERS", "")
    if not value:
        return min(16, max(4, os.cpu_count() or 1))
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"REWARD_FNS_MATH_CHECKERS must be a positive integer, got {value!r}")
    return int(value)


MAX_CHECKERS = _max_checkers()
CHECKER_MEMORY_BYTES = 4 << 30  # address-space limit of a checker process (a hostile power fails fast)
PARSE_CACHE_SIZE = 4096  # parsed strings kept per checker process
VERDICT_CACHE_SIZE = 1 << 16  # (pred, gold) verdicts kept in the calling process
_CACHE_MAX_CHARS = 4096  # longer strings are cached under a digest (a 1 MB junk answer must not pin memory)
_SERVER_START_TIMEOUT_S = 120.0
# what the checker server runs (module:function): a warm-up once, then one worker per checker
_CHECKER_TARGET = "reward_fns.math.verification:_checker_loop"
_WARMUP_TARGET = "reward_fns.math.verification:_warm_up"


class _LRU:
    """A small thread-safe LRU mapping."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._data: OrderedDict[Any, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Any) -> Any:
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    def put(self, key: Any, value: Any) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.size:
                self._data.popitem(last=False)


@dataclass(frozen=True)
class Verdict:
    """The outcome of one check: ``correct``, and ``timeout`` when the budget ran out (then wrong)."""

    correct: bool
    timeout: bool = False


@dataclass(frozen=True)
class CheckerStats:
    """Counters of this process since start (see :func:`cache_info`)."""

    fast_path: int  # answered without sympy: numbers, intervals / tuples, small exact LaTeX, known gold
    cache_hits: int  # answered from the (pred, gold) verdict cache
    checks: int  # sent to a checker process (sympy)
    gold_parses: int  # golds parsed by checker processes (cache misses)
    timeouts: int  # checks that ran out of budget (checker killed)
    crashes: int  # checkers that died while checking (answer counted wrong)
    checkers_started: int  # checker processes forked
    local_checks: int  # checks run in this process because checker processes could not start


_COUNTERS = dict.fromkeys(CheckerStats.__dataclass_fields__, 0)


def _count(name: str, n: int = 1) -> None:
    _COUNTERS[name] += n


def cache_info() -> CheckerStats:
    """Counters of the fast paths, caches and checker processes of this process.

    >>> before = cache_info().fast_path
    >>> verify_answer("1/2", "0.5"), cache_info().fast_path - before
    (True, 1)
    """
    return CheckerStats(**_COUNTERS)


# ----------------------------------------------------------------------------------------------------
# Checker processes: workers of a pre-started process server (reward_fns._procserver)
# ----------------------------------------------------------------------------------------------------
# Layout: this (reward) process -- control sockets --> server process (fresh interpreter, math-verify
# imported, single-threaded) -- fork --> checker processes, each talking to this process over its own
# socket pair (the server hands our end over with SCM_RIGHTS). A checker that overruns is SIGKILLed.


def _math_verify() -> tuple[Callable[..., Any], Callable[..., Any]]:
    from math_verify import parse, verify

    return parse, verify


def _warm_up() -> None:
    """Run once in the checker server before it forks checkers: import math-verify and exercise its grammar."""
    logging.getLogger("math_verify").setLevel(logging.ERROR)  # we disable its (signal) timeouts on purpose
    parse, verify_mv = _math_verify()
    for text in ("\\boxed{\\frac{1}{2}}", "\\boxed{(1, 2]}", "\\boxed{x^2+\\sqrt{2}\\pi}", "$1,2$"):
        verify_mv(parse(text, parsing_timeout=None), parse(text, parsing_timeout=None), timeout_seconds=None)


def _checker_loop(sock: Any) -> None:
    """A checker: answer (gold, pred) requests until the reward process goes away."""
    from multiprocessing.connection import Connection

    try:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (CHECKER_MEMORY_BYTES, CHECKER_MEMORY_BYTES))
    except Exception:  # not Linux
        pass
    conn = Connection(sock.detach())
    parse, verify_mv = _math_verify()
    parsed: OrderedDict[str, list[Any]] = OrderedDict()

    def parse_cached(text: str) -> tuple[list[Any], bool]:
        hit = parsed.get(text)
        if hit is not None:
            parsed.move_to_end(text)
            return hit, False
        value = parse(text, parsing_timeout=None)
        if len(text) <= _CACHE_MAX_CHARS:
            parsed[text] = value
            while len(parsed) > PARSE_CACHE_SIZE:
                parsed.popitem(last=False)
        return value, True

    while True:
        try:
            gold_w, pred_w = conn.recv()
        except (EOFError, OSError):
            return
        fresh = False
        try:
            gold, fresh = parse_cached(gold_w)
            # verify(g, g) is True exactly when the parse holds a non-empty string (str == str)
            self_match = any(isinstance(x, str) and x.strip() for x in gold)
            pred, _ = parse_cached(pred_w)
            reply = (bool(verify_mv(gold, pred, timeout_seconds=None)), self_match, fresh)
        except BaseException:  # MemoryError, RecursionError, ...: a wrong answer, never a dead checker
            reply = (False, False, fresh)
        try:
            conn.send(reply)
        except OSError:
            return


class _Checker:
    __slots__ = ("worker", "golds")

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.golds: OrderedDict[str, None] = OrderedDict()  # mirror of the golds its cache holds


class _CheckerPool:
    """Checker processes of this process; each call holds one checker for the length of the check."""

    def __init__(self, max_checkers: int) -> None:
        self.max_checkers = max_checkers
        self._cond = threading.Condition()
        self._idle: list[_Checker] = []
        self._live: dict[int, _Checker] = {}
        self._reserved = 0  # checkers being forked
        self.server = ProcServer.for_workers(
            "reward_fns.math checker server",
            _CHECKER_TARGET,
            warmup=_WARMUP_TARGET,
            start_timeout=_SERVER_START_TIMEOUT_S,
            grace=1.0,
        )

    def start(self) -> None:
        self.server.ensure()

    def _acquire(self, gold_w: str, deadline: float) -> _Checker | None:
        with self._cond:
            while True:
                if self._idle:
                    for i in range(len(self._idle) - 1, -1, -1):
                        if gold_w in self._idle[i].golds:
                            return self._idle.pop(i)
                    return self._idle.pop()
                if len(self._live) + self._reserved < self.max_checkers:
                    self._reserved += 1
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._cond.wait(remaining)
        try:
            checker = _Checker(self.server.fork_worker())
            _count("checkers_started")
        finally:
            with self._cond:
                self._reserved -= 1
                self._cond.notify()
        with self._cond:
            self._live[checker.worker.pid] = checker
        return checker

    def _release(self, checker: _Checker) -> None:
        with self._cond:
            self._idle.append(checker)
            self._cond.notify()

    def _forget(self, checker: _Checker) -> None:
        """Drop a checker that was killed (its slot is free again)."""
        with self._cond:
            self._live.pop(checker.worker.pid, None)
            self._cond.notify()

    def check(self, gold_w: str, pred_w: str, timeout_s: float) -> tuple[Verdict | None, bool | None]:
        """(verdict, whether the gold matches itself or None if unknown) of one sympy check.

        A verdict carries ``timeout=True`` when the pair itself ran out of time; when no checker was
        free within the budget (every one busy in other threads) the result is ``None`` instead."""
        self.start()  # the one-time server start is not charged to this call's budget
        deadline = time.monotonic() + timeout_s
        checker = self._acquire(gold_w, deadline)
        if checker is None:
            return None, None
        try:
            correct, self_match, fresh = checker.worker.call((gold_w, pred_w), deadline - time.monotonic())
        except BudgetExceeded:
            self._forget(checker)
            _count("timeouts")
            return Verdict(False, timeout=True), None
        except WorkerLost:
            self._forget(checker)
            _count("crashes")
            logger.warning("reward_fns.math: a checker process died on pred %.80r (counted wrong)", pred_w)
            return Verdict(False), None
        _count("gold_parses", int(fresh))
        if len(gold_w) <= _CACHE_MAX_CHARS:
            checker.golds[gold_w] = None
            checker.golds.move_to_end(gold_w)
            while len(checker.golds) > PARSE_CACHE_SIZE // 2:
                checker.golds.popitem(last=False)
        self._release(checker)
        return Verdict(bool(correct)), bool(self_match)

    def close(self) -> None:
        """Kill every checker and stop the server."""
        with self._cond:
            checkers = list(self._live.values())
            self._live.clear()
            self._idle.clear()
        for checker in checkers:
            checker.worker.kill()
        self.server.close()


class _State:
    """Everything this process keeps; rebuilt in a forked child (sockets and locks do not survive fork)."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.lock = threading.Lock()
        self.pool: _CheckerPool | None = None
        self.local_only = False  # checker processes could not start here
        self.verdicts = _LRU(VERDICT_CACHE_SIZE)
        self.self_match = _LRU(VERDICT_CACHE_SIZE // 16)  # gold -> its parse matches itself

    def get_pool(self) -> _CheckerPool | None:
        with self.lock:
            if self.pool is None and not self.local_only:
                self.pool = _CheckerPool(MAX_CHECKERS)
            return self.pool


_STATE = _State()


def _after_fork_in_child() -> None:
    global _STATE
    old, _STATE = _STATE, _State()
    if old.pool is not None:  # close our copies of the checkers' sockets; the processes stay the parent's
        for checker in list(old.pool._live.values()):
            checker.worker.close()


def _shutdown() -> None:
    if _STATE.pool is not None and _STATE.pid == os.getpid():
        _STATE.pool.close()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(_shutdown)


def warmup() -> None:
    """Start the checker server now instead of on the first sympy check (about a second, once).

    >>> warmup()
    """
    pool = _STATE.get_pool()
    if pool is not None:
        try:
            pool.start()
        except (OSError, RuntimeError) as e:
            _use_local(e)


def _use_local(error: BaseException) -> None:
    logger.error(
        "reward_fns.math: checker processes unavailable (%s); checking in-process, where the time budget "
        "holds only on the main thread",
        error,
    )
    _STATE.local_only = True


def _check_local(gold_w: str, pred_w: str, timeout_s: float) -> Verdict:
    """Fallback without checker processes: math-verify in this process, its own timeouts on the main thread."""
    _count("local_checks")
    parse, verify_mv = _math_verify()
    seconds = max(1, round(timeout_s)) if threading.current_thread() is threading.main_thread() else None
    start = time.monotonic()
    correct = verify_mv(
        parse(gold_w, parsing_timeout=seconds), parse(pred_w, parsing_timeout=seconds), timeout_seconds=seconds
    )
    return Verdict(bool(correct), timeout=not correct and time.monotonic() - start >= timeout_s)


# ----------------------------------------------------------------------------------------------------
# Public verbs
# ----------------------------------------------------------------------------------------------------


def _cache_key(pred: str, gold: str) -> tuple[str, str]:
    if len(pred) + len(gold) <= _CACHE_MAX_CHARS:
        return pred, gold
    digest = hashlib.blake2b(pred.encode("utf-8", "surrogatepass"), digest_size=32)
    digest.update(b"\0" + gold.encode("utf-8", "surrogatepass"))
    return "", digest.hexdigest()  # no real pair has an empty pred


def verify(pred: str | None, gold: str, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> Verdict:
    r"""Whether the answer ``pred`` equals ``gold``, as math-verify says, within ``timeout_s`` seconds.

    The verdict is math-verify's default ``verify(parse(wrap_latex(gold)), parse(wrap_latex(pred)))``.
    Works from any thread or process and never raises; running out of time gives
    ``Verdict(correct=False, timeout=True)``. An empty or missing ``pred`` is wrong.

    >>> verify(r"\dfrac{2}{4}", "0.5")
    Verdict(correct=True, timeout=False)
    >>> verify("(1, 3]", "(1,3]")
    Verdict(correct=True, timeout=False)
    >>> verify(None, "3")
    Verdict(correct=False, timeout=False)
    """
    p = "" if pred is None else str(pred).strip()
    g = "" if gold is None else str(gold).strip()
    if not p or not g:
        return Verdict(False)
    fast = fast_verdict(p, g)
    if fast is None and p == g and _STATE.self_match.get(g):
        fast = True
    if fast is not None:
        _count("fast_path")
        return Verdict(fast)
    key = _cache_key(p, g)
    cached = _STATE.verdicts.get(key)
    if cached is not None:
        _count("cache_hits")
        return cached
    gold_w, pred_w = wrap_latex(g), wrap_latex(p)
    pool = _STATE.get_pool()
    if pool is not None:
        try:
            verdict, self_match = pool.check(gold_w, pred_w, float(timeout_s))
        except (OSError, RuntimeError) as e:  # no checker processes here: check in-process from now on
            _use_local(e)
            pool = None
        else:
            _count("checks")
            if verdict is None:  # every checker busy for the whole budget: not this pair's fault, not cached
                _count("timeouts")
                return Verdict(False, timeout=True)
            if self_match is not None and len(g) <= _CACHE_MAX_CHARS:
                _STATE.self_match.put(g, self_match)
    if pool is None:
        verdict = _check_local(gold_w, pred_w, float(timeout_s))
    if not verdict.timeout:  # a timeout may be momentary load or a small budget: the next call checks again
        _STATE.verdicts.put(key, verdict)
    return verdict


def verify_answer(pred: str | None, gold: str, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> bool:
    r"""Whether the answer ``pred`` equals ``gold`` (see :func:`verify`); False on timeout.

    >>> verify_answer("1/2", r"\frac{1}{2}"), verify_answer(r"2\sqrt{2}", r"\sqrt{8}"), verify_answer("3", "4")
    (True, True, False)
    """
    return verify(pred, gold, timeout_s=timeout_s).correct
