"""The hostile-program corpus: every program fails cleanly, in time, and leaves nothing behind.

Each program below is what a model could write (by accident or as a reward hack). Every one must come back as
a failed ExecResult within its timeout + 1 s, while benign canary jobs running beside it succeed, the host
process and its files are untouched, and no process of any job is left afterwards (checked on the process
table). The sandbox's isolation mode (network namespace or audit hook, ...) is printed in the test output.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from pathlib import Path

import pytest
from _proctable import descendants, ns_pid

from reward_fns.code import Sandbox
from reward_fns.code import _forkserver as fs

TIMEOUT = 1.5
SECRET_NAME = "SANDBOX_TEST_SECRET"
SECRET = "hunter2-" + os.urandom(4).hex()

# Corpus entries stopped only by one isolation feature name it here; where the kernel did not grant it, the entry
# is not held to failing (the report line lists it). uid_drop: a fresh uid per job (root); readonly_root: the
# private read-only mount view; pid: the private pid namespace.
NEEDS = {
    "write_parent_dir": {"readonly_root"},  # ../.. is the world-writable /tmp without the private view
    "overwrite_host_file": {"readonly_root"},  # the canary is world-writable on purpose
    "read_private_files": {"uid_drop"},
    "become_root": {"uid_drop"},
    "scan_proc_environ": {"uid_drop", "pid"},  # either one hides the host's environment
    "read_server_memory": {"uid_drop", "pid"},
}

# name -> (program, the failure reasons that are acceptable). {canary} is a host file the job must not touch.
CORPUS: dict[str, tuple[str, set[str]]] = {
    # --- processes
    "fork_bomb": ("import os\nwhile True:\n    os.fork()", {"exception", "timeout", "signal"}),
    "fork_bomb_setsid": (
        "import os, time\nwhile True:\n    try:\n        if os.fork() == 0:\n            os.setsid()\n"
        "    except OSError:\n        time.sleep(0.001)",
        {"timeout"},
    ),
    "daemonize_and_exit": (
        "import os, time\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n        time.sleep(600)\n"
        "    os._exit(0)\nos._exit(0)",
        {"exit"},
    ),
    "zombie_children": (
        "import os, time\nfor _ in range(10):\n    if os.fork() == 0:\n        time.sleep(600)\nraise SystemExit(2)",
        {"exit"},
    ),
    "stop_self": ("import os, signal\nos.kill(os.getpid(), signal.SIGSTOP)", {"timeout"}),
    # --- memory, CPU, time
    "memory_bomb": ("x = []\nwhile True:\n    x.append(bytearray(10 ** 7))", {"memory"}),
    "huge_allocation": ("x = 'a' * (10 ** 10)", {"memory"}),
    "infinite_loop": ("while True:\n    pass", {"timeout"}),
    "sleep_forever": ("import time\ntime.sleep(10 ** 6)", {"timeout"}),
    "c_level_integer_power": ("x = 10 ** 10 ** 10", {"timeout", "memory"}),
    "c_level_regex_backtracking": ("import re\nre.match(r'(a+)+$', 'a' * 64 + 'b')", {"timeout"}),
    "deep_recursion": ("def r(n):\n    return r(n + 1)\nr(0)", {"exception"}),
    "deep_recursion_unlimited": (
        "import sys\nsys.setrecursionlimit(10 ** 8)\nx = []\nfor _ in range(10 ** 6):\n    x = [x]\nrepr(x)",
        {"signal", "memory", "timeout", "exception"},
    ),
    # --- files
    "write_outside_cwd": ("open('/etc/sandbox-escape', 'w').write('pwned')", {"exception"}),
    "write_parent_dir": ("open('../../escape.txt', 'w').write('pwned')", {"exception"}),
    "overwrite_host_file": ("open({canary!r}, 'w').write('pwned')", {"exception"}),
    "delete_files": ("import os\nos.remove({canary!r})", {"exception"}),
    "delete_tree": ("import shutil\nshutil.rmtree('/usr/lib')", {"exception"}),
    "read_private_files": ("print(open('/etc/shadow').read())", {"exception"}),
    "fill_disk": (
        "i = 0\nwhile True:\n    open(f'f{i}', 'wb').write(b'0' * 2 ** 20)\n    i += 1",
        {"exception", "timeout"},
    ),
    "file_size_limit": ("open('big', 'wb').write(b'0' * (64 << 20))", {"exception", "memory"}),
    "fd_exhaustion": ("import os\nfds = [os.pipe() for _ in range(10 ** 5)]", {"exception"}),
    # --- environment, other processes
    "read_parent_env": ("import os\nprint(os.environ[{secret!r}])", {"exception"}),
    "scan_proc_environ": (
        "import os\nfor pid in os.listdir('/proc'):\n    if pid.isdigit():\n        try:\n"
        "            data = open(f'/proc/{pid}/environ', 'rb').read()\n        except OSError:\n            continue\n"
        "        if {secret!r}.encode() in data:\n            print('FOUND', data)\n            break\n"
        "else:\n    raise LookupError('secret not found')",
        {"exception"},
    ),
    "read_server_memory": ("print(open('/proc/1/mem', 'rb').read(16))", {"exception"}),
    "signal_parent_group": (
        "import os, signal\nos.killpg(os.getpgid(os.getppid()), signal.SIGKILL)",
        {"signal", "exception"},
    ),
    "signal_parent": (
        "import os, signal\nos.kill(os.getppid(), signal.SIGTERM)\nos.kill(1, signal.SIGKILL)",
        {"exception"},
    ),
    # kill(-1) reports success when every target refused (EPERM); the attacker then checks its parent is gone
    "kill_everything": ("import os, signal\nos.kill(-1, signal.SIGKILL)\nos.kill(os.getppid(), 0)", {"exception"}),
    "become_root": ("import os\nos.setuid(0)", {"exception"}),
    "remount_rw": (
        "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n"
        "if libc.mount(None, b'/', None, ctypes.c_ulong(32 | 4096), None) != 0:\n"
        "    raise OSError(ctypes.get_errno(), 'remount failed')",
        {"exception"},
    ),
    # --- network
    "socket_connect": ("import socket\nsocket.create_connection(('1.1.1.1', 53), timeout=1)", {"exception"}),
    "socket_loopback_server": (
        "import socket\ns = socket.socket()\ns.bind(('127.0.0.1', 0))\ns.listen()\n"
        "c = socket.create_connection(s.getsockname(), timeout=1)",
        {"exception"},
    ),
    "dns_lookup": ("import socket\nsocket.getaddrinfo('example.com', 80)", {"exception"}),
    # --- output
    "huge_stdout": ("while True:\n    print('x' * 1000)", {"output_limit"}),
    "huge_stderr": ("import sys\nsys.stderr.write('e' * (10 ** 8))", {"output_limit"}),
    # --- exits and tampering with the harness
    "sys_exit": ("import sys\nsys.exit(3)", {"exit"}),
    "os_exit": ("import os\nprint('bye')\nos._exit(0)", {"exit"}),
    "close_result_channel": (
        "import os\nfor fd in range(3, 64):\n    try:\n        os.close(fd)\n    except OSError:\n        pass",
        {"exit"},
    ),
    "poison_builtins_and_harness": (
        "import builtins, marshal, json, os\nbuiltins.print = builtins.len = None\njson.dumps = None\n"
        "marshal.dumps = None\nos.environ['POISONED'] = '1'",
        {"exit", "sandbox_error"},
    ),
    "leftover_thread": (
        "import threading\ndef spin():\n    while True:\n        pass\nthreading.Thread(target=spin).start()",
        {"timeout"},
    ),
    "atexit_hook": ("import atexit, time\natexit.register(time.sleep, 10 ** 6)", {"timeout"}),
    "atexit_fork": (
        "import atexit, os, time\ndef hook():\n    if os.fork() == 0:\n        os.setsid()\n        time.sleep(600)\n"
        "    os._exit(5)\natexit.register(hook)",
        {"exit"},
    ),
}

CANARY_JOB = "import math, json\nprint(json.dumps([len('abc'), math.factorial(10)]))"
CANARY_OUT = "[3, 3628800]\n"


def _leftovers(box: Sandbox) -> tuple[list[int], list[int]]:
    """Processes left by jobs: under the fork server (all but the zygote and its idle, pre-forked warm children),
    and anywhere on the machine under a job uid (the fresh uids the server gives jobs when it runs as root)."""
    warm_ns = set(box.stats()["warm_pids"])
    tree = descendants(box.server_pid)
    warm_host = set()
    for pid in tree[1:]:
        try:
            if ns_pid(pid) in warm_ns:
                warm_host.add(pid)
        except OSError:
            pass
    under_server = [p for p in tree[1:] if p not in warm_host]
    by_uid = []
    if box.isolation["uid_drop"]:
        for entry in os.listdir("/proc"):
            if entry.isdigit() and int(entry) not in warm_host:
                try:
                    if os.stat(f"/proc/{entry}").st_uid >= fs.UID_BASE:
                        by_uid.append(int(entry))
                except OSError:
                    pass
    return under_server, by_uid


@pytest.fixture(scope="module")
def canary():
    for base in ("/var/cache", "/opt", "/srv", str(Path(__file__).resolve().parent)):
        if os.access(base, os.W_OK):
            break
    d = Path(tempfile.mkdtemp(prefix="sandbox-canary-", dir=base))
    d.chmod(0o755)
    f = d / "canary.txt"
    f.write_text("intact")
    f.chmod(0o666)  # even a world-writable host file must stay untouched
    yield f
    f.unlink(missing_ok=True)
    d.rmdir()


@pytest.fixture(scope="module")
def box(canary):
    os.environ[SECRET_NAME] = SECRET
    sb = Sandbox(
        workers=3, timeout=TIMEOUT, memory_mb=256, max_processes=16, max_output_bytes=256 << 10, max_file_bytes=4 << 20
    )
    sb.start()
    yield sb
    sb.close()
    os.environ.pop(SECRET_NAME, None)


def _unenforced(iso: dict) -> list[str]:
    """Corpus entries whose defence this kernel did not grant (any one feature of NEEDS[name] suffices)."""
    return sorted(name for name, needs in NEEDS.items() if not any(iso.get(n) for n in needs))


def test_report_isolation_mode(box, capsys, record_property):
    """Prints the sandbox mode this kernel allowed (visible in CI's pytest output, even with -q)."""
    iso = box.isolation
    line = (
        f"sandbox: network_mode={iso['network_mode']} namespaces(net={iso['net']} mount={iso['mount']} "
        f"pid={iso['pid']} ipc={iso['ipc']} user={iso['userns']}) uid_drop={iso['uid_drop']} "
        f"readonly_root={iso.get('readonly_root', False)} nproc={iso['nproc']!r} "
        f"not_enforced_here={_unenforced(iso)}"
    )
    record_property("sandbox_isolation", line)
    with capsys.disabled():  # straight to the terminal, past pytest's output capture
        print(f"\n{line}")
    assert iso["network_mode"] in ("namespace", "audit-hook")


def test_corpus_is_large_enough():
    assert len(CORPUS) >= 25


def test_hostile_corpus(box, canary):
    before = {
        "canary": hashlib.sha256(canary.read_bytes()).hexdigest(),
        "cwd": os.getcwd(),
        "secret": os.environ[SECRET_NAME],
    }
    names = list(CORPUS)
    futures = {}
    canaries = []
    t0 = time.monotonic()
    for i, name in enumerate(names):
        code = CORPUS[name][0].replace("{canary!r}", repr(str(canary))).replace("{secret!r}", repr(SECRET_NAME))
        futures[name] = box.submit(code)
        if i % 4 == 0:
            canaries.append(box.submit(CANARY_JOB))  # benign jobs run beside the hostile ones
    results = {name: f.result(timeout=120) for name, f in futures.items()}
    canary_results = [f.result(timeout=60) for f in canaries]
    elapsed = time.monotonic() - t0

    skipped = set(_unenforced(box.isolation))
    problems = []
    for name in names:
        r, allowed = results[name], CORPUS[name][1]
        assert r.reason in fs.REASONS, r
        if name not in skipped and (r.ok or r.reason not in allowed):
            problems.append(
                f"{name}: ok={r.ok} reason={r.reason!r} (allowed {sorted(allowed)}) {r.exc_type}: {r.exc_message[:120]}"
            )
        if r.wall_time > TIMEOUT + 1.0:
            problems.append(f"{name}: took {r.wall_time:.2f}s > timeout + 1 s")
        if SECRET in r.stdout or SECRET in r.stderr or "FOUND" in r.stdout:
            problems.append(f"{name}: leaked the host secret")
    assert not problems, "\n".join(problems)
    assert all(c.ok and c.stdout == CANARY_OUT for c in canary_results), canary_results
    # 3 workers; at most ~16 programs run into the 1.5 s timeout: generous bound for a loaded 2-core box
    assert elapsed < 60, elapsed

    # the host is unharmed
    if "overwrite_host_file" not in skipped:
        assert hashlib.sha256(canary.read_bytes()).hexdigest() == before["canary"] and canary.read_text() == "intact"
    assert canary.exists()
    assert os.getcwd() == before["cwd"] and os.environ[SECRET_NAME] == before["secret"]
    assert not Path("/etc/sandbox-escape").exists()

    # no process of any job is left: under the server only the zygote and its idle warm children remain, and (as
    # root) no other process runs under a job uid anywhere on the machine
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        under_server, by_uid = _leftovers(box)
        if not under_server and not by_uid:
            break
        time.sleep(0.1)
    assert under_server == [], f"processes left under the fork server: {under_server}"
    assert by_uid == [], f"processes left under job uids: {by_uid}"
    stats = box.stats()
    assert stats["running"] == 0 and stats["strays_killed"] > 0  # orphans from the fork bombs were killed
    assert stats["warm"] <= box.workers

    # the server still works, and the next job sees pristine builtins, modules and environment
    r = box.run(
        "import builtins, json, os\nprint(builtins.print is print, len('ab'), json.dumps(1), os.environ.get('POISONED'))"
    )
    assert r.stdout == "True 2 1 None\n", r


def test_poison_does_not_reach_the_next_job_on_the_same_worker():
    with Sandbox(workers=1, timeout=TIMEOUT) as sb:
        poison = (
            "import builtins, math, collections, sys\nbuiltins.sum = lambda *a: -1\nmath.sqrt = None\n"
            "collections.Counter = dict\nsys.modules['json'] = None\n"
        )
        check = "import math, json, collections\nprint(sum([1, 2]), math.sqrt(4), collections.Counter('aab')['a'], json.dumps(0))"
        results = sb.run_many([poison, check, poison, check])
    assert [r.stdout for r in results[1::2]] == ["3 2.0 2 0\n"] * 2


def test_timeouts_return_promptly_even_when_all_workers_hang():
    """Every worker busy with a job that never ends: each still comes back by its own deadline + 1 s."""
    with Sandbox(workers=2, timeout=1.0).start() as sb:
        t = time.monotonic()
        futs = [sb.submit("while True: pass") for _ in range(4)]
        done_at = []
        for f in futs:
            r = f.result(timeout=30)
            done_at.append(time.monotonic() - t)
            assert r.reason in ("timeout", "cpu_limit") and r.timed_out and r.wall_time <= 2.0, r
        # two waves of 1 s; the host sees them later than the server does, by however long it waits for a CPU
        assert done_at[1] <= 3.0 and done_at[3] <= 6.0, done_at
