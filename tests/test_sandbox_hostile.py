"""The hostile-program corpus: every program fails cleanly, in time, and leaves nothing behind.

Each program below is what a model could write (by accident or as a reward hack). Every one must come back as
a failed ExecResult within its timeout + 1 s, while benign canary jobs running beside it succeed, the host
process and its files are untouched, and no process of any job is left afterwards (checked on the process
table). The sandbox's isolation mode (network namespace or audit hook, ...) is printed in the test output.

The corpus (_hostile_corpus.py) runs in the default mode in this process, and in the README's other modes
(user namespace, no namespaces as root, not contained) in a sacrificial host process under a fresh uid
(_hostile_host.py), each held to what the README's table promises for it.
"""

from __future__ import annotations

import hashlib
import json
import marshal
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import warnings
import weakref
from pathlib import Path

import _hostile_corpus as hc
import pytest

from reward_fns.code import Sandbox
from reward_fns.code import _forkserver as fs
from reward_fns.code import sandbox as sandbox_mod

TIMEOUT = hc.TIMEOUT
SECRET_NAME = hc.SECRET_NAME
SECRET = "hunter2-" + os.urandom(4).hex()
REPO = Path(__file__).resolve().parents[1]


def _writable_base() -> str:
    """A directory outside /tmp (which the sacrificial hosts below hide behind their own tmpfs) to put host files in."""
    for base in ("/var/cache", "/opt", "/srv", str(Path(__file__).resolve().parent)):
        if os.access(base, os.W_OK):
            return base
    return tempfile.gettempdir()


@pytest.fixture(scope="module")
def canary():
    d = Path(tempfile.mkdtemp(prefix="sandbox-canary-", dir=_writable_base()))
    d.chmod(0o755)
    f = d / "canary.txt"
    f.write_text("intact")
    f.chmod(0o666)  # even a world-writable host file must stay untouched
    own = d / "own.txt"  # a file of the caller's uid
    own.write_text("intact")
    own.chmod(0o644)
    yield f
    f.unlink(missing_ok=True)
    own.unlink(missing_ok=True)
    d.rmdir()


@pytest.fixture(scope="module")
def box(canary):
    os.environ[SECRET_NAME] = SECRET
    sb = Sandbox(**hc.SANDBOX_OPTS)
    sb.start()
    yield sb
    sb.close()
    os.environ.pop(SECRET_NAME, None)


def _sleeper(exe: str = sys.executable, **kwargs) -> subprocess.Popen:
    """A sacrificial process for the process attacks to aim at (never pytest or its parents)."""
    return subprocess.Popen([exe, "-c", "import time; time.sleep(120)"], start_new_session=True, cwd="/", **kwargs)


def _alive(proc: subprocess.Popen) -> bool:
    """Running, not stopped."""
    if proc.poll() is not None:
        return False
    return Path(f"/proc/{proc.pid}/stat").read_text().rsplit(") ", 1)[1][0] not in "TtZX"


def test_report_isolation_mode(box, capsys, record_property):
    """Prints the sandbox mode this kernel allowed (visible in CI's pytest output, even with -q)."""
    iso = box.isolation
    line = (
        f"sandbox: network_mode={iso['network_mode']} namespaces(net={iso['net']} mount={iso['mount']} "
        f"pid={iso['pid']} ipc={iso['ipc']} user={iso['userns']}) uid_drop={iso['uid_drop']} "
        f"readonly_root={iso.get('readonly_root', False)} nproc={iso['nproc']!r} "
        f"not_enforced_here={hc.unenforced(iso)}"
    )
    record_property("sandbox_isolation", line)
    with capsys.disabled():  # straight to the terminal, past pytest's output capture
        print(f"\n{line}")
    assert iso["network_mode"] in ("namespace", "audit-hook")


def test_corpus_is_large_enough():
    assert len(hc.CORPUS) >= 25
    assert set(hc.NEEDS) <= set(hc.CORPUS) and set(hc.PROCESS_ATTACKS) <= set(hc.CORPUS)


