"""Run untrusted Python in a sandbox: a pre-started fork server forks one fresh, limited child per job.

>>> with Sandbox(workers=1, timeout=2) as sb:
...     r = sb.run("print(sum(range(10)))")
...     r.ok, r.stdout
(True, '45\\n')

Untrusted code never runs in the caller's process, and the caller never forks: verl's reward workers are
large processes (a fork from a 557 MB parent costs ~27 ms). The fork server (:mod:`._forkserver`) is a separate,
slim interpreter started once, lazily, on the first job; it pays the interpreter start-up and the stdlib imports
once and then forks a fresh child per job (about a millisecond), so every job starts from the same clean state.
When it has spare capacity it forks children ahead of time that wait, fully set up, for their job on a pipe, so
that a job does not wait for ``fork()``. Jobs queue here, in the caller, and at most ``2 x workers`` are at the
server at once: every fork copies the server's heap, which must stay small.

What holds, per job:

* a new session / process group, an empty environment, a private 0700 working directory (removed afterwards);
* rlimits: CPU seconds, address space, processes (+threads), file size, open files, no core files;
* the wall-clock ``timeout`` SIGKILLs the whole process group; children that escaped it are killed when the
  job ends (the server is their reaper);
* stdout and stderr are captured through pipes and capped at ``max_output_bytes`` (the job is killed when it
  prints more);
* no network: the server runs in a new network namespace where the kernel allows it
  (:attr:`Sandbox.network_mode` is ``"namespace"``), otherwise an audit hook in every job refuses sockets and
  process spawning (``"audit-hook"``).

When the kernel allows namespaces (root, or an unprivileged user namespace), the server also gets a private
pid namespace (jobs cannot see or signal host processes; the server is their init, so nothing outlives it), a
private mount namespace (every file system read-only except the job's directory; /tmp, /run, /dev/shm, /root and
/home hidden behind empty tmpfs, the stdlib kept visible) and a private IPC namespace. As root, each job runs
under its own unused uid, which is what makes ``RLIMIT_NPROC`` hold (the kernel never enforces it for uid 0) and
keeps jobs from reading each other's files or signalling each other. Where root cannot give jobs their own uid,
the server counts each job's processes every 10 ms and kills a job that has more than ``max_processes``.
:attr:`Sandbox.isolation` reports what the kernel granted.

Jobs are contained only where they cannot reach processes outside the sandbox: each job under its own uid (root),
or unprivileged in a private pid namespace with its own /proc (user namespace). Elsewhere (``isolation="rlimits"``
as a non-root user, a container without user namespaces, root whose stdlib other users cannot read) the first job
raises ``RuntimeError`` naming the fix, unless the caller opts in with ``allow_unsafe_host_access=True`` or
``REWARD_FNS_SANDBOX_UNSAFE=1``; :attr:`Sandbox.isolation` says ``contained``.

A job cannot forge its result: its result channel is a socket on which the kernel names the sending process, so the
server hears only the job's own process, never its children, and takes only the harness's record at the end of what
that process wrote, and only if it agrees with how the process ended (an ``ok`` record needs exit status 0). Bytes
written to any descriptor can therefore never turn an exception, a non-zero exit, a signal or a timeout into success.
What a job's own process reports at its end is its own choice, as returning a value is: never run trusted checks
inside a job; compare in the caller, as :mod:`reward_fns.code.azr` does.

A job is a fork of the server, which holds other jobs' code and partial output: the child leaves the server's
frames before it runs, so none of that is reachable from its objects (only by reading raw memory). Expected
outputs never enter the sandbox: :mod:`reward_fns.code.azr` compares values in the caller.

The hash seed of the server is fixed (``hash_seed=0``) so that set/dict iteration order of strings is the same
in every job and every server: AZR checks compare outputs produced by different workers.
"""

from __future__ import annotations

import ast
import atexit
import marshal
import os
import sys
import threading
import warnings
import weakref
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from reward_fns._procserver import ProcServer, ServerProcess
from reward_fns.code import _forkserver as _fs

__all__ = ["ExecResult", "Sandbox", "configure_default_sandbox", "default_sandbox", "parse_call_args"]

_SERVER_SCRIPT = os.path.abspath(_fs.__file__)
_START_TIMEOUT = 60.0


