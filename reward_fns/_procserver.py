"""Pre-started process servers: a slim server process, started on first use, forks the processes that do the work.

Both users of extra processes in ``reward_fns`` sit on this module and add only their own job on top:

- the math checker (:mod:`reward_fns.math.verification`): a server that has imported math-verify forks *workers*
  (checker processes that answer many requests) on demand; the caller SIGKILLs a worker that overruns its budget;
- the code sandbox (:mod:`reward_fns.code.sandbox`): its server (:mod:`reward_fns.code._forkserver`) adds the
  isolation layers (namespaces, read-only root, per-job uid, rlimits) and forks one fresh child per job, which it
  kills, with its whole process group, at the job's budget.

What they share, here:

- :class:`ProcServer`, the caller's handle on one server process: started lazily as a *fresh* interpreter (never a
  fork of the caller, which may be a large process: a fork from a 557 MB parent costs ~27 ms), a ``ready``
  handshake, a health check, restart after a crash, stop, and shutdown of every server at interpreter exit. A
  forked caller leaves its parent's server alone and starts its own.
- :func:`serve_workers` (the main loop of a worker server) and :class:`Worker` (a forked worker seen from the
  caller: a request under a time budget, SIGKILL at the budget).
- :func:`kill_group` and :func:`die_with_parent`, the kill primitives every server and worker uses.
- The wire format: length-prefixed marshal messages (:func:`pack_msg`, :func:`send_msg`, :func:`read_msg`).

Layout::

    caller --fd 0 / fd 1 (socket pairs)--> server --fork--> worker / job (one per request)
           <-- a worker's own socket, handed over with SCM_RIGHTS --

A server reads requests on fd 0 and writes replies on fd 1; end of file on fd 0 tells it to end its children and
exit. Because every job is a fork of a server and not of the caller, a per-job supervisor (a forked parent that
watches the job and reports its result from outside the job's reach) fits between the server and the job.

This file imports only cheap standard-library modules at the top and nothing from ``reward_fns``: the sandbox's
server, started with ``python -S``, loads it by path, and every module it imports makes each job's fork dearer.
"""

from __future__ import annotations

import marshal
import os
import signal
import struct
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    import socket
    import subprocess
    from collections.abc import Callable, Sequence
    from multiprocessing.connection import Connection
    from typing import Any, NoReturn

__all__ = [
    "BudgetExceeded",
    "ProcServer",
    "ServerProcess",
    "Worker",
    "WorkerLost",
    "die_with_parent",
    "kill_group",
    "pack_msg",
    "read_msg",
    "send_msg",
    "serve_workers",
]

# ---------------------------------------------------------------------------------------------------- wire format
_HEADER = struct.Struct("<I")
MAX_MESSAGE = 1 << 30


def pack_msg(obj: Any) -> bytes:
    """One length-prefixed marshal message.

    >>> pack_msg(("ready", {}))[:4] == len(marshal.dumps(("ready", {}))).to_bytes(4, "little")
    True
    """
    data = marshal.dumps(obj)
    return _HEADER.pack(len(data)) + data


def send_msg(fd: int, obj: Any) -> None:
    """Write one length-prefixed marshal message to ``fd`` (blocking)."""
    view = memoryview(pack_msg(obj))
    while view:
        view = view[os.write(fd, view) :]


def _read_exact(fd: int, n: int) -> bytes | None:
    chunks = []
    while n:
        b = os.read(fd, min(n, 1 << 20))
        if not b:
            return None
        chunks.append(b)
        n -= len(b)
    return b"".join(chunks)


def read_msg(fd: int) -> Any:
    """Read one message from a blocking ``fd``; ``None`` at end of file.

    >>> r, w = os.pipe(); send_msg(w, ("run", 1)); os.close(w); read_msg(r), read_msg(r)
    (('run', 1), None)
    """
    head = _read_exact(fd, _HEADER.size)
    if head is None:
        return None
    (n,) = _HEADER.unpack(head)
    if n > MAX_MESSAGE:
        raise ValueError(f"process server message too large: {n} bytes")
    body = _read_exact(fd, n)
    if body is None:
        return None
    return marshal.loads(body)


# ---------------------------------------------------------------------------------------------- kill primitives
def kill_group(pid: int) -> None:
    """SIGKILL ``pid`` and the process group it leads, if any; processes already gone are ignored."""
    for fn in (os.killpg, os.kill):
        try:
            fn(pid, signal.SIGKILL)
        except OSError:
            pass