def test_hostile_corpus(box, canary):
    """The default mode (full isolation as root here), in the pytest process: all at once, beside canary jobs."""
    own = canary.parent / "own.txt"
    before = {
        "canary": hashlib.sha256(canary.read_bytes()).hexdigest(),
        "cwd": os.getcwd(),
        "secret": os.environ[SECRET_NAME],
    }
    victim = _sleeper()
    try:
        targets = {"canary": str(canary), "own": str(own), "victim": victim.pid}
        results, canary_results, elapsed = hc.run_corpus(box, list(hc.CORPUS), targets)
        problems = hc.problems(results, box.isolation, SECRET)
        assert not problems, "\n".join(problems)
        assert all(c["ok"] and c["stdout"] == hc.CANARY_OUT for c in canary_results), canary_results
        # 3 workers; at most ~16 programs run into the 1.5 s timeout: generous bound for a loaded 2-core box
        assert elapsed < 60, elapsed
        skipped = set(hc.unenforced(box.isolation))

        # the host is unharmed
        if "overwrite_host_file" not in skipped:
            assert hashlib.sha256(canary.read_bytes()).hexdigest() == before["canary"]
            assert canary.read_text() == "intact"
        if "overwrite_caller_file" not in skipped:
            assert own.read_text() == "intact"
        if "signal_host_process" not in skipped:
            assert _alive(victim), "a job killed or stopped a host process"
    finally:
        victim.kill()
        victim.wait()
    assert canary.exists()
    assert os.getcwd() == before["cwd"] and os.environ[SECRET_NAME] == before["secret"]
    assert not Path("/etc/sandbox-escape").exists()

    # no process of any job is left: under the server only the zygote and its idle warm children remain, and (as
    # root) no other process runs under a job uid anywhere on the machine
    under_server, by_uid = hc.settled_leftovers(box)
    assert under_server == [], f"processes left under the fork server: {under_server}"
    assert by_uid == [], f"processes left under job uids: {by_uid}"
    stats = box.stats()
    assert stats["running"] == 0 and stats["strays_killed"] > 0  # orphans from the fork bombs were killed
    assert stats["warm"] <= box.workers

    # the server still works, and the next job sees pristine builtins, modules and environment
    r = box.run(hc.NEXT_JOB)
    assert r.stdout == hc.NEXT_JOB_OUT, r


# ------------------------------------------------------------------------- the corpus in the other modes
# The other isolation modes of the README's table, each produced for real and hosted by a sacrificial process
# (_hostile_host.py) that the test starts as root on a system interpreter (the venv's stdlib is under /root, which
# other uids cannot read), in its own mount namespace with tmpfs over /tmp, /var/tmp and /dev/shm:
#   userns      - isolation="auto" as a fresh unprivileged uid: the user-namespace mode
#   rlimits_root - isolation="rlimits" as root with a stdlib every uid can read: no namespaces, a uid per job
#   unsafe_user - isolation="rlimits" as a fresh unprivileged uid, opted in: not contained
# Root modes without a per-job uid (the venv's interpreter as root with isolation="rlimits", or test_no_uid_drop)
# run jobs as the machine's root: the corpus would remount / or delete /usr/lib for real, so only the programs
# that cannot hurt the host run there (the forgery and host-signal tests below).
HOST_MODES = {
    "userns": (False, {}),
    "rlimits_root": (True, {"isolation": "rlimits"}),
    "unsafe_user": (False, {"isolation": "rlimits", "allow_unsafe_host_access": True}),
}
EXPECTED_ISO = {
    "userns": {"userns": True, "uid_drop": False, "contained": True, "pid": True, "readonly_root": True},
    "rlimits_root": {"root": True, "uid_drop": True, "contained": True, "mount": False, "pid": False},
    "unsafe_user": {"root": False, "uid_drop": False, "contained": False, "mount": False, "pid": False},
}


def _system_python() -> str | None:
    """A python3 >= 3.10 that every uid can run and whose stdlib every uid can read."""
    for exe in (shutil.which("python3"), "/usr/bin/python3", "/usr/local/bin/python3", sys.executable):
        if not exe or not os.path.exists(exe):
            continue
        exe = os.path.realpath(exe)
        probe = "import os, sys; print(sys.version_info >= (3, 10) and os.access(os.__file__, os.R_OK))"
        try:
            out = subprocess.run(
                [exe, "-c", probe], capture_output=True, text=True, user=65534, group=65534, extra_groups=[], timeout=30
            )
        except (OSError, subprocess.SubprocessError):
            continue
        if out.stdout.strip() == "True":
            return exe
    return None