@dataclass(frozen=True)
class ExecResult:
    """The outcome of one sandboxed job. It never raises; failures are described by ``reason``.

    ``reason`` is ``""`` when ``ok``, else one of ``syntax_error``, ``exception``, ``exit`` (non-zero
    ``sys.exit``, ``os._exit`` or any exit before the job finished), ``timeout`` (wall clock), ``cpu_limit``,
    ``memory``, ``signal``, ``output_limit``, ``process_limit`` (only where the server counts processes itself,
    see :attr:`Sandbox.isolation`), ``unrepresentable`` (``repr`` of the called function's result
    failed or was too large), ``bad_input`` (the job was refused before running: encoding, NUL bytes, size,
    non-literal call arguments), ``sandbox_error`` or ``closed``.

    >>> ExecResult(ok=False, reason="timeout", timed_out=True)
    ExecResult(ok=False, reason='timeout', stdout='', stderr='', exc_type='', exc_message='', ...)
    """

    ok: bool
    reason: str = ""
    stdout: str = ""
    stderr: str = ""
    exc_type: str = ""
    exc_message: str = ""
    value: str | None = None  # repr of func(*call) when the job had a call
    returncode: int | None = None
    timed_out: bool = False
    memory_exceeded: bool = False
    wall_time: float = 0.0
    truncated: bool = False  # stdout or stderr hit max_output_bytes

    def __repr__(self) -> str:
        shown = ("ok", "reason", "stdout", "stderr", "exc_type", "exc_message")
        body = ", ".join(f"{k}={getattr(self, k)!r}" for k in shown)
        return f"ExecResult({body}, ...)"


def _failed(reason: str, message: str, exc_type: str = "ValueError") -> ExecResult:
    return ExecResult(ok=False, reason=reason, exc_type=exc_type, exc_message=message)


def parse_call_args(text: str, max_chars: int = 1 << 20) -> tuple[tuple, dict]:
    """Parse AZR-style argument text (``'Hello', [1, 2], k=3``) into literal ``(args, kwargs)``.

    Only Python literals are accepted (no names, calls or operators other than what ``ast.literal_eval``
    allows); anything else raises ``ValueError`` naming the problem.

    >>> parse_call_args("'Hello world'")
    (('Hello world',), {})
    >>> parse_call_args("[1, 2], k={'a': (3, 4.5)}")
    (([1, 2],), {'k': {'a': (3, 4.5)}})
    >>> parse_call_args("list(range(3))")
    Traceback (most recent call last):
    ...
    ValueError: argument 1 is not a Python literal: list(range(3))
    """
    if not isinstance(text, str):
        raise ValueError(f"call arguments must be a str, got {type(text).__name__}")
    if len(text) > max_chars:
        raise ValueError(f"call arguments are {len(text)} chars; the limit is {max_chars}")
    if "\x00" in text:
        raise ValueError("call arguments contain a NUL byte")
    try:
        tree = ast.parse(f"f({text}\n)", mode="eval")
    except (SyntaxError, ValueError, MemoryError, RecursionError) as e:
        raise ValueError(f"call arguments do not parse: {type(e).__name__}: {e}") from None
    call = tree.body
    if not isinstance(call, ast.Call):  # e.g. text == ") + (1"
        raise ValueError("call arguments do not form a single call")
    args, kwargs = [], {}
    try:
        for i, node in enumerate(call.args, 1):
            if isinstance(node, ast.Starred):
                raise ValueError(f"argument {i} is starred; give the values literally")
            try:
                args.append(ast.literal_eval(node))
            except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                raise ValueError(f"argument {i} is not a Python literal: {ast.unparse(node)[:200]}") from None
        for kw in call.keywords:
            if kw.arg is None:
                raise ValueError("** arguments are not allowed; give the keywords literally")
            try:
                kwargs[kw.arg] = ast.literal_eval(kw.value)
            except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                raise ValueError(f"argument {kw.arg}= is not a Python literal: {ast.unparse(kw.value)[:200]}") from None
    except RecursionError:
        raise ValueError("call arguments are nested too deeply") from None
    return tuple(args), kwargs