def die_with_parent(sig: int = signal.SIGKILL) -> bool:
    """Have the kernel send ``sig`` to this process when its parent exits (Linux); False where it cannot."""
    try:
        import ctypes

        return ctypes.CDLL(None).prctl(1, ctypes.c_ulong(sig), 0, 0, 0) == 0  # PR_SET_PDEATHSIG
    except Exception:
        return False


# ------------------------------------------------------------------------------------------------ caller's side
class ServerProcess:
    """One running server process, as the caller sees it: requests go to :attr:`wsock`, replies come from
    :attr:`rsock`, and :attr:`info` is what its ``ready`` message said."""

    def __init__(self, proc: subprocess.Popen[bytes], wsock: socket.socket, rsock: socket.socket, info: Any) -> None:
        self.proc = proc
        self.wsock = wsock
        self.rsock = rsock
        self.rfd = rsock.fileno()
        self.info = info

    @property
    def pid(self) -> int:
        """Host pid of the server process."""
        return self.proc.pid

    def alive(self) -> bool:
        """Health check: the process has not exited."""
        return self.proc.poll() is None

    def send(self, data: bytes) -> None:
        """Send bytes to the server; raises ``OSError`` once it is gone or stopped."""
        self.wsock.sendall(data)

    def stop(self, grace: float = 5.0) -> None:
        """End of file to the server (it ends its children and exits); SIGKILL it if it is still there after
        ``grace`` seconds. Idempotent; leaves :attr:`rsock` open for whoever reads it."""
        import subprocess

        try:
            self.wsock.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def close(self, grace: float = 5.0) -> None:
        """:meth:`stop`, then close :attr:`rsock`."""
        self.stop(grace)
        self.rsock.close()


def _start(
    name: str, argv: Sequence[str], env: dict[str, str] | None, cwd: str | None, hello: bytes, timeout: float
) -> ServerProcess:
    """Start one server process and wait for its ``("ready", info)`` message."""
    import select
    import socket
    import subprocess

    to_server, from_server = socket.socketpair(), socket.socketpair()
    try:
        proc = subprocess.Popen(
            list(argv),
            stdin=to_server[1].fileno(),
            stdout=from_server[1].fileno(),
            env=env,
            cwd=cwd,
            close_fds=True,
            start_new_session=True,  # a Ctrl-C in the terminal is for the caller, not for the server
        )
    except BaseException:
        for s in (*to_server, *from_server):
            s.close()
        raise
    to_server[1].close()
    from_server[1].close()
    server = ServerProcess(proc, to_server[0], from_server[0], None)
    try:
        if hello:
            server.send(hello)
        ready, _, _ = select.select([server.rfd], [], [], timeout)
        msg = read_msg(server.rfd) if ready else f"no answer within {timeout:.0f} s"
    except (OSError, ValueError, EOFError) as e:
        msg = f"{type(e).__name__}: {e}"
    except BaseException:
        server.close(grace=0)
        raise
    if not (isinstance(msg, tuple) and len(msg) == 2 and msg[0] == "ready"):
        server.close(grace=0)
        detail = msg[1] if isinstance(msg, tuple) and len(msg) > 1 else msg
        raise RuntimeError(f"{name}: the server process failed to start: {detail}")
    server.info = msg[1]
    return server


_LIVE: Any = None  # weak set of every ProcServer of this process (created with the first one)