def _fresh_ids(n: int) -> list[int]:
    """``n`` uids (also used as gids) that no process, file owner or account uses, below the sandbox's job uids."""
    used = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                used.add(os.stat(f"/proc/{entry}").st_uid)
            except OSError:
                pass
    for db in ("/etc/passwd", "/etc/group"):
        with open(db) as fh:
            used.update(int(line.split(":")[2]) for line in fh if line.count(":") >= 3)
    out = []
    while len(out) < n:
        cand = 500_000_000 + int.from_bytes(os.urandom(3), "big") * 16
        if cand not in used and cand < fs.UID_BASE:
            out.append(cand)
            used.add(cand)
    return out


def _kill_uid(uid: int) -> None:
    """SIGKILL what runs as ``uid`` (a fresh uid this test made up: only the test's own processes run as it)."""
    for _ in range(3):
        for entry in os.listdir("/proc"):
            try:
                if entry.isdigit() and os.stat(f"/proc/{entry}").st_uid == uid:
                    os.kill(int(entry), signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.05)


def _userns_unavailable() -> str | None:
    """Why this kernel refuses unprivileged user namespaces, or None."""
    for path, bad in (("/proc/sys/user/max_user_namespaces", "0"), ("/proc/sys/kernel/unprivileged_userns_clone", "0")):
        try:
            if Path(path).read_text().strip() == bad:
                return f"{path} is {bad}"
        except OSError:
            pass
    try:
        if Path("/proc/sys/kernel/apparmor_restrict_unprivileged_userns").read_text().strip() == "1":
            return "AppArmor restricts unprivileged user namespaces"
    except OSError:
        pass
    return None


@pytest.fixture(scope="module")
def host_kit():
    """What a sacrificial host needs, readable by any uid: a private copy of reward_fns and the corpus helpers,
    outside /tmp (its tmpfs would hide it), and a system interpreter."""
    if os.geteuid() != 0:
        pytest.skip("needs root to start hosts under fresh uids and in their own mount namespace")
    exe = _system_python()
    if exe is None:
        pytest.skip("no python3 >= 3.10 whose stdlib an unprivileged uid can read")
    d = Path(tempfile.mkdtemp(prefix="sandbox-hosts-", dir=_writable_base()))
    d.chmod(0o755)
    code = d / "code"
    shutil.copytree(REPO / "reward_fns", code / "reward_fns", ignore=shutil.ignore_patterns("__pycache__"))
    (code / "tests").mkdir()
    for name in ("_hostile_corpus.py", "_proctable.py", "_hostile_host.py"):
        shutil.copy(Path(__file__).parent / name, code / "tests" / name)
    for root, dirs, files in os.walk(d):
        for x in dirs:
            os.chmod(os.path.join(root, x), 0o755)
        for x in files:
            os.chmod(os.path.join(root, x), 0o644)
    yield exe, d
    shutil.rmtree(d, ignore_errors=True)


