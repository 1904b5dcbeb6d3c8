"""reward_fns.code.Sandbox: API, limits, bad input, isolation between jobs, lifecycle, threads and asyncio.

Everything runs through the real fork server (a separate interpreter) and real child processes.
The hostile-program corpus lives in test_sandbox_hostile.py.
"""

from __future__ import annotations

import asyncio
import json
import marshal
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import weakref
from pathlib import Path

import pytest
from _proctable import descendants, ns_pid

from reward_fns.code import ExecResult, Sandbox, configure_default_sandbox, default_sandbox
from reward_fns.code import _forkserver as fs
from reward_fns.code import sandbox as sandbox_mod

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def sb():
    with Sandbox(workers=2, timeout=2.0, memory_mb=256, max_output_bytes=64 << 10) as box:
        yield box


def _job_processes(box: Sandbox) -> list[int]:
    """Host pids under the fork server that belong to a job: all but the zygote and the idle warm children."""
    server = box.server_pid
    warm = set(box.stats()["warm_pids"])
    out = []
    for pid in descendants(server)[1:]:  # [0] is the zygote
        try:
            if ns_pid(pid) not in warm:
                out.append(pid)
        except OSError:
            pass
    return out


# ----------------------------------------------------------------------------------------------- basics
def test_stdout_stderr_exception_and_traceback(sb):
    r = sb.run("import sys\nprint('out')\nprint('err', file=sys.stderr)\ndef g():\n    raise ValueError('boom')\ng()")
    assert not r.ok and r.reason == "exception"
    assert (r.exc_type, r.exc_message) == ("ValueError", "boom")
    assert r.stdout == "out\n"
    assert r.stderr.startswith("err\nTraceback (most recent call last):")
    assert "line 5, in g" in r.stderr and "raise ValueError('boom')" in r.stderr  # source lines are shown
    assert r.returncode == 1 and not r.timed_out and r.wall_time > 0


def test_stdin_str_bytes_and_fd0(sb):
    code = "import sys\na = input()\nrest = sys.stdin.read()\nprint(a.upper(), len(rest))"
    assert sb.run(code, "abc\nxyz\n").stdout == "ABC 4\n"
    assert sb.run("print(open(0).read().split())", b"1 2\n3").stdout == "['1', '2', '3']\n"
    assert sb.run("import sys; print(sys.stdin.buffer.read())", b"\xff\x00").stdout == "b'\\xff\\x00'\n"
    big = "x" * 300_000  # larger than a pipe buffer
    assert sb.run("print(len(input()))", big).stdout == "300000\n"
    r = sb.run("input()")
    assert r.exc_type == "EOFError"


def test_call_returns_repr_of_value(sb):
    r = sb.run("def f(a, b=1, *, c=0):\n    return [a, b, c, {a}]", call="'x', 2, c=(1.5, None)")
    assert r.ok and r.value == "['x', 2, (1.5, None), {'x'}]"
    r = sb.run("def g(x):\n    return x", call="1")
    assert not r.ok and r.reason == "exception" and r.exc_type == "NameError" and r.value is None
    r = sb.run("f = 3", call="1")
    assert r.exc_type == "NameError"
    r = sb.run("def f(a):\n    return a", call="[1, 2]", func="f")
    assert r.value == "[1, 2]" and r.stdout == ""


def test_sys_exit_semantics(sb):
    assert sb.run("print(1)\nraise SystemExit").ok  # like `python -c`: exit status 0 is success
    assert sb.run("import sys; sys.exit(0)").ok
    r = sb.run("import sys; sys.exit(3)")
    assert (r.ok, r.reason, r.returncode) == (False, "exit", 3)
    r = sb.run("import sys; sys.exit('bye')")
    assert (r.reason, r.returncode, r.stderr) == ("exit", 1, "bye\n")
    r = sb.run("import sys; sys.exit(0)\ndef f(a): return a", call="1")  # f never returned
    assert r.reason == "exit" and r.value is None
    r = sb.run("exit()")  # site's exit() exists although the server runs without site
    assert r.ok