def _server(config: dict, hash_seed: int | None) -> ProcServer:
    """The handle on the sandbox's fork server (P): started lazily, with ``config`` as its first message; the
    ``_reader`` thread of :class:`_State` reads its replies."""
    env = {"MALLOC_ARENA_MAX": "2"}
    if hash_seed is not None:
        env["PYTHONHASHSEED"] = str(hash_seed)
    return ProcServer(
        "sandbox fork server",
        [sys.executable, "-s", "-S", "-B", _SERVER_SCRIPT],
        env=env,
        cwd="/",
        hello=_fs.pack_msg(config),
        start_timeout=_START_TIMEOUT,
        reader=True,
    )


class _State:
    """Everything the reader and writer threads touch (so that the Sandbox itself can be garbage-collected).

    Jobs wait here, not in the server: at most ``window`` (2 x workers) are at the server at once, so its heap (which
    every fork copies) stays small and no job child inherits a long queue of other jobs' code.

    ``lock`` guards the bookkeeping and is never held while writing to the server. The reader thread never writes:
    the server may be blocked writing results that only the reader drains, so a reader blocked on a full input pipe
    would deadlock. Jobs are sent by the submitting thread or, when they had to wait, by the writer thread.
    """

    def __init__(self, config: dict, hash_seed: int | None):
        self.config = config
        self.hash_seed = hash_seed
        self.window = 2 * config["workers"]
        self.lock = threading.Lock()
        self.wlock = threading.Lock()
        self.procserver = _server(config, hash_seed)
        self.server: ServerProcess | None = None
        self.pending: dict[int, list] = {}  # id -> [future, message, times re-sent after a crash]
        self.backlog: deque[int] = deque()  # ids not yet sent to the current server
        self.sent: set[int] = set()  # ids at the current server
        self.stat_waiters: dict[int, Future] = {}
        self.next_id = 0
        self.closed = False
        self.pid = os.getpid()
        self.wake = threading.Event()
        self.writer: threading.Thread | None = None
        self.warned = False

    def ensure(self) -> ServerProcess:
        """The running server, started if needed. Call with ``lock`` held."""
        if self.closed:
            raise RuntimeError("this Sandbox is closed")
        if self.server is None:
            server = self.procserver.ensure()
            self.server = server
            if not server.info.get("contained", False) and not self.warned:
                self.warned = True
                warnings.warn(
                    "Sandbox(allow_unsafe_host_access=True): jobs are NOT contained here; they can signal, ptrace "
                    f"and overwrite the memory of this user's processes (isolation: {server.info})",
                    RuntimeWarning,
                    stacklevel=2,
                )
            threading.Thread(target=self._reader, args=(server,), name="sandbox-reader", daemon=True).start()
        if self.writer is None:
            self.writer = threading.Thread(target=self._writer, name="sandbox-writer", daemon=True)
            self.writer.start()
        return self.server

    def submit(self, jid: int, fut: Future, data: bytes) -> None:
        with self.lock:
            if self.closed:
                _resolve(fut, _failed("closed", "this Sandbox is closed", "SandboxError"))
                return
            server = self.ensure()
            self.pending[jid] = [fut, data, 0]
            self.backlog.append(jid)
            batch = self._take()
        self.write(server, batch)

    def _take(self) -> list[bytes]:
        """Move jobs from the backlog to the server's window. Call with ``lock`` held."""
        batch = []
        while self.backlog and len(self.sent) < self.window:
            jid = self.backlog.popleft()
            entry = self.pending.get(jid)
            if entry is not None:
                self.sent.add(jid)
                batch.append(entry[1])
        return batch

    def write(self, server: ServerProcess, batch: list[bytes]) -> None:
        if not batch:
            return
        with self.wlock:
            try:
                server.send(b"".join(batch))
            except (OSError, ValueError):
                pass  # the server died: its reader thread restarts it and re-sends what is pending

    def _writer(self) -> None:
        while True:
            self.wake.wait()
            self.wake.clear()
            with self.lock:
                if self.closed:
                    return
                server, batch = self.server, self._take()
            if server is not None:
                self.write(server, batch)

    def _reader(self, server: ServerProcess) -> None:
        fd = server.rfd
        while True:
            try:
                msg = _fs.read_msg(fd)
            except (OSError, ValueError, EOFError):
                msg = None
            if msg is None:
                break
            kind = msg[0]
            if kind == "done":
                with self.lock:
                    entry = self.pending.pop(msg[1], None)
                    self.sent.discard(msg[1])
                    if self.backlog:
                        self.wake.set()
                if entry is not None:
                    _resolve(entry[0], ExecResult(**dict(zip(_fs.RESULT_FIELDS, msg[2], strict=True))))
            elif kind == "stats":
                with self.lock:
                    fut = self.stat_waiters.pop(msg[1], None)
                if fut is not None:
                    _resolve(fut, msg[2])
        with self.wlock:
            server.stop()
        server.rsock.close()
        self._server_gone(server)

    def _server_gone(self, server: ServerProcess) -> None:
        failed: list[tuple[Future, ExecResult]] = []
        with self.lock:
            if self.server is not server:
                return
            self.server = None
            waiters, self.stat_waiters = self.stat_waiters, {}
            # crashed: restart transparently; jobs that were at the server go first, each re-sent at most once
            twice = _failed("sandbox_error", "the fork server died twice while this job was pending", "SandboxError")
            again = []
            for jid in sorted(self.sent):
                entry = self.pending[jid]
                if entry[2] >= 1:
                    failed.append((entry[0], twice))
                    del self.pending[jid]
                else:
                    entry[2] += 1
                    again.append(jid)
            self.sent = set()
            self.backlog.extendleft(reversed(again))
            if self.pending:
                try:
                    self.ensure()
                    self.wake.set()
                except (OSError, RuntimeError) as e:
                    result = _failed("sandbox_error", f"sandbox fork server restart failed: {e}", "SandboxError")
                    failed += [(entry[0], result) for entry in self.pending.values()]
                    self.pending, self.backlog = {}, deque()
        for fut, result in failed:
            _resolve(fut, result)
        for fut in waiters.values():
            _resolve(fut, {})

    def close(self) -> None:
        with self.lock:
            self.closed = True
            self.server = None
            pending, self.pending = self.pending, {}
            self.backlog, self.sent = deque(), set()
            waiters, self.stat_waiters = self.stat_waiters, {}
            self.wake.set()  # the writer thread exits
        with self.wlock:
            self.procserver.close()  # the server kills its jobs and exits; the reader thread then closes its end
        for fut, _, _ in pending.values():
            _resolve(fut, _failed("closed", "the sandbox was closed", "SandboxError"))
        for fut in waiters.values():
            _resolve(fut, {})