@pytest.mark.parametrize("mode", list(HOST_MODES))
def test_hostile_corpus_in_every_mode(mode, host_kit, capsys):
    """Issue 11: the whole corpus in each mode the machine can produce, checked against what the README's table
    promises for that mode: every entry whose defence the mode grants fails in time with an allowed reason; benign
    jobs beside them succeed; nothing is left running; the server keeps working. Harm outside the sandbox is allowed
    only where the table says so: not contained, to the caller's own (here a fresh uid's) files and processes."""
    exe, d = host_kit
    as_root, opts = HOST_MODES[mode]
    uid, other = _fresh_ids(2)
    caller = 0 if as_root else uid
    files = {}
    for name, owner, perm in (("canary", 0, 0o666), ("own", caller, 0o644), ("other", other, 0o644)):
        f = d / f"{mode}-{name}.txt"
        f.write_text("intact")
        os.chown(f, owner, owner)
        f.chmod(perm)
        files[name] = f
    victim = _sleeper(exe, user=caller, group=caller, extra_groups=[])  # the caller's uid, outside the sandbox
    stranger = _sleeper(exe, user=other, group=other, extra_groups=[])  # another uid
    cfg = {
        "uid": None if as_root else uid,
        "gid": None if as_root else uid,
        "code": str(d / "code"),
        "opts": opts,
        "targets": {"canary": str(files["canary"]), "own": str(files["own"]), "victim": victim.pid},
        "keep": [victim.pid],
    }
    try:
        proc = subprocess.run(
            [exe, "-s", "-B", str(d / "code" / "tests" / "_hostile_host.py"), json.dumps(cfg)],
            capture_output=True,
            text=True,
            env={SECRET_NAME: SECRET, "PATH": "/usr/bin:/bin"},
            cwd="/",
            timeout=150,
        )
        steps = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
        victim_alive, stranger_alive = _alive(victim), _alive(stranger)
    finally:
        for p in (victim, stranger):
            p.kill()
            p.wait()
        if not as_root:
            _kill_uid(uid)
        left_by_uid = []
        if not as_root:  # the host is gone: nothing of its uid may outlive it (the victim was reaped above)
            left_by_uid = [e for e in os.listdir("/proc") if e.isdigit() and _owner(e) == uid]
        _kill_uid(other)
    assert steps and steps[0]["step"] == "start", proc.stderr[-3000:]
    iso = steps[0]["iso"]
    if mode == "userns" and not iso["userns"] and _userns_unavailable():
        pytest.skip(f"unprivileged user namespaces are off here: {_userns_unavailable()}")
    assert {k: iso.get(k) for k in EXPECTED_ISO[mode]} == EXPECTED_ISO[mode], iso
    by_step = {s["step"]: s for s in steps}
    alone = {s["name"]: s for s in steps if s["step"] == "alone"}
    skipped = set(hc.unenforced(iso))

    corpus = by_step["corpus"]
    assert corpus["problems"] == [], f"mode {mode}:\n" + "\n".join(corpus["problems"])
    assert all(c["ok"] and c["stdout"] == hc.CANARY_OUT for c in corpus["canaries"]), corpus["canaries"]
    assert corpus["elapsed"] < 60, corpus["elapsed"]
    assert corpus["under_server"] == [] and corpus["by_uid"] == [], corpus
    assert corpus["stats"]["running"] == 0 and corpus["stats"]["strays_killed"] > 0, corpus["stats"]
    ran = set(corpus["results"]) | set(alone)
    for step in alone.values():
        assert step["problems"] == [], f"mode {mode}: {step}"

    # what every mode promises: other uids' processes and files, root's files, and the test run are untouched
    assert stranger_alive, f"mode {mode}: a job killed or stopped another uid's process"
    assert files["other"].read_text() == "intact"
    assert not Path("/etc/sandbox-escape").exists()
    harm = {
        "caller_file_overwritten": files["own"].read_text() != "intact",
        "caller_process_killed": not victim_alive,
        "world_writable_file_overwritten": files["canary"].read_text() != "intact",
        "host_killed": proc.returncode != 0,
    }
    if iso["contained"]:
        assert ran == set(hc.CORPUS), set(hc.CORPUS) - ran
        assert proc.returncode == 0, proc.stderr[-3000:]
        end = by_step["end"]
        assert end["next_job"] == hc.NEXT_JOB_OUT and end["under_server"] == [] and end["by_uid"] == [], end
        assert not harm["caller_file_overwritten"] and not harm["caller_process_killed"], harm
        if "overwrite_host_file" not in skipped:
            assert not harm["world_writable_file_overwritten"], harm
        assert left_by_uid == [], left_by_uid
    else:
        # not contained: only rlimits, the audit-hook network block and the wall-clock kill hold (checked above
        # for every entry that needs nothing more); a job of the caller's uid may kill the host itself (kill(-1)),
        # which is why that one runs last, alone
        assert ran >= set(hc.CORPUS) - {"kill_everything"}, set(hc.CORPUS) - ran
        assert proc.returncode in (0, -signal.SIGKILL), proc.stderr[-3000:]
        assert skipped >= set(hc.PROCESS_ATTACKS) | {"overwrite_caller_file"}, skipped
    with capsys.disabled():
        print(
            f"\ncorpus in mode {mode}: {iso['network_mode']} uid_drop={iso['uid_drop']} contained={iso['contained']} "
            f"not_enforced={sorted(skipped)} harm={ {k for k, v in harm.items() if v} or 'none' }"
        )
    for f in files.values():
        f.unlink()


def _owner(pid: str) -> int | None:
    try:
        return os.stat(f"/proc/{pid}").st_uid
    except OSError:
        return None


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