def test_run_many_order_and_mixed_job_forms(sb):
    jobs = [f"print({i})" for i in range(12)] + [("print(input())", "z"), {"code": "def f(a): return a", "call": "9"}]
    results = sb.run_many(jobs)
    assert [r.stdout for r in results[:12]] == [f"{i}\n" for i in range(12)]
    assert results[12].stdout == "z\n" and results[13].value == "9"


def test_queued_jobs_wait_on_the_host_not_in_the_server():
    """Every fork copies the server's heap, so a big batch must not pile up in it (nor in each job's memory)."""
    with Sandbox(workers=2, timeout=5).start() as box:
        zygote = descendants(box.server_pid)[0]

        def rss_kb() -> int:
            return int(next(x for x in open(f"/proc/{zygote}/status") if x.startswith("VmRSS")).split()[1])

        box.run_many(["pass"] * 20)
        before = rss_kb()
        padding = "#" + "x" * 60_000 + "\n"  # 60 kB per job, 24 MB for the batch
        results = box.run_many([padding + f"print({i})" for i in range(400)])
        assert [r.stdout for r in results] == [f"{i}\n" for i in range(400)]
        assert rss_kb() - before < 4_000, (before, rss_kb())  # a window of 4 jobs, not 400


def test_parallel_workers_overlap():
    with Sandbox(workers=2, timeout=5).start() as box:
        t = time.monotonic()
        results = box.run_many(["import time; time.sleep(0.6)"] * 4)
        elapsed = time.monotonic() - t
    assert all(r.ok for r in results)
    assert elapsed < 2.0, elapsed  # 4 x 0.6 s on 2 workers: ~1.2 s, not 2.4 s


# -------------------------------------------------------------------------------------------------- limits
def test_wall_timeout_and_per_job_override(sb):
    r = sb.run("import time; time.sleep(30)", timeout=0.5)
    assert r.reason == "timeout" and r.timed_out and not r.ok and r.returncode == -signal.SIGKILL
    assert 0.5 <= r.wall_time < 1.5
    assert sb.run("import time; time.sleep(0.3); print('done')", timeout=3).ok


def test_cpu_limit():
    with Sandbox(workers=1, timeout=10, cpu_seconds=1) as box:
        r = box.run("while True: pass")
    assert r.reason == "cpu_limit" and r.timed_out  # RLIMIT_CPU fired, well before the 10 s wall clock


def test_memory_limit_is_reported(sb):
    r = sb.run("x = bytearray(1 << 30)")
    assert r.reason == "memory" and r.memory_exceeded and r.exc_type == "MemoryError"
    assert sb.run("x = bytearray(50 << 20); print(len(x))").ok  # well under 256 MB


def test_output_limit_kills_and_truncates(sb):
    r = sb.run("while True:\n    print('y' * 999)")
    assert r.reason == "output_limit" and r.truncated and len(r.stdout.encode()) == 64 << 10
    r = sb.run("print('z' * 10000)")
    assert r.ok and not r.truncated


def test_file_size_and_open_files_limits():
    with Sandbox(workers=1, timeout=3, max_file_bytes=1 << 20, max_open_files=32) as box:
        r = box.run("open('big', 'wb').write(b'0' * (2 << 20))")
        assert r.exc_type == "OSError" and "File too large" in r.exc_message
        r = box.run("fs = [open('f%d' % i, 'w') for i in range(100)]")
        assert r.exc_type == "OSError" and "Too many open files" in r.exc_message
        assert box.run("open('ok', 'wb').write(b'1' * 1000); print(open('ok').read(3))").stdout == "111\n"


def test_process_limit_holds(sb):
    code = "import os\nn = 0\ntry:\n    while True:\n        if os.fork() == 0:\n            import time; time.sleep(5)\n        n += 1\nexcept OSError:\n    print(n)"
    with Sandbox(workers=1, timeout=3, max_processes=8) as box:
        iso = box.isolation
        r = box.run(code)
    if iso["nproc"] == "per-job uid":
        assert r.ok and r.stdout == "7\n", r  # 8 processes including the job itself
    else:
        assert r.ok and int(r.stdout) < 8 * 2 + 64, r  # shared / approximate limit


