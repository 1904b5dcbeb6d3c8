"""The hostile-program corpus and the code that runs it against one Sandbox, shared by test_sandbox_hostile.py (in
the pytest process: the default mode) and _hostile_host.py (a host process that test starts under another uid or
without namespaces, to produce the other isolation modes). Stdlib only: the host process runs on a system
interpreter, without the venv."""

from __future__ import annotations

import os
import time

from _proctable import descendants, ns_pid

from reward_fns.code import _forkserver as fs

TIMEOUT = 1.5
SECRET_NAME = "SANDBOX_TEST_SECRET"
# the limits every corpus run uses
SANDBOX_OPTS = {
    "workers": 3,
    "timeout": TIMEOUT,
    "memory_mb": 256,
    "max_processes": 16,
    "max_output_bytes": 256 << 10,
    "max_file_bytes": 4 << 20,
}

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
    # what the README calls "not contained" leaves these to the job: the caller's uid, its processes and its files
    "overwrite_caller_file": {"contained"},
    "signal_host_process": {"contained"},
    # their signals reach only the sandbox's own processes where jobs share one uid in a private pid namespace (the
    # server, pid 1 there, ignores them; other jobs may die, README): the job may then report success. The test
    # checks on the host that the server still serves and no process outside the sandbox was hurt
    "signal_parent": {"uid_drop"},
    "signal_parent_group": {"uid_drop"},
    "kill_everything": {"uid_drop"},
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
    "overwrite_caller_file": ("open({own!r}, 'w').write('pwned')", {"exception"}),  # 0644, the caller's own
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
    # {victim}: a sacrificial process of the caller's uid that the test started outside the sandbox; the attacker
    # checks it is gone (a killed, unreaped victim still answers signal 0, so success means the kill got through)
    "signal_host_process": (
        "import os, signal\nos.kill({victim}, signal.SIGKILL)\nos.kill({victim}, 0)",
        {"exception"},
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

# Entries that signal processes outside their own job. Where jobs share one uid (user namespace, not contained) a
# job may signal other concurrent jobs (README), so these run one at a time after the rest of the corpus there.
PROCESS_ATTACKS = ("signal_host_process", "signal_parent", "signal_parent_group", "kill_everything")
# Entries that use up the process limit. Where jobs share one uid, that limit is shared by all jobs of the sandbox
# (README), so concurrent jobs would fail to fork or start threads: these too run alone there.
PROCESS_HOGS = ("fork_bomb", "fork_bomb_setsid")

CANARY_JOB = "import math, json\nprint(json.dumps([len('abc'), math.factorial(10)]))"
CANARY_OUT = "[3, 3628800]\n"


def program(name: str, targets: dict) -> str:
    """The corpus entry ``name`` aimed at ``targets``: canary (a world-writable host file), own (a 0644 file of the
    caller's uid), victim (the pid of a sacrificial process of the caller's uid), secret_name."""
    return (
        CORPUS[name][0]
        .replace("{canary!r}", repr(targets["canary"]))
        .replace("{own!r}", repr(targets["own"]))
        .replace("{victim}", str(targets["victim"]))
        .replace("{secret!r}", repr(SECRET_NAME))
    )


def unenforced(iso: dict) -> list[str]:
    """Corpus entries whose defence this mode does not grant (any one feature of NEEDS[name] suffices)."""
    return sorted(name for name, needs in NEEDS.items() if not any(iso.get(n) for n in needs))


def as_dict(r) -> dict:
    return {k: getattr(r, k) for k in fs.RESULT_FIELDS}


def run_corpus(box, names, targets: dict) -> tuple[dict, list, float]:
    """Submit ``names`` at once, with a benign canary job beside every fourth; wait for all. Results as dicts."""
    futures, canaries = {}, []
    t0 = time.monotonic()
    for i, name in enumerate(names):
        futures[name] = box.submit(program(name, targets))
        if i % 4 == 0:
            canaries.append(box.submit(CANARY_JOB))
    results = {name: as_dict(f.result(timeout=120)) for name, f in futures.items()}
    canary_results = [as_dict(f.result(timeout=60)) for f in canaries]
    return results, canary_results, time.monotonic() - t0


def problems(results: dict, iso: dict, secret: str) -> list[str]:
    """What the mode promises for every result: a known reason; a failure with an allowed reason unless the mode
    does not grant the entry's defence (NEEDS); back by timeout + 1 s; no host secret in the output."""
    skipped = set(unenforced(iso))
    out = []
    for name, r in results.items():
        allowed = CORPUS[name][1]
        if r["reason"] not in fs.REASONS and r["reason"] != "":
            out.append(f"{name}: unknown reason {r['reason']!r}")
        if name not in skipped and (r["ok"] or r["reason"] not in allowed):
            out.append(
                f"{name}: ok={r['ok']} reason={r['reason']!r} (allowed {sorted(allowed)}) "
                f"{r['exc_type']}: {r['exc_message'][:120]}"
            )
        if r["wall_time"] > TIMEOUT + 1.0:
            out.append(f"{name}: took {r['wall_time']:.2f}s > timeout + 1 s")
        if name not in skipped and (secret in r["stdout"] or secret in r["stderr"] or "FOUND" in r["stdout"]):
            out.append(f"{name}: leaked the host secret")
    return out


def leftovers(box, uid: int | None = None, allowed: set[int] = frozenset()) -> tuple[list[int], list[int]]:
    """Processes left by jobs: under the fork server (all but the zygote and its idle, pre-forked warm children),
    and anywhere on the machine under a job uid (the fresh uids the server gives jobs when it runs as root), or, with
    ``uid`` (jobs that run as the caller's uid), any process of ``uid`` outside the server's tree and ``allowed``."""
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
    keep = set(tree) | {box.server_pid} | set(allowed)
    by_uid = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) in warm_host:
            continue
        try:
            owner = os.stat(f"/proc/{entry}").st_uid
            if uid is not None:
                if owner == uid and int(entry) not in keep:
                    by_uid.append(int(entry))
            elif (
                box.isolation["uid_drop"]
                and owner >= fs.UID_BASE
                and not _warm_child_of_another_server(int(entry), set(tree))
            ):
                by_uid.append(int(entry))
        except OSError:
            pass
    return under_server, by_uid