# ------------------------------------------------------------------------------------------- forged results
# Isolation modes this machine can produce for the programs below, which are harmless to the host (they write to
# their own descriptors and fork their own children). "full" is what Sandbox() gets here; the others are forced
# (as root: no namespaces, or no per-job uid), and need the explicit opt-in because jobs there are not contained.
FORCED_MODES = {
    "full": {},
    "rlimits_unsafe": {"isolation": "rlimits", "allow_unsafe_host_access": True},
    "no_uid_drop_unsafe": {"allow_unsafe_host_access": True, "test_no_uid_drop": True},
}


def _forced_sandbox(mode: str, **kwargs) -> Sandbox:
    opts = dict(FORCED_MODES[mode])
    test_opts = {k: opts.pop(k) for k in list(opts) if k.startswith("test_")}
    box = Sandbox(**opts, **kwargs)
    if test_opts:  # the server's settings are packed when the Sandbox is made: make its state again
        box._config.update(test_opts)
        box._finalizer.detach()
        box._state = sandbox_mod._State(box._config, box._hash_seed)
        box._finalizer = weakref.finalize(box, sandbox_mod._close_state, box._state)
    return box


_FORGED = fs.frame_record(fs._record("ok", value="'forged'"))  # exactly what the harness writes for a success
_FORGED_OLD = marshal.dumps(("ok", "", "", "'forged'", 0))  # the record format before issue 11
_FORGE = f"import os, sys, time\nFORGED = ({_FORGED!r}, {_FORGED_OLD!r})\n"
_RAISES = "\ndef f(x):\n    raise ValueError('real')\n"
_RETURNS = "\ndef f(x):\n    return 'real'\n"

# name -> (program, expected (reason, exc_type, value)). Each writes a forged "ok, 'forged'" record somewhere, then
# fails for real (or, where it says so, succeeds with its real value). "exit" is the real result where the program
# destroyed its own result channel: the harness then has nowhere to report, and the job did not finish.
FORGERIES: dict[str, tuple[str, set]] = {
    "every_fd_then_raise": (
        _FORGE + "for fd in range(256):\n    for rec in FORGED:\n        try:\n            os.write(fd, rec)\n"
        "        except OSError:\n            pass" + _RAISES,
        {("exception", "ValueError", None)},
    ),
    "every_fd_at_call_time": (
        _FORGE + "def f(x):\n    for fd in range(256):\n        try:\n            os.write(fd, FORGED[0])\n"
        "        except OSError:\n            pass\n    raise ValueError('real')\n",
        {("exception", "ValueError", None)},
    ),
    "dup_then_dup2_pipe_onto_result_fd": (
        _FORGE + "keep = os.dup(3)\nos.write(keep, FORGED[0])\nr, w = os.pipe()\nos.dup2(w, 3)" + _RAISES,
        {("exception", "ValueError", None)},
    ),
    "dup2_stdout_onto_result_fd": (
        _FORGE + "os.write(3, FORGED[0])\nos.dup2(1, 3)" + _RAISES,
        {("exit", "SystemExit", None)},
    ),
    "dup2_result_fd_onto_stdout_and_stderr": (
        _FORGE + "os.dup2(3, 1)\nos.dup2(3, 2)\nsys.stdout.buffer.write(FORGED[0])\nsys.stdout.flush()\n"
        "sys.stderr.buffer.write(FORGED[0])\nsys.stderr.flush()" + _RAISES,
        {("exception", "ValueError", None)},
    ),
    "close_and_reopen_result_fd": (
        _FORGE + "k = os.dup(3)\nos.close(3)\nos.dup2(k, 3)\nos.close(k)\nos.write(3, FORGED[0])" + _RAISES,
        {("exception", "ValueError", None)},
    ),
    "close_result_fd_and_put_a_pipe_there": (
        _FORGE + "os.write(3, FORGED[0])\nos.close(3)\nr, w = os.pipe()\nos.write(w, FORGED[0])" + _RAISES,
        {("exit", "SystemExit", None)},
    ),
    "write_via_proc_self_fd": (
        _FORGE
        + "for n in os.listdir('/proc/self/fd'):\n    try:\n        fd = os.open(f'/proc/self/fd/{n}', os.O_WRONLY)\n"
        "        os.write(fd, FORGED[0])\n    except OSError:\n        pass" + _RAISES,
        {("exception", "ValueError", None)},
    ),
    "forged_success_then_a_non_zero_exit": (
        _FORGE + "os.write(3, FORGED[0])\nos._exit(3)" + _RAISES,
        {("exit", "SystemExit", None)},
    ),
    "child_writes_after_the_parent_raised": (
        _FORGE + "if os.fork() == 0:\n    os.setsid()\n    parent = os.getppid()\n    while os.getppid() == parent:\n"
        "        time.sleep(0.001)\n    for _ in range(200):\n        os.write(3, FORGED[0])\n    os._exit(0)"
        + _RAISES,
        {("exception", "ValueError", None)},
    ),
    "child_writes_after_the_parent_succeeded": (
        _FORGE + "if os.fork() == 0:\n    os.setsid()\n    parent = os.getppid()\n    while os.getppid() == parent:\n"
        "        time.sleep(0.001)\n    for _ in range(200):\n        os.write(3, FORGED[0])\n    os._exit(0)"
        + _RETURNS,
        {("", "", "'real'")},
    ),
    "child_spams_while_the_parent_succeeds": (
        _FORGE + "if os.fork() == 0:\n    while True:\n        os.write(3, FORGED[0])" + _RETURNS,
        {("", "", "'real'")},
    ),
    "thread_spams_while_the_job_raises": (
        _FORGE + "import threading\ndef spam():\n    while True:\n        os.write(3, FORGED[0])\n"
        "threading.Thread(target=spam, daemon=True).start()\ntime.sleep(0.05)" + _RAISES,
        {("exception", "ValueError", None), ("exit", "SystemExit", None)},
    ),
}


