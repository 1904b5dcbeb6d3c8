"""reward_fns._procserver: start, health check, restart after a crash, kill at the budget, shutdown at exit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reward_fns._procserver import BudgetExceeded, ProcServer, WorkerLost, kill_group
from tests._proctable import descendants

REPO = Path(__file__).resolve().parent.parent
ECHO = "reward_fns._procserver:echo_worker"
SLACK = 1.0  # seconds a kill may come after the budget on a loaded machine


def _alive(pid: int) -> bool:
    """The process exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return False
    return stat[stat.rindex(b")") + 2 : stat.rindex(b")") + 3] != b"Z"


def _wait_gone(pid: int, seconds: float = 5.0) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if not _alive(pid):
            return True
        time.sleep(0.01)
    return False


@pytest.fixture
def server():
    s = ProcServer.for_workers("test server", ECHO)
    yield s
    s.close()


def test_starts_lazily_and_answers(server):
    assert server.current() is None and not server.alive() and server.starts == 0
    process = server.ensure()
    assert server.alive() and server.starts == 1 and process.info == {"workers": ECHO}
    assert server.ensure() is process  # a healthy server is not started again
    worker = server.fork_worker()
    assert worker.pid != process.pid and worker.pid in descendants(process.pid)
    assert worker.call(("x", [1, 2]), budget_s=10) == ("x", [1, 2])
    worker.kill()


def test_a_server_that_cannot_start_names_itself():
    bad = ProcServer.for_workers("broken server", "no_such_module:no_such_worker")
    with pytest.raises(RuntimeError, match="broken server"):
        bad.ensure()
    assert not bad.alive()
    bad.close()


def test_restart_after_the_server_is_killed(server):
    first = server.ensure()
    worker = server.fork_worker()
    os.kill(first.pid, signal.SIGKILL)
    assert _wait_gone(first.pid)
    assert not server.alive()  # the health check sees the crash
    worker2 = server.fork_worker()  # the next call starts a fresh server
    assert server.alive() and server.starts == 2 and server.current().pid != first.pid
    assert worker2.call("again", budget_s=10) == "again"
    assert _wait_gone(worker.pid), "a worker must die with its server"
    worker2.kill()


def test_restart_when_the_server_dies_between_checks(server):
    """A crash that the health check has not seen yet: the request fails, the handle restarts and retries once."""
    first = server.ensure()
    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait()
    first.proc.returncode = None  # make the health check miss it: the request itself must notice
    worker = server.fork_worker()
    assert server.current().pid != first.pid
    assert worker.call(1, budget_s=10) == 1
    worker.kill()


@pytest.mark.parametrize("kind", ["sleep", "spin"])
def test_a_job_is_killed_at_its_budget(server, kind):
    worker = server.fork_worker()
    budget = 0.5
    start = time.monotonic()
    with pytest.raises(BudgetExceeded):
        worker.call((kind, 30), budget_s=budget)
    elapsed = time.monotonic() - start
    assert budget <= elapsed < budget + SLACK
    assert _wait_gone(worker.pid, 2.0), "the worker must be killed, not left running"
    fresh = server.fork_worker()  # the server itself is unharmed
    assert fresh.call("ok", budget_s=10) == "ok"
    fresh.kill()


def test_a_worker_that_dies_is_reported(server):
    worker = server.fork_worker()
    with pytest.raises(WorkerLost) as info:
        worker.call(("exit", 3), budget_s=10)
    assert not isinstance(info.value, BudgetExceeded)


def test_close_stops_the_server_and_its_workers(server):
    process = server.ensure()
    worker = server.fork_worker()
    server.close()
    assert _wait_gone(process.pid) and _wait_gone(worker.pid)
    with pytest.raises(RuntimeError, match="closed"):
        server.ensure()


def test_kill_group_kills_the_whole_group():
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); time.sleep(60)",
        ],
        start_new_session=True,
    )
    try:
        end = time.monotonic() + 10
        while not descendants(proc.pid) and time.monotonic() < end:
            time.sleep(0.02)
        (child,) = descendants(proc.pid)
        kill_group(proc.pid)
        proc.wait(timeout=5)
        assert _wait_gone(child)
    finally:
        proc.kill()
        proc.wait()


_AT_EXIT = """
import sys
from reward_fns._procserver import ProcServer
s = ProcServer.for_workers("exit test", "reward_fns._procserver:echo_worker")
w = s.fork_worker()
assert w.call("hi", budget_s=10) == "hi"
print(s.current().pid, w.pid, flush=True)
{end}
"""


@pytest.mark.parametrize("end", ["", "sys.exit(0)", "raise SystemExit(2)"])
def test_shutdown_at_exit_leaves_no_process(end):
    out = subprocess.run(
        [sys.executable, "-c", _AT_EXIT.format(end=end)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    server_pid, worker_pid = map(int, out.stdout.split())
    assert _wait_gone(server_pid, 5.0), "the server outlived its caller"
    assert _wait_gone(worker_pid, 5.0), "a worker outlived its caller"


def test_a_forked_caller_starts_its_own_server_and_leaves_the_parents_alone(server):
    parent = server.ensure()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        code = 1
        try:
            worker = server.fork_worker()
            ok = worker.call("child", budget_s=10) == "child" and server.current().pid != parent.pid
            os.write(w, str(server.current().pid).encode())
            code = 0 if ok else 1
        finally:
            os._exit(code)  # no atexit: the test checks that the parent's server survived the fork alone
    os.close(w)
    child_server = int(os.read(r, 64) or b"0")
    os.close(r)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0 and child_server not in (0, parent.pid)
    assert server.alive() and server.current() is parent
    kill_group(child_server)