def settled_leftovers(box, uid: int | None = None, allowed: set[int] = frozenset(), wait: float = 5.0):
    """:func:`leftovers`, once none are left or after ``wait`` seconds (the server kills strays when a job ends)."""
    deadline = time.monotonic() + wait
    while True:
        under_server, by_uid = leftovers(box, uid, allowed)
        if (not under_server and not by_uid) or time.monotonic() > deadline:
            return under_server, by_uid
        time.sleep(0.1)


def _warm_child_of_another_server(pid: int, box_tree: set[int]) -> bool:
    """A pre-forked warm child of another live sandbox (the process-wide default one, another test's, another
    process's): it waits under a job uid too, but as the direct child of that sandbox's own server (a root process
    outside this box's tree), not as a job process that escaped this box (those end up under pid 1 or a job uid)."""
    with open(f"/proc/{pid}/stat") as f:
        ppid = int(f.read().rsplit(")", 1)[1].split()[1])
    if ppid == 1 or ppid in box_tree or os.stat(f"/proc/{ppid}").st_uid >= fs.UID_BASE:
        return False
    with open(f"/proc/{ppid}/cmdline", "rb") as f:
        cmdline = f.read()
    return b"_forkserver" in cmdline or b"import marshal" in cmdline


NEXT_JOB = (
    "import builtins, json, os\nprint(builtins.print is print, len('ab'), json.dumps(1), os.environ.get('POISONED'))"
)
NEXT_JOB_OUT = "True 2 1 None\n"