def test_forgery_corpus_is_complete():
    assert len(FORGERIES) >= 12


@pytest.mark.parametrize("mode", list(FORCED_MODES))
def test_a_job_cannot_forge_its_result(mode):
    """Issue 11: whatever a job writes to whichever descriptor, from whichever process, the result is its own: the
    exception it raised (or the value it returned), never the forged record. In every mode this machine can produce."""
    with _forced_sandbox(mode, workers=3, timeout=TIMEOUT) as box:
        names = list(FORGERIES)
        results = box.run_many([{"code": FORGERIES[n][0], "call": "1"} for n in names])
        iso = box.isolation
    problems = []
    for name, r in zip(names, results, strict=True):
        got = (r.reason, r.exc_type, r.value)
        if "forged" in repr(r.value) or got not in FORGERIES[name][1] or (r.ok and r.value != "'real'"):
            problems.append(f"{name}: ok={r.ok} {got} {r.exc_message[:100]!r}")
        if r.reason == "exception" and r.exc_message != "real":
            problems.append(f"{name}: wrong exception message {r.exc_message!r}")
    assert not problems, f"mode {mode} ({iso['network_mode']}, uid_drop={iso['uid_drop']}):\n" + "\n".join(problems)


@pytest.mark.parametrize("mode", list(FORCED_MODES))
def test_a_forged_record_cannot_turn_a_failure_into_success_without_a_call(mode):
    """Jobs without a call: a forged success (with or without a value), then a failure, is still that failure."""
    with _forced_sandbox(mode, workers=2, timeout=TIMEOUT) as box:
        plain_ok = fs.frame_record(fs._record("ok"))
        results = box.run_many(
            [
                _FORGE + f"os.write(3, {plain_ok!r})\nraise KeyError('real')",
                _FORGE + f"os.write(3, {plain_ok!r})\nimport sys\nsys.exit(4)",
                _FORGE
                + "os.write(3, FORGED[0])\nos._exit(0)",  # a value from a job without a call is not the harness's
                _FORGE + f"os.write(3, {plain_ok!r})\nos.kill(os.getpid(), 9)",
            ]
        )
    assert (results[0].reason, results[0].exc_type) == ("exception", "KeyError"), results[0]
    assert (results[1].reason, results[1].returncode) == ("exit", 4), results[1]
    assert results[2].reason == "exit" and results[2].value is None, results[2]
    assert results[3].reason == "signal" and not results[3].ok, results[3]