class ProcServer:
    """A lazily started, self-healing server process.

    ``argv`` starts a fresh interpreter that serves on fds 0 and 1 (see the module docstring); ``hello`` is sent
    to it first; it must answer ``("ready", info)`` within ``start_timeout`` seconds. :meth:`ensure` returns the
    running server, starting it (again) when it has never run or has died; :meth:`close` stops it. Every server
    still running is stopped at interpreter exit. Thread-safe.

    ``reader=True`` says that a thread of the caller reads :attr:`ServerProcess.rsock` and closes it when it
    reads end of file; otherwise the handle closes it when it stops the server.

    >>> server = ProcServer.for_workers("doc", "reward_fns._procserver:echo_worker")
    >>> server.alive(), server.ensure().info["workers"], server.alive()
    (False, 'reward_fns._procserver:echo_worker', True)
    >>> worker = server.fork_worker(); worker.call("hi", budget_s=5)
    'hi'
    >>> worker.kill(); server.close(); server.alive()
    False
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: dict[str, str] | None = None,
        cwd: str | None = None,
        hello: bytes = b"",
        start_timeout: float = 60.0,
        grace: float = 5.0,
        reader: bool = False,
    ) -> None:
        import threading
        import weakref

        global _LIVE
        self.name = name
        self.argv = list(argv)
        self.env = env
        self.cwd = cwd
        self.hello = hello
        self.start_timeout = start_timeout
        self.grace = grace
        self.reader = reader
        self.starts = 0  # server processes started by this handle (a restart counts)
        self.closed = False
        self._owner = os.getpid()
        self._lock = threading.Lock()
        self._request_lock = threading.Lock()
        self._server: ServerProcess | None = None
        if _LIVE is None:
            _LIVE = weakref.WeakSet()
            import atexit

            atexit.register(_shutdown_all)
            if hasattr(os, "register_at_fork"):
                os.register_at_fork(after_in_child=_after_fork_in_child)
        _LIVE.add(self)

    @classmethod
    def for_workers(
        cls, name: str, worker: str, *, warmup: str = "", path: Sequence[str] = (), **kwargs: Any
    ) -> ProcServer:
        """A server that runs :func:`serve_workers` with ``worker`` (``"module:function"``), after calling
        ``warmup`` (same form, or empty) once. ``path`` is put in front of the server's ``PYTHONPATH``."""
        package_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (*path, package_root, env.get("PYTHONPATH")) if p)
        argv = [sys.executable, "-c", _WORKER_SERVER_CODE, worker, warmup]
        return cls(name, argv, env=env, **kwargs)

    # -- life cycle
    def ensure(self) -> ServerProcess:
        """The running server, started now if it is not running (first use, or after a crash)."""
        with self._lock:
            if self.closed:
                raise RuntimeError(f"{self.name}: the process server is closed")
            server = self._server
            if server is None or not server.alive():
                self._server = None
                if server is not None:
                    self._discard(server)
                server = _start(self.name, self.argv, self.env, self.cwd, self.hello, self.start_timeout)
                self.starts += 1
                self._server = server
            return server

    def current(self) -> ServerProcess | None:
        """The server process if one was started and is not known to be stopped (no health check, no start)."""
        return self._server

    def alive(self) -> bool:
        """Health check: a server process is running (nothing is started)."""
        server = self._server
        return server is not None and server.alive()

    def restart(self, server: ServerProcess | None = None) -> None:
        """Kill ``server`` (default: the current one) so that the next :meth:`ensure` starts a fresh one."""
        with self._lock:
            server = server or self._server
            if server is None:
                return
            if server is self._server:
                self._server = None
        server.proc.kill()
        self._discard(server, grace=0)

    def close(self) -> None:
        """Stop the server (end of file, then SIGKILL after the grace time) and refuse to start another."""
        with self._lock:
            self.closed = True
            server, self._server = self._server, None
        if server is not None and self._owner == os.getpid():
            self._discard(server)

    def _discard(self, server: ServerProcess, grace: float | None = None) -> None:
        grace = self.grace if grace is None else grace
        if self.reader:
            server.stop(grace)
        else:
            server.close(grace)

    # -- worker servers (serve_workers)
    def fork_worker(self) -> Worker:
        """A fresh worker forked by the server (started or restarted as needed; one retry after a crash)."""
        import socket

        with self._request_lock:
            for attempt in range(2):
                server = self.ensure()
                fds: list[int] = []
                try:
                    server.send(b"F")
                    msg, fds, _, _ = socket.recv_fds(server.rsock, 64, 1)
                    if len(msg) > 4 and len(fds) == 1:
                        reply = marshal.loads(msg[4:])
                        if isinstance(reply, tuple) and reply[0] == "worker":
                            return Worker(reply[1], fds[0])
                except (OSError, ValueError, EOFError, TypeError):
                    pass
                for fd in fds:
                    os.close(fd)
                self.restart(server)
                if attempt:
                    raise RuntimeError(f"{self.name}: could not fork a worker process")
        raise AssertionError("unreachable")

    def _forget_after_fork(self) -> None:
        """In a forked child: the server belongs to the parent; close our copies of its sockets, keep it running."""
        import threading

        self._owner = os.getpid()
        self._lock = threading.Lock()
        self._request_lock = threading.Lock()
        server, self._server = self._server, None
        if server is not None:
            for s in (server.wsock, server.rsock):
                try:
                    s.close()
                except OSError:
                    pass