# -------------------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "code, reason, needle",
    [
        ("def f(:\n  pass", "syntax_error", "SyntaxError"),
        (b"print('\xff\xfe')", "bad_input", "not valid UTF-8"),
        ("print('\ud800')", "bad_input", "not encodable as UTF-8"),
        ("print(1)\x00", "bad_input", "NUL byte"),
        ("x = 1\n" * 2_000_000, "bad_input", "max_code_bytes"),  # 12 MB
        (42, "bad_input", "must be str or bytes"),
        ("(" * 300 + ")" * 300, "syntax_error", "too many nested parentheses"),
    ],
)
def test_bad_code_is_a_clean_failure(sb, code, reason, needle):
    r = sb.run(code)
    assert isinstance(r, ExecResult) and not r.ok and r.reason == reason
    assert needle in r.exc_message or needle in r.exc_type


@pytest.mark.parametrize(
    "call, needle",
    [
        ("list(range(3))", "not a Python literal"),
        ("__import__('os').system('id')", "not a Python literal"),
        ("*[1, 2]", "starred"),
        ("**{'a': 1}", "** arguments"),
        ("1) + (2", "single call"),
        ("1, ", None),  # a trailing comma is fine
        ("'a' 'b'", None),  # implicit concatenation is a literal
        ("10**10**10", "not a Python literal"),
        ("1\x00", "NUL byte"),
        ("[" * 500 + "]" * 500, "do not parse"),
    ],
)
def test_non_literal_call_arguments_are_refused_before_running(sb, call, needle):
    r = sb.run("def f(*a, **k):\n    return len(a)", call=call)
    if needle is None:
        assert r.ok, r
    else:
        assert r.reason == "bad_input" and needle in r.exc_message, r
        assert r.wall_time == 0.0  # never reached the server


def test_unrepresentable_values(sb):
    r = sb.run(
        "class X:\n    def __repr__(self):\n        raise RuntimeError('no repr')\ndef f(a):\n    return X()", call="1"
    )
    assert r.reason == "unrepresentable" and r.exc_type == "RuntimeError" and r.value is None
    r = sb.run("def f(a):\n    return 'x' * (2 << 20)", call="1")  # repr larger than max_output_bytes
    assert r.reason == "unrepresentable" and r.value is None
    r = sb.run("def f(a):\n    return (i for i in a)", call="[1]")
    assert r.ok and r.value.startswith("<generator object")  # a repr, but not a literal: azr rejects it


def test_invalid_configuration_names_the_argument():
    for kwargs, name in [
        ({"workers": 0}, "workers"),
        ({"workers": 2.5}, "workers"),
        ({"timeout": -1}, "timeout"),
        ({"memory_mb": "lots"}, "memory_mb"),
        ({"cpu_seconds": 0.5}, "cpu_seconds"),
        ({"isolation": "docker"}, "isolation"),
        ({"hash_seed": -2}, "hash_seed"),
    ]:
        with pytest.raises(ValueError, match=name):
            Sandbox(**kwargs)
    with pytest.raises(ValueError, match="max_output_bytes"):
        configure_default_sandbox(max_output_bytes=3)


# --------------------------------------------------------------------------------------------- isolation
def test_each_job_starts_from_a_clean_state(sb):
    poison = (
        "import builtins, json, math, os, sys, re\n"
        "builtins.print = None; builtins.len = lambda x: 0; json.dumps = None; math.pi = 3\n"
        "sys.path.insert(0, '/evil'); re.compile = None; sys.setrecursionlimit(50)\n"
        "os.chdir('/'); os.environ['POISON'] = '1'; open('/proc/self/cwd/../leak', 'w')\n"
    )
    sb.run(poison)
    check = (
        "import builtins, json, math, os, sys, re\n"
        "print(len('abc'), json.dumps([1]), math.pi, '/evil' in sys.path, re.compile('a').pattern,\n"
        "      sys.getrecursionlimit(), os.environ.get('POISON'), os.listdir('.'), os.getcwd().startswith('/tmp'))"
    )
    r = sb.run(check)
    assert r.stdout == f"3 [1] {3.141592653589793} False a 1000 None [] True\n", r