def _resolve(fut: Future, value: Any) -> None:
    if not fut.done():
        try:
            fut.set_result(value)
        except Exception:  # resolved concurrently
            pass


def _close_state(state: _State) -> None:
    if state.pid == os.getpid():
        state.close()


def _encode(text: str | bytes, what: str) -> bytes:
    if isinstance(text, (bytes, bytearray, memoryview)):
        return bytes(text)
    if not isinstance(text, str):
        raise ValueError(f"{what} must be str or bytes, got {type(text).__name__}")
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise ValueError(f"{what} is not encodable as UTF-8 ({e.reason} at {e.start})") from None


class Sandbox:
    """A pool of sandboxed Python executions behind one pre-started fork server.

    Args:
        workers: jobs that run at the same time (default: the number of CPUs, at most 8).
        timeout: wall-clock seconds per job (default 10, AZR's limit); the job's process group is then killed.
        cpu_seconds: ``RLIMIT_CPU`` per job (default: ``timeout`` rounded up, plus 1).
        memory_mb: ``RLIMIT_AS`` per process, in MiB.
        max_processes: processes + threads per job (``RLIMIT_NPROC``; see :attr:`isolation` for how exact).
        max_output_bytes: cap on stdout and on stderr each; a job that prints more is killed (``output_limit``).
        max_file_bytes: ``RLIMIT_FSIZE``: the largest file a job may write.
        max_open_files: ``RLIMIT_NOFILE``.
        max_code_bytes: larger programs are refused (``bad_input``) without running.
        hash_seed: ``PYTHONHASHSEED`` of the server (``None``: random per server).
        isolation: ``"auto"`` (namespaces and a per-job uid where the kernel allows) or ``"rlimits"`` (no
            namespaces: rlimits, the audit-hook network block and, as root, a per-job uid: what you get on a kernel
            without namespaces).
        allow_unsafe_host_access: run even where jobs cannot be contained (see :attr:`isolation`,
            ``contained``): no per-job uid and no private pid namespace, e.g. ``isolation="rlimits"`` as a non-root
            user, or a container without user namespaces. There a job can signal, ptrace or overwrite the memory of
            every process of the caller's uid (the reward worker, Ray). Default: ``False``, unless the environment
            variable ``REWARD_FNS_SANDBOX_UNSAFE=1``; without it the first job raises ``RuntimeError`` naming the fix.
        preload: stdlib modules the server imports once so that jobs need not (default: ``math``, ``itertools``,
            ``collections``, ``functools``, ``heapq``, ``bisect``, ``operator``, ``string``). Each one makes every
            fork slightly dearer; importing a module inside a job costs ~0.1-20 ms (``typing`` ~11 ms). Never
            preload ``random`` (or modules importing it): every job would then draw the same numbers.

    It is thread-safe and asyncio-friendly (:meth:`arun`). The server starts lazily on the first job and is
    restarted transparently if it dies; :meth:`close` (or leaving a ``with`` block) stops it and every job.
    """

    def __init__(
        self,
        workers: int | None = None,
        timeout: float = 10.0,
        cpu_seconds: int | None = None,
        memory_mb: int = 512,
        max_processes: int = 16,
        max_output_bytes: int = 1 << 20,
        max_file_bytes: int = 16 << 20,
        max_open_files: int = 64,
        max_code_bytes: int = 1 << 20,
        hash_seed: int | None = 0,
        isolation: str = "auto",
        preload: Sequence[str] | None = None,
        allow_unsafe_host_access: bool | None = None,
    ):
        if workers is None:
            workers = max(1, min(8, os.cpu_count() or 1))
        checks = {
            "workers": (workers, 1),
            "timeout": (timeout, 1e-3),
            "memory_mb": (memory_mb, 32),
            "max_processes": (max_processes, 1),
            "max_output_bytes": (max_output_bytes, 1024),
            "max_file_bytes": (max_file_bytes, 0),
            "max_open_files": (max_open_files, 8),
            "max_code_bytes": (max_code_bytes, 1),
        }
        for name, (val, low) in checks.items():
            kind = (int, float) if name == "timeout" else int
            if isinstance(val, bool) or not isinstance(val, kind) or val < low:
                what = "a number" if name == "timeout" else "an int"
                raise ValueError(f"Sandbox({name}={val!r}): must be {what} >= {low}")
        if cpu_seconds is None:  # a backstop behind the wall clock (threads can burn CPU faster than wall time)
            cpu_seconds = int(-(-timeout // 1)) + 1
        if isinstance(cpu_seconds, bool) or not isinstance(cpu_seconds, int) or cpu_seconds < 1:
            raise ValueError(f"Sandbox(cpu_seconds={cpu_seconds!r}): must be an int >= 1")
        if isolation not in ("auto", "rlimits"):
            raise ValueError(f"Sandbox(isolation={isolation!r}): valid: 'auto', 'rlimits'")
        if allow_unsafe_host_access is None:
            allow_unsafe_host_access = os.environ.get(_fs.UNSAFE_ENV, "").strip().lower() in ("1", "true", "yes")
        if not isinstance(allow_unsafe_host_access, bool):
            raise ValueError(f"Sandbox(allow_unsafe_host_access={allow_unsafe_host_access!r}): must be a bool")
        if hash_seed is not None and not (isinstance(hash_seed, int) and 0 <= hash_seed <= 4294967295):
            raise ValueError(f"Sandbox(hash_seed={hash_seed!r}): must be None or an int in [0, 2**32)")
        preload = _fs.PRELOAD if preload is None else preload
        if isinstance(preload, str) or not all(
            isinstance(m, str) and m and all(p.isidentifier() for p in m.split(".")) for m in preload
        ):
            raise ValueError(f"Sandbox(preload={preload!r}): must be a list of module names")
        self.workers = int(workers)
        self.timeout = float(timeout)
        self.max_code_bytes = int(max_code_bytes)
        self._config = {
            "workers": int(workers),
            "cpu_seconds": int(cpu_seconds),
            "memory_mb": int(memory_mb),
            "max_processes": int(max_processes),
            "max_output_bytes": int(max_output_bytes),
            "max_file_bytes": int(max_file_bytes),
            "max_open_files": int(max_open_files),
            "isolation": isolation,
            "preload": list(preload),
            "allow_unsafe_host_access": allow_unsafe_host_access,
        }
        self._hash_seed = hash_seed
        self._state = _State(self._config, hash_seed)
        self._finalizer = weakref.finalize(self, _close_state, self._state)

    # ------------------------------------------------------------------ lifecycle
    def _st(self) -> _State:
        st = self._state
        if st.pid != os.getpid():  # we were forked: the parent owns that server; start our own
            self._finalizer.detach()
            st = self._state = _State(self._config, self._hash_seed)
            self._finalizer = weakref.finalize(self, _close_state, st)
        return st

    def start(self) -> Sandbox:
        """Start the fork server now instead of on the first job; returns ``self``."""
        st = self._st()
        with st.lock:
            st.ensure()
        return self

    def close(self) -> None:
        """Stop the fork server and every running job; pending jobs resolve as ``closed``. Idempotent."""
        self._finalizer()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def closed(self) -> bool:
        return self._state.closed

    @property
    def isolation(self) -> dict:
        """What the kernel granted: ``network_mode``, ``net``/``mount``/``pid``/``ipc``/``userns`` namespaces,
        ``uid_drop`` (a fresh uid per job), ``readonly_root``, ``nproc`` (how exact the process limit is), ...
        Starts the server if needed."""
        st = self._st()
        with st.lock:
            return dict(st.ensure().info)

    @property
    def network_mode(self) -> str:
        """``"namespace"`` (a private network namespace: no interfaces but a down loopback) or ``"audit-hook"``
        (socket creation and process spawning refused inside each job). Starts the server if needed."""
        return self.isolation["network_mode"]

    @property
    def server_pid(self) -> int | None:
        """Host pid of the running fork server process, or ``None`` when it is not running."""
        server = self._state.server
        return server.proc.pid if server is not None else None

    def stats(self, timeout: float = 10.0) -> dict:
        """Server counters: ``jobs`` run, ``forks``, ``timeouts``, ``strays_killed`` (orphans killed after their
        job), ``running``, ``warm`` (idle pre-forked children; ``warm_pids``, as seen in the server's pid namespace).
        Counters restart with the server."""
        st = self._st()
        fut: Future = Future()
        with st.lock:
            rid = st.next_id = st.next_id + 1
            st.stat_waiters[rid] = fut
            server = st.ensure()
        st.write(server, [_fs.pack_msg(("stats", rid))])
        return fut.result(timeout=timeout)

    # ------------------------------------------------------------------ jobs
    def _message(
        self, jid: int, code: str | bytes, stdin: str | bytes, call: str | None, func: str, timeout: float | None
    ) -> tuple | ExecResult:
        try:
            code_b = _encode(code, "code")
            stdin_b = _encode(stdin, "stdin")
            if len(code_b) > self.max_code_bytes:
                raise ValueError(f"code is {len(code_b)} bytes; the limit is max_code_bytes={self.max_code_bytes}")
            if b"\x00" in code_b:
                raise ValueError("code contains a NUL byte")
            if not isinstance(code, str):  # a str encoded above is valid UTF-8 by construction
                try:
                    code_b.decode("utf-8")
                except UnicodeDecodeError as e:
                    raise ValueError(f"code is not valid UTF-8 ({e.reason} at byte {e.start})") from None
            if len(stdin_b) > self.max_code_bytes:
                raise ValueError(f"stdin is {len(stdin_b)} bytes; the limit is max_code_bytes={self.max_code_bytes}")
            parsed = None
            if call is not None:
                parsed = parse_call_args(call, self.max_code_bytes)
                marshal.dumps(parsed)  # literal values always marshal; this guards odd depths
            if not isinstance(func, str) or not func.isidentifier():
                raise ValueError(f"func must be an identifier, got {func!r}")
            t = self.timeout if timeout is None else float(timeout)
            if not t > 0:
                raise ValueError(f"timeout must be > 0, got {timeout!r}")
        except ValueError as e:
            return _failed("bad_input", str(e))
        # the server passes the spec through unopened (only the job child unpacks it); it learns only whether the job
        # has a call, so that it can refuse a result record with a value from a job without one
        return ("run", jid, t, marshal.dumps((code_b, stdin_b, parsed, func)), parsed is not None)

    def submit(
        self,
        code: str | bytes,
        stdin: str | bytes = "",
        *,
        call: str | None = None,
        func: str = "f",
        timeout: float | None = None,
    ) -> Future:
        """Queue one job; returns a ``concurrent.futures.Future`` that resolves to its :class:`ExecResult`.

        ``call``: argument text such as ``"'abc', [1, 2]"`` (literals only). After the code runs,
        ``func(<call>)`` is evaluated and ``ExecResult.value`` holds ``repr`` of the result. ``timeout``
        overrides the sandbox's wall-clock limit for this job.
        """
        st = self._st()
        fut: Future = Future()
        with st.lock:
            st.next_id += 1
            jid = st.next_id
        msg = self._message(jid, code, stdin, call, func, timeout)
        if isinstance(msg, ExecResult):
            fut.set_result(msg)
            return fut
        st.submit(jid, fut, _fs.pack_msg(msg))
        return fut

    def run(
        self,
        code: str | bytes,
        stdin: str | bytes = "",
        *,
        call: str | None = None,
        func: str = "f",
        timeout: float | None = None,
    ) -> ExecResult:
        """Run ``code`` as a script (``__name__ == "__main__"``) with ``stdin``; block until it finishes.

        >>> with Sandbox(workers=1, timeout=2) as sb:
        ...     sb.run("def f(a, b): return a * b", call="'ab', 3").value
        "'ababab'"
        """
        return self.submit(code, stdin, call=call, func=func, timeout=timeout).result()

    def run_many(self, jobs: Iterable[str | Sequence[Any] | Mapping[str, Any]]) -> list[ExecResult]:
        """Run many jobs, ``workers`` at a time; results in input order.

        Each job is a code string, a ``(code, stdin)`` tuple, or a dict of :meth:`run` keyword arguments.

        >>> with Sandbox(workers=2, timeout=2) as sb:
        ...     [r.stdout for r in sb.run_many(["print(1)", ("print(input())", "hi"), {"code": "print(3)"}])]
        ['1\\n', 'hi\\n', '3\\n']
        """
        futures = []
        for job in jobs:
            if isinstance(job, (str, bytes)):
                futures.append(self.submit(job))
            elif isinstance(job, Mapping):
                futures.append(self.submit(**job))
            else:
                futures.append(self.submit(*job))
        return [f.result() for f in futures]

    async def arun(
        self,
        code: str | bytes,
        stdin: str | bytes = "",
        *,
        call: str | None = None,
        func: str = "f",
        timeout: float | None = None,
    ) -> ExecResult:
        """:meth:`run` for asyncio code: awaits the job without blocking the event loop."""
        import asyncio

        return await asyncio.wrap_future(self.submit(code, stdin, call=call, func=func, timeout=timeout))


# ---------------------------------------------------------------------------------------- shared default
_default_lock = threading.Lock()
_default: Sandbox | None = None
_default_kwargs: dict[str, Any] = {}


def default_sandbox() -> Sandbox:
    """The process-wide sandbox used by ``compute_score`` (created lazily, one per process, closed at exit).

    Its settings come from :func:`configure_default_sandbox` (defaults: :class:`Sandbox`'s).
    """
    global _default
    with _default_lock:
        if _default is None or _default.closed or _default._state.pid != os.getpid():
            _default = Sandbox(**_default_kwargs)
        return _default


def configure_default_sandbox(**kwargs: Any) -> None:
    """Set the :class:`Sandbox` arguments of :func:`default_sandbox` (closing the current one, if any).

    >>> configure_default_sandbox(timeout=5, workers=2)
    >>> default_sandbox().timeout
    5.0
    >>> configure_default_sandbox()  # back to the defaults
    """
    global _default, _default_kwargs
    Sandbox(**kwargs)  # validate now: a bad setting fails here, naming the argument
    with _default_lock:
        _default_kwargs = dict(kwargs)
        old, _default = _default, None
    if old is not None:
        old.close()


@atexit.register
def _close_default() -> None:
    if _default is not None:
        _default.close()