def _after_fork_in_child() -> None:
    for server in list(_LIVE or ()):
        server._forget_after_fork()


def _shutdown_all() -> None:
    for server in list(_LIVE or ()):
        if server._owner == os.getpid():
            server.close()


class WorkerLost(Exception):
    """The worker died (or was killed) before it answered; it is gone."""


class BudgetExceeded(WorkerLost):
    """The worker did not answer within its budget; it was SIGKILLed."""


class Worker:
    """A worker process forked by a worker server, as seen from the caller. Not thread-safe: one caller at a time."""

    __slots__ = ("pid", "conn")

    def __init__(self, pid: int, fd: int) -> None:
        from multiprocessing.connection import Connection

        self.pid = pid
        self.conn: Connection = Connection(fd)

    def call(self, request: Any, budget_s: float) -> Any:
        """Send ``request`` and return the reply. Raises :class:`BudgetExceeded` when no reply came within
        ``budget_s`` seconds and :class:`WorkerLost` when the worker died; in both cases the worker is killed."""
        try:
            self.conn.send(request)
            if self.conn.poll(max(0.0, budget_s)):
                return self.conn.recv()
        except (EOFError, OSError) as e:
            self.kill()
            raise WorkerLost(f"worker {self.pid} died: {type(e).__name__}") from None
        self.kill()
        raise BudgetExceeded(f"worker {self.pid} ran past its budget of {budget_s:g} s and was killed")

    def kill(self) -> None:
        """SIGKILL the worker (and its process group) and close our end of its socket."""
        kill_group(self.pid)
        self.close()

    def close(self) -> None:
        """Close our end of the worker's socket (the worker then exits by itself)."""
        try:
            self.conn.close()
        except OSError:
            pass


# ------------------------------------------------------------------------------------------------ server's side
_WORKER_SERVER_CODE = "import sys; from reward_fns._procserver import _worker_main; _worker_main(*sys.argv[1:3])"


def _resolve(target: str) -> Callable[..., Any]:
    import importlib

    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def _worker_main(worker: str, warmup: str = "") -> NoReturn:
    """Entry point of a server started by :meth:`ProcServer.for_workers`."""
    if warmup:
        _resolve(warmup)()
    serve_workers(_resolve(worker), info={"workers": worker})


def serve_workers(worker: Callable[[socket.socket], Any], info: dict[str, Any] | None = None) -> NoReturn:
    """Main loop of a worker server: say ``("ready", info)`` on fd 1, then fork one worker per request byte read
    on fd 0 and hand the worker's end of a fresh socket pair back over fd 1. A worker runs ``worker(sock)`` and
    exits; it dies with the server, and the server with the caller (end of file on fd 0)."""
    import socket

    control, replies = socket.socket(fileno=0), socket.socket(fileno=1)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # workers are reaped automatically
    send_msg(1, ("ready", info or {}))
    while True:
        try:
            request = control.recv(1)
        except OSError:
            request = b""
        if not request:
            break
        ours, theirs = socket.socketpair()
        server = os.getpid()
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                control.close()
                replies.close()
                ours.close()
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                if die_with_parent() and os.getppid() != server:  # the server died before we asked
                    raise SystemExit
                worker(theirs)
            except BaseException:
                code = 1
            finally:
                os._exit(code)
        theirs.close()
        try:
            socket.send_fds(replies, [pack_msg(("worker", pid))], [ours.fileno()])
        except OSError:  # the caller is gone
            break
        finally:
            ours.close()
    os._exit(0)


def echo_worker(sock: socket.socket) -> None:
    """A worker that answers each request with itself (for tests and examples). ``("sleep", s)`` sleeps ``s``
    seconds first; ``("spin", s)`` burns CPU for ``s`` seconds first; ``("exit", code)`` exits at once."""
    import time
    from multiprocessing.connection import Connection

    conn = Connection(sock.detach())
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return
        if isinstance(request, tuple) and request[0] == "sleep":
            time.sleep(request[1])
        elif isinstance(request, tuple) and request[0] == "spin":
            end = time.monotonic() + request[1]
            while time.monotonic() < end:
                pass
        elif isinstance(request, tuple) and request[0] == "exit":
            os._exit(request[1])
        conn.send(request)