def test_compute_score_does_not_take_a_forged_output():
    """Through verl's entry point: an abduction task's program (not re-checked against the forbidden list when it is
    scored) forges the gold output and then raises. Before issue 11 the solver scored 1.0 for any input."""
    from reward_fns import compute_score

    gold = "'gold'"
    program = _FORGE.replace("FORGED = (", "_unused = (") + (
        f"def f(x):\n    os.write(3, {fs.frame_record(fs._record('ok', value=gold))!r})\n    raise ValueError('real')\n"
    )
    with Sandbox(workers=1, timeout=TIMEOUT) as box:
        for source, info in (("azr_abduction", {}), ("code_exec", {"task_type": "code_i"})):
            out = compute_score(
                source, "<think>any</think><answer>1</answer>", gold, {**info, "program": program}, sandbox=box
            )
            assert out["score"] == -0.5 and out["acc"] == 0.0, (source, out)
        honest = "def f(x):\n    return 'gold'\n"
        out = compute_score(
            "azr_abduction", "<think>any</think><answer>1</answer>", gold, {"program": honest}, sandbox=box
        )
        assert out["score"] == 1.0, out


# ------------------------------------------------------------------------------------ modes that cannot contain
def test_a_mode_that_cannot_contain_jobs_is_refused_without_the_opt_in(monkeypatch):
    """Issue 11: jobs as root, or as the caller's uid without a private pid namespace, could signal or ptrace host
    processes; the sandbox refuses to run them unless the caller opts in, loudly."""
    monkeypatch.delenv(fs.UNSAFE_ENV, raising=False)
    unsafe = ["no_uid_drop_unsafe"] if os.geteuid() == 0 else ["rlimits_unsafe"]
    for mode in unsafe:
        box = _forced_sandbox(mode, workers=1, timeout=TIMEOUT)
        box._config["allow_unsafe_host_access"] = False
        box._finalizer.detach()
        box._state = sandbox_mod._State(box._config, box._hash_seed)
        box._finalizer = weakref.finalize(box, sandbox_mod._close_state, box._state)
        before = set(Path(tempfile.gettempdir()).glob("sandbox-*"))
        with box, pytest.raises(RuntimeError, match="allow_unsafe_host_access=True.*REWARD_FNS_SANDBOX_UNSAFE=1"):
            box.run("print(1)")
        assert set(Path(tempfile.gettempdir()).glob("sandbox-*")) <= before  # the refused server left no work folder
    monkeypatch.setenv(fs.UNSAFE_ENV, "1")  # the environment variable is the same opt-in
    assert Sandbox(isolation="rlimits")._config["allow_unsafe_host_access"] is True
    with (
        _forced_sandbox(unsafe[0], workers=1, timeout=TIMEOUT) as box,
        pytest.warns(RuntimeWarning, match="NOT contained"),
    ):
        assert box.run("print(1)").stdout == "1\n"
        assert box.isolation["contained"] is False
    with Sandbox(workers=1, timeout=TIMEOUT) as box:  # the default mode here contains jobs and needs no opt-in
        assert box.run("print(1)").ok and box.isolation["contained"] is True


@pytest.mark.parametrize("mode", list(FORCED_MODES))
def test_a_job_cannot_signal_a_host_process(mode):
    """The job tries to kill (and ptrace-read) a sacrificial process this test starts, never pytest or its parents,
    so that a broken protection cannot hurt the test run. Contained modes must keep it alive; the others exist only
    behind the opt-in and say so in isolation["contained"]."""
    victim = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    try:
        attack = (
            f"import os, signal\nfor sig in (signal.SIGSTOP, signal.SIGKILL):\n    try:\n        os.kill({victim.pid}, sig)\n"
            f"    except OSError:\n        pass\ntry:\n    open('/proc/{victim.pid}/mem', 'rb').read(1)\nexcept OSError:\n    pass"
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            with _forced_sandbox(mode, workers=1, timeout=TIMEOUT) as box:
                box.run(attack)
                contained = box.isolation["contained"]
        time.sleep(0.1)
        alive = victim.poll() is None
        if contained:
            state = Path(f"/proc/{victim.pid}/stat").read_text().split(") ")[1][0]
            assert alive and state != "T", f"mode {mode}: a contained job killed or stopped a host process"
        else:
            assert mode != "full", "Sandbox() must contain its jobs here"
    finally:
        victim.kill()
        victim.wait()