_SCAN = """
import gc, sys
needle = ''.join(['OTHER', '-JOB-SECRET'])  # built at run time: the program text itself does not contain it
bneedle = needle.encode()
planted = [needle + '!'] if PLANT else []
hits = 0
for o in gc.get_objects():
    for r in gc.get_referents(o):
        if r is needle or r is bneedle:
            continue
        if (isinstance(r, str) and needle in r) or (isinstance(r, (bytes, bytearray)) and bneedle in r):
            hits += 1
kinds = sorted({type(o).__name__ for o in gc.get_objects()} & {'Server', '_Job', '_ServerState'})
print(hits > 0, kinds, sys.exc_info()[0])
"""


def test_jobs_cannot_reach_other_jobs_state_in_memory(sb):
    """A job is a fork of the server, which holds other jobs' code and output: none of it is reachable."""
    other = sb.submit("import sys, time\nprint('OTHER' + '-JOB-SECRET')\nsys.stdout.flush()\ntime.sleep(1.0)")
    time.sleep(0.4)
    r = sb.run("PLANT = False\n" + _SCAN)
    control = sb.run("PLANT = True\n" + _SCAN)  # the scan does find a reachable secret
    assert other.result().stdout == "OTHER-JOB-SECRET\n"
    assert control.stdout.startswith("True"), control
    assert r.stdout == "False ['_ServerState'] None\n", r  # only the limits/stdio holder, which has no job data


def test_jobs_cannot_see_each_others_files(sb):
    writer = "import os, time\nopen('secret.txt', 'w').write('s3cret')\nprint(os.getcwd())\ntime.sleep(1.0)"
    fut = sb.submit(writer)
    time.sleep(0.4)
    reader = (
        "import os\nfound = []\nfor d in ['/tmp/sandbox', '/tmp']:\n"
        "    try:\n        found += os.listdir(d)\n    except OSError as e:\n        found.append(type(e).__name__)\n"
        "print(found)"
    )
    r = sb.run(reader)
    w = fut.result()
    assert w.ok
    assert "secret.txt" not in r.stdout
    if sb.isolation["uid_drop"]:  # a stranger uid cannot even read the directory it learnt the name of
        peek = sb.run(f"print(open({w.stdout.strip() + '/secret.txt'!r}).read())")
        assert peek.exc_type in ("PermissionError", "FileNotFoundError"), peek


def test_work_directory_is_removed_afterwards(sb):
    r = sb.run(
        "import os\nos.makedirs('a/b/c')\nopen('a/b/c/f', 'w').write('x')\nos.chmod('a/b', 0)\nprint(os.getcwd())"
    )
    assert r.ok
    cwd = r.stdout.strip()
    probe = sb.run(f"import os\nprint(os.path.exists({cwd!r}))")
    assert probe.stdout == "False\n"


def test_hash_seed_is_fixed_across_servers():
    code = "print(list({'apple', 'banana', 'cherry', 'durian', 'elder'}))"
    outs = []
    for _ in range(2):
        with Sandbox(workers=1, timeout=3) as box:
            outs.append(box.run(code).stdout)
    assert outs[0] == outs[1]


def test_random_is_not_shared_by_forked_jobs(sb):
    results = sb.run_many(["import random; print(random.random())"] * 3)
    assert len({r.stdout for r in results}) == 3


def test_preloaded_modules_exclude_random():
    code = f"import sys; sys.path.insert(0, {str(REPO / 'reward_fns' / 'code')!r}); import _forkserver; _forkserver._preload(); print('random' in sys.modules)"
    out = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, check=True).stdout
    assert out == "False\n"


def test_environment_is_empty(sb):
    r = sb.run("import os; print(dict(os.environ))")
    assert r.stdout == "{}\n"


# ---------------------------------------------------------------------------------------------- lifecycle
def test_import_is_cheap_and_starts_nothing():
    code = (
        "import os, sys\n"
        "import reward_fns\n"
        "assert 'reward_fns.code' not in sys.modules\n"
        "from reward_fns.code import Sandbox\n"
        "import reward_fns.code.azr\n"
        "sb = Sandbox()\n"
        "kids = open(f'/proc/self/task/{os.getpid()}/children').read().split()\n"
        "heavy = [m for m in ('torch', 'verl', 'ray', 'numpy', 'asyncio') if m in sys.modules]\n"
        "print(len(kids), heavy, sb.server_pid)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True).stdout
    assert out == "0 [] None\n"


def test_close_leaves_no_process_and_fails_pending_jobs():
    box = Sandbox(workers=1, timeout=30)
    futs = [box.submit("import time; time.sleep(30)") for _ in range(3)]
    time.sleep(0.5)
    pid = box.server_pid
    assert pid is not None and len(descendants(pid)) >= 2  # P -> Z -> job
    t = time.monotonic()
    box.close()
    results = [f.result(timeout=10) for f in futs]
    assert time.monotonic() - t < 6
    assert all(r.reason == "closed" and not r.ok for r in results)
    assert not Path(f"/proc/{pid}").exists() or descendants(pid) == []
    assert box.run("print(1)").reason == "closed"
    box.close()  # idempotent


def test_context_manager_and_garbage_collection_stop_the_server():
    with Sandbox(workers=1) as box:
        box.run("print(1)")
        pid = box.server_pid
    assert box.closed and box.server_pid is None
    box2 = Sandbox(workers=1).start()
    pid2 = box2.server_pid
    del box2
    import gc

    gc.collect()
    deadline = time.monotonic() + 5
    while Path(f"/proc/{pid2}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not Path(f"/proc/{pid}").exists() and not Path(f"/proc/{pid2}").exists()


@pytest.mark.parametrize("target", ["server", "zygote"])
def test_crashed_server_restarts_transparently(target):
    with Sandbox(workers=1, timeout=10) as box:
        assert box.run("print(1)").ok
        old = box.server_pid
        slow = box.submit("import time; time.sleep(1); print('survived')")
        time.sleep(0.3)
        victim = old if target == "server" else descendants(old)[0]
        os.kill(victim, signal.SIGKILL)
        r = slow.result(timeout=20)  # re-sent once to the new server
        assert r.ok and r.stdout == "survived\n", r
        assert box.server_pid not in (None, old)
        assert box.run("print(2)").stdout == "2\n"
        deadline = time.monotonic() + 5
        while Path(f"/proc/{old}").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not Path(f"/proc/{old}").exists() or not descendants(old)


def test_threads_share_one_sandbox_safely(sb):
    results: dict[int, ExecResult] = {}

    def worker(i: int) -> None:
        results[i] = sb.run("def f(a):\n    return a * a", call=str(i))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert {i: r.value for i, r in results.items()} == {i: str(i * i) for i in range(24)}


def test_asyncio_arun_does_not_block_the_loop(sb):
    async def main():
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                await asyncio.sleep(0.05)
                ticks += 1

        t = asyncio.create_task(ticker())
        outs = await asyncio.gather(*(sb.arun(f"import time; time.sleep(0.3); print({i})") for i in range(4)))
        t.cancel()
        return outs, ticks

    outs, ticks = asyncio.run(main())
    assert [r.stdout for r in outs] == [f"{i}\n" for i in range(4)]
    assert ticks >= 5  # the loop kept running while jobs were in flight


def test_default_sandbox_is_shared_per_process_and_configurable():
    try:
        configure_default_sandbox(timeout=1.5, workers=1)
        a, b = default_sandbox(), default_sandbox()
        assert a is b and a.timeout == 1.5
        assert a.run("print(7)").stdout == "7\n"
        configure_default_sandbox(timeout=3)
        assert a.closed and default_sandbox() is not a and default_sandbox().timeout == 3.0
    finally:
        configure_default_sandbox()


def test_forked_host_gets_its_own_server(sb):
    sb.run("print(0)")
    parent_server = sb.server_pid
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        try:
            res = sb.run("print('child')")
            os.write(w, json.dumps([res.stdout, sb.server_pid]).encode())
        finally:
            os._exit(0)
    os.close(w)
    data = b""
    while chunk := os.read(r, 4096):
        data += chunk
    os.close(r)
    os.waitpid(pid, 0)
    out, child_server = json.loads(data)
    assert out == "child\n" and child_server != parent_server
    assert sb.run("print(1)").stdout == "1\n"


def test_preload_setting():
    with Sandbox(workers=1, preload=["json", "no_such_module_xyz"]) as box:
        assert box.isolation["preload_failed"] == ["no_such_module_xyz"]
        assert box.run("import sys; print('json' in sys.modules, 'typing' in sys.modules)").stdout == "True False\n"
    with pytest.raises(ValueError, match="preload"):
        Sandbox(preload="json")
    with pytest.raises(ValueError, match="preload"):
        Sandbox(preload=["os; rm -rf /"])


def test_deep_recursion_traceback_is_compact(sb):
    r = sb.run("def r(n):\n    return r(n + 1)\nr(0)")
    assert r.exc_type == "RecursionError"
    assert "[Previous line repeated" in r.stderr and len(r.stderr) < 2000
    assert r.stderr.endswith("RecursionError: maximum recursion depth exceeded\n")


def test_legacy_kernel_paths():
    """Without pidfd (kernel < 5.3) exits arrive by SIGCHLD; without /proc/<pid>/task/<tid>/children strays are found
    by scanning /proc. Both paths must still time out, reap and clean up."""
    box = Sandbox(workers=2, timeout=1.0)
    # the server's settings are packed when the Sandbox is made: set the test switches, then make its state again
    box._config.update(test_no_pidfd=True, test_no_children_file=True)
    box._finalizer.detach()
    box._state = sandbox_mod._State(box._config, box._hash_seed)
    box._finalizer = weakref.finalize(box, sandbox_mod._close_state, box._state)
    r, w = os.pipe()  # what the server will be sent as its configuration
    os.write(w, box._state.procserver.hello)
    os.close(w)
    sent = fs.read_msg(r)
    os.close(r)
    assert sent["test_no_pidfd"] is True and sent["test_no_children_file"] is True, sent
    with box:
        assert box.run("print(1)").stdout == "1\n"
        assert box.run("while True: pass").timed_out
        # the parent exits only once the grandchild has left the job's process group, so it must become a stray
        escape = (
            "import os, time\nr, w = os.pipe()\nif os.fork() == 0:\n    os.setsid()\n    os.write(w, b'x')\n"
            "    time.sleep(600)\nos.read(r, 1)\nos._exit(0)"
        )
        assert box.run(escape).reason == "exit"
        assert [r.stdout for r in box.run_many([f"print({i})" for i in range(6)])] == [f"{i}\n" for i in range(6)]
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and _job_processes(box):
            time.sleep(0.05)
        assert _job_processes(box) == []  # only the zygote and its idle warm children: the sleeper was killed
        assert box.stats()["strays_killed"] >= 1


# -------------------------------------------------------------------------------- reduced isolation mode
def test_rlimits_mode_blocks_network_with_the_audit_hook():
    # as root with a stdlib that other users cannot read (e.g. under /root), jobs would run as root: opt in
    with Sandbox(workers=1, timeout=3, isolation="rlimits", allow_unsafe_host_access=True) as box:
        assert box.network_mode == "audit-hook"
        for code in [
            "import socket; socket.socket()",
            "import subprocess; subprocess.run(['true'])",
            "import os; os.system('true')",
            "import ctypes; ctypes.CDLL(None)",
        ]:
            r = box.run(code)
            assert r.exc_type in ("PermissionError", "ImportError", "ModuleNotFoundError"), (code, r)
        assert box.run("import json, fractions; print(json.dumps(str(fractions.Fraction(1, 3))))").ok
        r = box.run("import os\nwhile True: os.fork()", timeout=3)
        assert not r.ok
        if box.isolation["nproc"].startswith("counted"):  # root without a per-job uid: RLIMIT_NPROC cannot hold
            assert r.reason == "process_limit" and r.wall_time < 1.5, r
        ok = "import os, time\nfor _ in range(3):\n    if os.fork() == 0:\n        time.sleep(0.3)\n        os._exit(0)\n"
        assert box.run(ok + "for _ in range(3):\n    os.wait()\nprint('ok')").stdout == "ok\n"


def _stranger_python() -> str | None:
    """An interpreter a non-root uid can run (the venv's usually lives under /root, mode 0700)."""
    for exe in (sys.executable, shutil.which("python3"), "/usr/bin/python3", "/usr/local/bin/python3"):
        if not exe or not os.path.exists(exe):
            continue
        path = os.path.realpath(exe)
        cur, ok = "/", True
        for part in path.split("/")[1:]:
            if not os.stat(cur).st_mode & 0o001:
                ok = False
                break
            cur = os.path.join(cur, part)
        if ok and os.stat(path).st_mode & 0o001:
            ver = subprocess.run(
                [path, "-c", "import sys; print(sys.version_info >= (3, 10))"], capture_output=True, text=True
            )
            if ver.stdout.strip() == "True":
                return path
    return None


_STRANGER_PROBE = """
import json, sys
sys.path.insert(0, REPO)
from reward_fns.code import Sandbox
probes = {
    "hello": "print(6 * 7)",
    "write": "open('/tmp/x', 'w')",
    "imp": "import fractions",
    "bomb": "import os\\nwhile True: os.fork()",
    "sock": "import socket; socket.create_connection(('10.0.0.1', 80), 1)",
}
with Sandbox(workers=2, timeout=1.5) as sb:
    out = {"iso": sb.isolation}
    for name, code in probes.items():
        r = sb.run(code)
        out[name] = [r.ok, r.stdout, r.exc_type]
# no namespaces: approximate process limit; jobs share the caller's uid, so this needs the explicit opt-in
with Sandbox(workers=1, timeout=1.5, isolation="rlimits", allow_unsafe_host_access=True) as sb:
    out["rlimits"] = {"iso": sb.isolation}
    for name in ("hello", "bomb", "sock"):
        r = sb.run(probes[name])
        out["rlimits"][name] = [r.ok, r.stdout, r.exc_type]
print(json.dumps(out))
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch to an unprivileged uid")
def test_unprivileged_user_gets_a_working_sandbox():
    """Runs the sandbox as uid 65534 (no root, e.g. a Slurm user): user namespace where allowed, else rlimits."""
    exe = _stranger_python()
    if exe is None or not all(os.stat(p).st_mode & 0o005 == 0o005 for p in (REPO, REPO / "reward_fns")):
        pytest.skip("no interpreter or checkout reachable by an unprivileged uid")
    code = _STRANGER_PROBE.replace("REPO", repr(str(REPO)), 1)
    proc = subprocess.run(
        [exe, "-c", code], capture_output=True, text=True, user=65534, group=65534, cwd="/", env={}, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["iso"]["root"] is False and out["iso"]["uid_drop"] is False
    assert out["hello"] == [True, "42\n", ""] and out["imp"][0] is True
    assert out["bomb"][0] is False and out["sock"][0] is False
    if out["iso"]["mount"]:
        assert out["write"] == [False, "", "OSError"]
    plain = out["rlimits"]
    assert plain["iso"]["network_mode"] == "audit-hook" and plain["iso"]["nproc"].startswith("approximate")
    assert plain["hello"] == [True, "42\n", ""] and plain["bomb"][0] is False
    assert plain["sock"] == [False, "", "PermissionError"]


def test_protocol_round_trip():
    r, w = os.pipe()
    spec = marshal.dumps((b"x", b"", ((1, [2]), {"k": None}), "f"))
    fs.send_msg(w, ("run", 1, 1.5, spec))
    assert fs.read_msg(r) == ("run", 1, 1.5, spec)
    os.close(w)
    assert fs.read_msg(r) is None
    os.close(r)
