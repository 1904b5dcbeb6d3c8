"""The sandbox fork server: a slim, stdlib-only process that forks one fresh child per job.

Started by :class:`reward_fns.code.Sandbox`, through a :class:`reward_fns._procserver.ProcServer` (which owns its
life cycle: lazy start, ``ready`` handshake, health check, restart, stop at exit), as
``python -s -S -B _forkserver.py`` with an environment that holds only ``PYTHONHASHSEED`` and ``MALLOC_ARENA_MAX``
(jobs get an empty one). This file adds the sandbox on top of that generic server: the isolation layers and the
per-job event loop. It imports nothing from ``reward_fns`` but the stdlib-only :mod:`reward_fns._procserver`
(loaded by path, since it runs without site-packages), whose wire format and kill primitives it uses. The host
imports it for the constants.

Process layout::

    host (verl reward worker) --sockets--> P (this script) --fork--> Z (zygote, pid 1 of a new pid namespace)
                                                                    |--fork--> job 1 (fresh child, one job)
                                                                    |--fork--> job 2 ...
                                                                    |--fork--> warm child (waits for a job)

P sets up the namespaces (network, mount, pid, ipc; a user namespace when not root), forks Z and waits for it.
Z mounts a private view of the file system (everything read-only, private tmpfs for /tmp, /run, /dev/shm,
/var/tmp, /root and /home, the stdlib kept visible), drops what it no longer needs, and then re-executes a fresh
interpreter (same pid and namespaces) so that the heap every fork copies holds no set-up leftovers. Z holds the
pre-imported stdlib, so a job costs one ``fork()`` of a ~11 MB process instead of an interpreter start.

Every job child: new session (its own process group), empty environment, private 0700 working directory under
a private tmpfs (removed afterwards), rlimits (CPU, address space, processes, file size, open files, no core
dumps), a fresh unused uid when the server runs as root, stdout/stderr into bounded pipes, and a wall-clock
deadline after which its whole process group is SIGKILLed. Its result comes back on fd 3, a unix socket with
``SO_PASSCRED`` on the server's end: the server keeps only bytes sent by the job's own pid, reads them for the last
time before it reaps the job, and accepts only the trailing record that agrees with the job's exit (:func:`parse_result`). Orphans that escaped the group (``setsid``) are
re-parented to Z (pid-namespace init, else a child subreaper) and killed when their job ends.
"""

from __future__ import annotations

import atexit
import builtins
import errno
import marshal
import os
import resource
import select
import signal
import struct
import sys
import time


def _load_procserver():
    """The shared process-server module: imported normally in the host; loaded by path in this script (run with
    ``python -S``, no ``reward_fns`` on the path); shipped in the memfd to the re-executed zygote (see _BOOT)."""
    if "_procserver" in sys.modules:
        return sys.modules["_procserver"]
    try:
        from reward_fns import _procserver

        return _procserver
    except ImportError:
        pass
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "_procserver.py")
    module = type(sys)("_procserver")
    module.__file__ = path
    sys.modules["_procserver"] = module
    with open(path, "rb") as fh:
        exec(compile(fh.read(), path, "exec"), module.__dict__)
    return module


_ps = _load_procserver()
# ----------------------------------------------------------------------------------------------- protocol
_HEADER = _ps._HEADER
pack_msg, send_msg, read_msg = _ps.pack_msg, _ps.send_msg, _ps.read_msg

# ExecResult field order of the "done" record the server sends to the host.
RESULT_FIELDS = (
    "ok",
    "reason",
    "stdout",
    "stderr",
    "exc_type",
    "exc_message",
    "value",
    "returncode",
    "timed_out",
    "memory_exceeded",
    "wall_time",
    "truncated",
)

# Job-level failure reasons (ExecResult.reason). "" means the job succeeded.
REASONS = (
    "syntax_error",
    "exception",
    "exit",
    "timeout",
    "cpu_limit",
    "memory",
    "signal",
    "output_limit",
    "process_limit",
    "unrepresentable",
    "bad_input",
    "sandbox_error",
    "closed",
)

# Modules imported once in the zygote so that jobs do not pay for them. Every preloaded module makes each fork a
# little dearer (a bigger heap to copy-on-write and tear down), so the default is the cheap set most programs use;
# measured here: importing `typing` in a job costs ~11 ms, `math`/`collections`-class modules ~0.1 ms each to
# preload. Nothing here may import `random`: it would be seeded once in the zygote and every job would draw the
# same numbers, hiding nondeterminism. Sandbox(preload=...) changes the set.
PRELOAD = ("math", "itertools", "collections", "functools", "heapq", "bisect", "operator", "string")


# ------------------------------------------------------------------------------------------ linux helpers
CLONE_NEWNS = 0x00020000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT = 1, 2, 4, 8, 32
MS_NOATIME, MS_NODIRATIME, MS_BIND, MS_REC = 1024, 2048, 4096, 16384
MS_PRIVATE, MS_RELATIME, MS_STRICTATIME = 1 << 18, 1 << 21, 1 << 24
PR_SET_DUMPABLE, PR_CAPBSET_DROP, PR_SET_SECUREBITS = 4, 24, 28
PR_SET_CHILD_SUBREAPER, PR_SET_NO_NEW_PRIVS, PR_SET_THP_DISABLE = 36, 38, 41
SECBIT_NOROOT, SECBIT_NOROOT_LOCKED = 1, 2
# Fresh uids for jobs when the server runs as root: UID_BASE + (server pid * 256 + job counter % 256).
UID_BASE = 1 << 30
# The server outranks its jobs so that it enforces deadlines even when every job spins: it raises its own priority
# by JOB_NICE where allowed (CAP_SYS_NICE, e.g. root) and jobs drop back to the caller's; otherwise jobs run nicer.
JOB_NICE = 2
_PIPE_CAPACITY = 65536  # a job spec up to this size is handed to a warm child in one non-blocking pipe write
POLICE_INTERVAL = 0.01  # seconds between process counts where RLIMIT_NPROC cannot hold (root without uid drop)

_libc = None


def _lib():
    global _libc
    if _libc is None:
        import ctypes

        _libc = ctypes.CDLL(None, use_errno=True)
    return _libc


def _check(ret: int, what: str) -> None:
    if ret != 0:
        import ctypes

        e = ctypes.get_errno()
        raise OSError(e, f"{what}: {os.strerror(e)}")


def _unshare(flags: int) -> None:
    _check(_lib().unshare(flags), "unshare")


def _mount(source, target, fstype, flags: int, data=None) -> None:
    import ctypes

    def b(s):
        return None if s is None else os.fsencode(s)

    _check(_lib().mount(b(source), b(target), b(fstype), ctypes.c_ulong(flags), b(data)), f"mount {target}")


def _prctl(option: int, arg: int = 0) -> int:
    import ctypes

    z = ctypes.c_ulong(0)
    return _lib().prctl(option, ctypes.c_ulong(arg), z, z, z)


def _drop_all_caps() -> None:
    """Clear every capability (effective, permitted, inheritable, bounding) and stop root from regaining them."""
    import ctypes

    _prctl(PR_SET_SECUREBITS, SECBIT_NOROOT | SECBIT_NOROOT_LOCKED)
    for cap in range(64):
        if _prctl(PR_CAPBSET_DROP, cap) != 0:
            break

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]

    data = (Data * 2)()
    _check(_lib().capset(ctypes.byref(Header(0x20080522, 0)), data), "capset")


def _write_file(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


# ------------------------------------------------------------------------------------------ namespaces (P)
def setup_namespaces(cfg: dict) -> dict:
    """Enter new namespaces for the whole server (called in P before forking Z). Returns the isolation facts."""
    info = {"net": False, "mount": False, "pid": False, "ipc": False, "userns": False, "root": os.geteuid() == 0}
    if cfg["isolation"] != "auto":
        return info
    base = CLONE_NEWNET | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC
    if info["root"]:
        # Never a user namespace as root: root mapped into one keeps the host's root file access.
        attempts = [base, CLONE_NEWNET | CLONE_NEWNS | CLONE_NEWPID, CLONE_NEWNET | CLONE_NEWNS, CLONE_NEWNET]
    else:
        u = CLONE_NEWUSER
        attempts = [
            u | base,
            u | CLONE_NEWNET | CLONE_NEWNS | CLONE_NEWPID,
            u | CLONE_NEWNET | CLONE_NEWNS,
            u | CLONE_NEWNET,
        ]
    uid, gid = os.getuid(), os.getgid()
    for flags in attempts:
        try:
            _unshare(flags)
        except OSError:
            continue
        if flags & CLONE_NEWUSER:
            try:
                _write_file("/proc/self/setgroups", "deny")
            except OSError:
                pass
            _write_file("/proc/self/uid_map", f"0 {uid} 1")
            _write_file("/proc/self/gid_map", f"0 {gid} 1")
            info["userns"] = True
        info["net"] = bool(flags & CLONE_NEWNET)
        info["mount"] = bool(flags & CLONE_NEWNS)
        info["pid"] = bool(flags & CLONE_NEWPID)
        info["ipc"] = bool(flags & CLONE_NEWIPC)
        break
    return info


# -------------------------------------------------------------------------------------- file system (Z)
_MOUNTINFO_ESC = {"\\040": " ", "\\011": "\t", "\\012": "\n", "\\134": "\\"}


def _unescape(s: str) -> str:
    for k, v in _MOUNTINFO_ESC.items():
        s = s.replace(k, v)
    return s


def _mounts() -> list[tuple[str, str]]:
    """(mount point, per-mount options) from /proc/self/mountinfo, in mount order."""
    out = []
    with open("/proc/self/mountinfo") as fh:
        for line in fh:
            parts = line.split()
            if len(parts) > 5:
                out.append((_unescape(parts[4]), parts[5]))
    return out


_OPT_FLAGS = {
    "ro": MS_RDONLY,
    "nosuid": MS_NOSUID,
    "nodev": MS_NODEV,
    "noexec": MS_NOEXEC,
    "noatime": MS_NOATIME,
    "nodiratime": MS_NODIRATIME,
    "relatime": MS_RELATIME,
    "strictatime": MS_STRICTATIME,
}


def _needed_paths() -> list[str]:
    """Paths that must stay visible: the stdlib on sys.path (jobs import lazily) and the interpreter binary."""
    paths = set()
    for p in list(sys.path) + [os.path.dirname(os.__file__), os.path.dirname(os.path.realpath(sys.executable))]:
        if p and os.path.exists(p):
            for q in (os.path.abspath(p), os.path.realpath(p)):
                paths.add(os.path.normpath(q))
    return sorted(paths)


def _under(path: str, parent: str) -> bool:
    return path == parent or path.startswith(parent.rstrip("/") + "/")


def _overmount(directory: str, keep: list[str], extra_dirs: tuple[str, ...] = ()) -> None:
    """Hide ``directory`` behind an empty tmpfs, keeping the named children (bind-mounted back in)."""
    fds = {}
    try:
        for child in keep:
            fds[child] = os.open(os.path.join(directory, child), os.O_PATH | os.O_CLOEXEC)
        _mount("tmpfs", directory, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=1m,nr_inodes=1024")
        for child, fd in fds.items():
            target = os.path.join(directory, child)
            if os.path.isdir(f"/proc/self/fd/{fd}"):
                os.mkdir(target, 0o755)
            else:
                os.close(os.open(target, os.O_CREAT | os.O_WRONLY, 0o644))
            _mount(f"/proc/self/fd/{fd}", target, None, MS_BIND | MS_REC)
        for d in extra_dirs:
            os.mkdir(os.path.join(directory, d), 0o755)
    finally:
        for fd in fds.values():
            os.close(fd)


def _first_blocked(path: str) -> tuple[str, str] | None:
    """The first directory on ``path`` that a stranger (other uid, no groups) cannot search, and its child.

    The last component itself is reported with an empty child (it cannot be fixed by over-mounting).
    """
    parts = [p for p in path.split("/") if p]
    cur = "/"
    for part in parts + [""]:
        try:
            st = os.stat(cur)
        except OSError:
            return None
        if not (st.st_mode & 0o001):
            return cur, part
        cur = os.path.join(cur, part)
    return None


def setup_filesystem(info: dict, uid_drop: bool, workers: int, cfg: dict) -> str:
    """Build the jobs' view of the file system in the (already private) mount namespace; return the work root."""
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    needed = _needed_paths()
    masks = ["/var/tmp", "/dev/shm", "/run", "/root", "/home", "/tmp"]
    try:
        import pwd

        masks.append(pwd.getpwuid(os.getuid()).pw_dir)
    except (KeyError, ImportError):
        pass
    done = set()
    for d in masks:
        d = os.path.realpath(d)
        if d in done or d == "/" or not os.path.isdir(d) or any(_under(d, n) for n in needed):
            continue
        keep = sorted({n[len(d) :].lstrip("/").split("/")[0] for n in needed if _under(n, d) and n != d})
        _overmount(d, keep, extra_dirs=("sandbox",) if d == "/tmp" else ())
        done.add(d)
    if uid_drop:  # make the stdlib searchable for a stranger uid, hiding whatever else those dirs hold
        for n in needed:
            for _ in range(32):
                blocked = _first_blocked(n)
                if blocked is None or not blocked[1]:
                    break
                _overmount(blocked[0], [blocked[1]])
    if info["pid"]:  # a /proc that shows only this pid namespace (mounted before the read-only pass)
        for opts in ("hidepid=2", None):
            try:
                _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, opts)
                info["proc"] = True
                break
            except OSError:
                continue
    root_ro = False
    for target, opts in _mounts():
        if _under(target, "/proc"):
            continue
        flags = MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID
        for o in opts.split(","):
            flags |= _OPT_FLAGS.get(o, 0)
        try:
            _mount(None, target, None, flags)
            root_ro = root_ro or target == "/"
        except OSError:
            pass
    info["readonly_root"] = root_ro
    if "/tmp" not in done:
        raise OSError(errno.ENOENT, "no private /tmp for the job directories")
    workroot = "/tmp/sandbox"
    size = workers * max(4 * cfg["max_file_bytes"], 16 << 20)
    _mount(
        "tmpfs",
        workroot,
        "tmpfs",
        MS_NOSUID | MS_NODEV | MS_NOEXEC,
        f"mode=0711,size={size},nr_inodes={4096 * workers}",
    )
    return workroot


# ------------------------------------------------------------------------------------------- job child
_NETWORK_EVENTS = frozenset(
    {
        "socket.__new__",
        "socket.connect",
        "socket.bind",
        "socket.sendto",
        "socket.sendmsg",
        "socket.getaddrinfo",
        "os.exec",
        "os.posix_spawn",
        "os.spawn",
        "os.system",
        "os.startfile",
        "subprocess.Popen",
        "pty.spawn",
        "ctypes.dlopen",
        "ctypes.dlsym",
        "ctypes.call_function",
        "ctypes.cdata",
    }
)
_BLOCKED_IMPORTS = frozenset({"_posixsubprocess", "_ctypes", "ctypes", "_socket", "socket"})


def _deny_network(event: str, args) -> None:
    if event in _NETWORK_EVENTS or (event == "import" and args and args[0] in _BLOCKED_IMPORTS):
        raise PermissionError(f"network and process spawning are disabled in this sandbox ({event})")


class _Limits:
    __slots__ = ("cpu", "memory", "nproc", "fsize", "nofile")

    def __init__(self, cfg: dict, nproc: int):
        self.cpu = cfg["cpu_seconds"]
        self.memory = cfg["memory_mb"] << 20
        self.nproc = nproc
        self.fsize = cfg["max_file_bytes"]
        self.nofile = cfg["max_open_files"]


def _apply_limits(lim: _Limits, file_size: bool = True) -> None:
    setl = resource.setrlimit
    setl(resource.RLIMIT_CORE, (0, 0))
    setl(resource.RLIMIT_CPU, (lim.cpu, lim.cpu + 1))
    setl(resource.RLIMIT_AS, (lim.memory, lim.memory))
    if file_size:
        setl(resource.RLIMIT_FSIZE, (lim.fsize, lim.fsize))
    setl(resource.RLIMIT_NOFILE, (lim.nofile, lim.nofile))
    if lim.nproc:
        setl(resource.RLIMIT_NPROC, (lim.nproc, lim.nproc))


def _record(phase: str, exc_type: str = "", exc_message: str = "", value=None, code: int = 0) -> bytes:
    return marshal.dumps((phase, exc_type, exc_message[:2000], value, code))


# The harness's result record on the job's result channel (fd 3): ``marshal((phase, exc_type, exc_message, value,
# exit code))``, then a trailer: its length and RECORD_MAGIC. The server reads it from the *end* of what the job's own
# process wrote, so bytes written before it (by the job's code, to fd 3 or through any copy of it) cannot shift it.
RECORD_MAGIC = b"\x00sbx-rec"
_TRAILER = struct.Struct("<I10s")
RECORD_PHASES = ("ok", "syntax", "exception", "exit", "memory", "unrepresentable", "setup")
_MAX_RECORD_TRIES = 8  # records looked at, from the end, before the server gives up on a job's channel


def frame_record(rec: bytes) -> bytes:
    """``rec`` (a marshalled record) as the harness writes it to the result channel."""
    return rec + _TRAILER.pack(len(rec), RECORD_MAGIC)


def parse_result(buf: bytes, status: int | None, has_call: bool):
    """The harness's record in ``buf`` (everything the job's own process wrote to its result channel), or ``None``.

    Only a record the harness could have written counts: the latest well-formed one, from the end, whose exit code
    is the job's exit ``status`` (``None``: killed by a signal, so never an ``ok`` record), whose phase is known, and
    which holds a value only when the job had a call. A job can write anything to its channel; it cannot make the
    server take a record that disagrees with how its own process ended.

    >>> rec = _record("exception", "ValueError", "real", code=1)
    >>> forged = frame_record(_record("ok", value="'forged'"))
    >>> parse_result(forged + frame_record(rec), 1, True)
    ('exception', 'ValueError', 'real', None, 1)
    >>> parse_result(forged, 1, True) is None  # the forged "ok" disagrees with exit status 1
    True
    """
    end, size = len(buf), _TRAILER.size
    for _ in range(_MAX_RECORD_TRIES):
        i = buf.rfind(RECORD_MAGIC, 0, end)
        if i < 4:
            return None
        end = i + len(RECORD_MAGIC) - 1  # the next try looks at an earlier trailer
        (n,) = _HEADER.unpack_from(buf, i - 4)
        start = i - 4 - n
        if start < 0 or buf[i - 4 : i - 4 + size] != _TRAILER.pack(n, RECORD_MAGIC):
            continue
        try:
            rec = marshal.loads(buf[start : i - 4])
        except (ValueError, EOFError, TypeError):
            continue
        if not (isinstance(rec, tuple) and len(rec) == 5):
            continue
        phase, exc_type, exc_message, value, code = rec
        if not (
            phase in RECORD_PHASES
            and type(exc_type) is str
            and type(exc_message) is str
            and (value is None or (type(value) is str and has_call))
            and type(code) is int
        ):
            continue
        if status is None:
            if phase != "ok":
                return rec
        elif code == status:
            return rec
    return None


def _receive_job(fd: int) -> bytes | None:
    """A warm child's job: the marshalled spec, read from ``fd`` until end of file (``None`` if there is none)."""
    chunks = []
    while True:
        b = os.read(fd, 1 << 16)
        if not b:
            break
        chunks.append(b)
    os.close(fd)
    return b"".join(chunks) if chunks else None


def _child(job: bytes | None, fds: tuple, workdir: str, uid: int, st: _ServerState) -> None:
    """Body of a forked job process: ``job`` is the marshalled ``(code, stdin, call, func)``, or ``None`` for a warm
    child, which reads it from fd 4. Never returns."""
    _write, _exit, _fstat = os.write, os._exit, os.fstat
    out_w, err_w, res_w, job_r = fds
    rfd = res_w
    channel = None
    _, stdout, stderr = st.stdio  # sys.stdin/stdout/stderr, bound to fds 0, 1 and 2 in the zygote
    try:
        if not st.use_pidfd:
            signal.set_wakeup_fd(-1)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.setsid()
        os.nice(JOB_NICE)
        os.dup2(st.devnull, 0)
        os.dup2(out_w, 1)
        os.dup2(err_w, 2)
        os.dup2(res_w, 3)
        rfd = 3
        chan = _fstat(3)
        channel = (chan.st_dev, chan.st_ino)  # to find the channel again if the job moves fd 3 away
        if job_r >= 0:
            os.dup2(job_r, 4)
        os.closerange(4 if job_r < 0 else 5, st.max_fd + 1)
        os.mkdir(workdir, 0o700)
        if uid:
            os.chown(workdir, uid, uid)
        os.chdir(workdir)
        _apply_limits(st.limits, file_size=False)
        if uid:
            os.setgroups([])
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)
        if job is None:  # warm child: everything above happened before the job existed
            job = _receive_job(4)
            if job is None:
                _exit(0)
        code, stdin, call, func = marshal.loads(job)
        if stdin:
            sfd = os.memfd_create("stdin", 0)
            os.write(sfd, stdin)
            os.lseek(sfd, 0, os.SEEK_SET)
            os.dup2(sfd, 0)
            os.close(sfd)
        resource.setrlimit(resource.RLIMIT_FSIZE, (st.limits.fsize, st.limits.fsize))  # after writing stdin
        if st.audit:
            sys.addaudithook(_deny_network)
        sys.modules.pop("_socket", None)  # the server's; jobs import their own (or are refused in audit-hook mode)
    except BaseException as e:  # setup failed: report and die
        try:
            _write(rfd, frame_record(_record("setup", type(e).__name__, str(e), code=70)))
        finally:
            _exit(70)
    rec = _run_user_code(code, call, func, stdout, stderr, st.max_value)
    try:
        if "threading" in sys.modules:  # like `python -c`: wait for non-daemon threads, then atexit hooks
            sys.modules["threading"]._shutdown()
        atexit._run_exitfuncs()
    except BaseException:
        pass
    for stream in (stdout, stderr):
        try:
            stream.flush()
        except BaseException:
            pass
    try:
        view = memoryview(frame_record(rec))
        out = _channel_fd(channel, st.limits.nofile, _fstat)
        while view and out >= 0:
            view = view[_write(out, view) :]
    except BaseException:
        pass
    _exit(marshal.loads(rec)[4])


def _channel_fd(channel, nofile: int, fstat) -> int:
    """The job's result channel: fd 3, or wherever the job moved it (``os.dup``/``dup2`` games); -1 if it is gone."""
    for fd in range(max(nofile, 4)):
        try:
            st = fstat(3 if fd == 0 else fd)
        except OSError:
            continue
        if (st.st_dev, st.st_ino) == channel:
            return 3 if fd == 0 else fd
    return -1


def format_exception(e: BaseException, source: str, skip: int = 1) -> str:
    """A Python-style traceback of ``e`` (source lines shown for ``<sandbox>`` frames), without importing the
    ``traceback`` module, which costs a job ~10 ms. ``skip`` drops the harness's own outermost frames."""
    tb = e.__traceback__
    for _ in range(skip):
        if tb is not None:
            tb = tb.tb_next
    lines = source.splitlines()
    out = ["Traceback (most recent call last):\n"] if tb is not None else []
    last, repeats = None, 0
    while tb is not None:
        co = tb.tb_frame.f_code
        key = (co.co_filename, tb.tb_lineno, co.co_name)
        if key == last:
            repeats += 1
        else:
            if repeats > 3:
                out.append(f"  [Previous line repeated {repeats - 3} more times]\n")
            last, repeats = key, 1
        if repeats <= 3:
            out.append(f'  File "{key[0]}", line {key[1]}, in {key[2]}\n')
            if key[0] == "<sandbox>" and 0 < key[1] <= len(lines):
                out.append(f"    {lines[key[1] - 1].strip()}\n")
        tb = tb.tb_next
    if repeats > 3:
        out.append(f"  [Previous line repeated {repeats - 3} more times]\n")
    name, msg = _exc_text(e)
    out.append(f"{name}: {msg}\n" if msg else f"{name}\n")
    return "".join(out)


def _print_exception(e: BaseException, stderr, source: str) -> None:
    try:
        stderr.write(format_exception(e, source))
    except BaseException:
        pass


def _exc_text(e: BaseException) -> tuple[str, str]:
    try:
        msg = str(e)
    except BaseException:
        msg = "<unprintable exception>"
    return type(e).__name__, msg


def _run_user_code(code: bytes, call, func: str, stdout, stderr, max_value: int) -> bytes:
    try:
        text = code.decode("utf-8")
        obj = compile(text, "<sandbox>", "exec", dont_inherit=True)
    except (SyntaxError, ValueError, UnicodeDecodeError, MemoryError, RecursionError) as e:
        t, m = _exc_text(e)
        stderr.write(f"{t}: {m}\n")
        return _record("syntax", t, m, code=1)
    namespace = {"__name__": "__main__", "__builtins__": builtins}
    phase, value = "ok", None
    try:
        exec(obj, namespace)
        if call is not None:
            phase = "call"
            fn = namespace.get(func)
            if not callable(fn):
                raise NameError(f"name {func!r} is not defined (or not callable)")
            args, kwargs = call
            result = fn(*args, **kwargs)
            phase = "repr"
            value = repr(result)
            if len(value) > max_value:
                return _record(
                    "unrepresentable", "ValueError", f"repr of the return value is {len(value)} chars", code=1
                )
    except SystemExit as e:
        c = e.code
        if c is None or c is False:
            code_ = 0
        elif isinstance(c, int) and not isinstance(c, bool):
            code_ = c & 0xFF
        else:
            try:
                stderr.write(f"{c}\n")
            except BaseException:
                pass
            code_ = 1
        if phase != "ok" or (call is not None and value is None):
            return _record("exit", "SystemExit", f"SystemExit({c!r}) before {func}() returned", code=code_ or 1)
        return _record(
            "ok" if code_ == 0 else "exit", "SystemExit" if code_ else "", str(c) if code_ else "", code=code_
        )
    except MemoryError as e:
        _print_exception(e, stderr, text)
        return _record("memory", "MemoryError", str(e), code=1)
    except BaseException as e:
        _print_exception(e, stderr, text)
        t, m = _exc_text(e)
        return _record("unrepresentable" if phase == "repr" else "exception", t, m, code=1)
    return _record("ok", value=value)


# ------------------------------------------------------------------------------------------------ server
class _BecomeJob(BaseException):
    """Raised in a freshly forked child to unwind out of the server loop before it runs its job."""


class _Job:
    __slots__ = (
        "jid",
        "spec",
        "pid",
        "start",
        "deadline",
        "fds",
        "out",
        "err",
        "res",
        "truncated",
        "timed_out",
        "output_limit",
        "workdir",
        "watched",
        "jobw",
        "proc_limit",
        "has_call",
    )


class _ServerState:
    def __init__(self, cfg: dict, info: dict, workroot: str, uid_base: int | None, nproc: int):
        self.cfg = cfg
        self.info = info
        self.workroot = workroot
        self.uid_base = uid_base
        self.limits = _Limits(cfg, nproc)
        self.audit = not info["net"]
        self.devnull = os.open(os.devnull, os.O_RDWR)
        # The jobs' sys.stdin/stdout/stderr, bound to fds 0/1/2 (which each job points at its stdin and pipes). Set
        # here, once, rather than in every job: in a fresh child each write to an inherited page is a copy-on-write
        # fault, and those dominate a job's cost. (The zygote's own fds 0/1 are /dev/null and 2 is the host's stderr.)
        self.stdio = (
            open(0, encoding="utf-8", errors="surrogateescape", closefd=False),
            open(1, "w", encoding="utf-8", errors="backslashreplace", closefd=False),
            open(2, "w", buffering=1, encoding="utf-8", errors="backslashreplace", closefd=False),
        )
        sys.stdin, sys.stdout, sys.stderr = self.stdio
        sys.__stdin__, sys.__stdout__, sys.__stderr__ = self.stdio
        self.use_pidfd = _pidfd_works() and not cfg.get("test_no_pidfd")  # test_*: exercise the legacy-kernel paths
        self.max_fd = 64
        self.max_value = cfg["max_output_bytes"]
        self.counter = 0
        self.stats = {"jobs": 0, "forks": 0, "strays_killed": 0, "timeouts": 0}


_kill_pid = _ps.kill_group  # SIGKILL a job and its process group (every job child leads its own session)


def _pidfd_works() -> bool:
    try:
        os.close(os.pidfd_open(os.getpid()))
        return True
    except (AttributeError, OSError):
        return False


def _count_own_tasks(uid: int) -> int:
    n = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}").st_uid == uid:
                    n += len(os.listdir(f"/proc/{entry}/task"))
            except OSError:
                pass
    return n


class Server:
    """Z's event loop: reads jobs from the host, runs up to ``workers`` at a time, reports results."""

    def __init__(self, cfg: dict, info: dict, ctrl_in: int, ctrl_out: int, workroot: str, uid_base, nproc: int):
        self.st = _ServerState(cfg, info, workroot, uid_base, nproc)
        self.cfg = cfg
        self.ctrl_in, self.ctrl_out = ctrl_in, ctrl_out
        self.ep = select.epoll()
        self.fdmap: dict[int, tuple[_Job, str]] = {}  # job pipe fd -> (job, "out" | "err" | "res")
        self.queue: list = []
        self.qhead = 0
        self.running: dict[int, _Job] = {}
        self.warm: dict[int, _Job] = {}  # pre-forked children waiting for a job
        self.inbuf = bytearray()
        self.children_file: str | None = f"/proc/self/task/{os.getpid()}/children"
        if not os.path.exists(self.children_file) or cfg.get("test_no_children_file"):
            self.children_file = None  # kernel without CONFIG_PROC_CHILDREN: scan /proc instead
        self.wake_r = -1
        if not self.st.use_pidfd:  # kernel < 5.3: learn about exits from SIGCHLD through a wakeup pipe
            wake_r, wake_w = os.pipe()
            os.set_blocking(wake_r, False)
            os.set_blocking(wake_w, False)
            signal.signal(signal.SIGCHLD, lambda *_: None)
            signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
            self.wake_r = wake_r
            self.ep.register(wake_r, select.EPOLLIN)
        os.set_blocking(ctrl_in, False)
        self.ep.register(ctrl_in, select.EPOLLIN)
        self.closing = False
        self.resweep = False  # strays were killed: sweep again soon (their children become ours)
        # Root without a per-job uid: the kernel never enforces RLIMIT_NPROC for root, so count each job's
        # processes every POLICE_INTERVAL instead and kill a job that exceeds max_processes.
        self.police = nproc == 0
        import _socket  # result channels: the kernel names the sender of every chunk (SCM_CREDENTIALS)

        self.sock = _socket
        self.cred_space = _socket.CMSG_SPACE(12)  # struct ucred

    # -- host messages
    def _read_ctrl(self) -> None:
        while True:
            try:
                b = os.read(self.ctrl_in, 1 << 20)
            except BlockingIOError:
                break
            if not b:
                self.closing = True
                break
            self.inbuf += b
        buf = self.inbuf
        pos = 0
        while len(buf) - pos >= 4:
            (n,) = _HEADER.unpack_from(buf, pos)
            if len(buf) - pos - 4 < n:
                break
            msg = marshal.loads(bytes(buf[pos + 4 : pos + 4 + n]))
            pos += 4 + n
            self._handle(msg)
        del buf[:pos]

    def _handle(self, msg) -> None:
        kind = msg[0]
        if kind == "run":  # ("run", job id, timeout, marshalled (code, stdin, call, func), has call), spec left packed
            self.queue.append(msg[1:])
        elif kind == "stats":
            stats = dict(self.st.stats, running=len(self.running), warm=len(self.warm), warm_pids=sorted(self.warm))
            send_msg(self.ctrl_out, ("stats", msg[1], stats))
        elif kind == "quit":
            self.closing = True

    # -- jobs
    def _fork(self, spec) -> _Job | None:
        """Fork a job child: for ``spec``, or a warm one (``spec`` None) that waits for its job on a pipe."""
        st = self.st
        st.counter += 1
        fds = []
        try:
            for i in range(3 if spec is not None else 4):
                if i == 2:  # the result channel: a socket, so that the server learns which process wrote each byte
                    r, w = self.sock.socketpair(self.sock.AF_UNIX, self.sock.SOCK_STREAM)
                    r.setsockopt(self.sock.SOL_SOCKET, self.sock.SO_PASSCRED, 1)
                    fds += [r.detach(), w.detach()]
                else:
                    fds += os.pipe()
        except OSError:
            for fd in fds:
                os.close(fd)
            return None
        st.max_fd = max(st.max_fd, *fds)
        uid = 0
        if st.uid_base is not None:
            uid = st.uid_base + st.counter % 256
        workdir = f"{st.workroot}/{st.counter:x}-{os.urandom(6).hex()}"
        job_r = fds[6] if spec is None else -1
        try:
            pid = os.fork()
        except OSError:
            for fd in fds:
                os.close(fd)
            return None
        if pid == 0:  # leave the server's frames (their locals lead to other jobs' code and output) first
            raise _BecomeJob(spec, (fds[1], fds[3], fds[5], job_r), workdir, uid)
        st.stats["forks"] += 1
        job = _Job()
        job.jid, job.spec, job.pid, job.workdir = None, spec, pid, workdir
        job.out, job.err, job.res = bytearray(), bytearray(), bytearray()
        job.truncated = job.timed_out = job.output_limit = job.proc_limit = False
        job.has_call = False
        job.fds = {}
        job.jobw = -1
        if spec is None:
            os.close(job_r)
            job.jobw = fds[7]
        for i, kind in ((0, "out"), (2, "err"), (4, "res")):
            os.close(fds[i + 1])
            os.set_blocking(fds[i], False)
            job.fds[fds[i]] = kind
            self.fdmap[fds[i]] = (job, kind)
            self.ep.register(fds[i], select.EPOLLIN)
        job.watched = False
        if st.use_pidfd:  # readable once the child exits
            try:
                pfd = os.pidfd_open(pid)
            except OSError:  # e.g. out of file descriptors: poll for this child's exit instead
                pass
            else:
                job.fds[pfd] = "pid"
                self.fdmap[pfd] = (job, "pid")
                self.ep.register(pfd, select.EPOLLIN)
                job.watched = True
        else:
            job.watched = True  # SIGCHLD
        return job

    def _start(self, jid: int, timeout: float, spec: bytes, has_call: bool) -> None:
        """Run a job: hand it to a warm child when one is ready and the job fits in a pipe, else fork for it."""
        job = None
        if self.warm and len(spec) <= _PIPE_CAPACITY:
            _, job = self.warm.popitem()
            try:
                os.write(job.jobw, spec)  # fits in the empty pipe: does not block
            except OSError:  # the warm child died; it is reaped as a stray
                self._discard_warm(job)
                job = None
            else:
                os.close(job.jobw)
                job.jobw = -1
                job.spec = spec
        if job is None:
            job = self._fork(spec)
            if job is None:
                self._report_fail(jid, "sandbox_error", "could not fork a job process (out of processes or files?)")
                return
        self.st.stats["jobs"] += 1
        job.jid, job.has_call = jid, bool(has_call)
        job.start = time.monotonic()
        job.deadline = job.start + timeout
        self.running[job.pid] = job

    def _prefork(self) -> None:
        """Keep warm children ready while there is spare capacity, so that a job does not wait for fork + setup."""
        while len(self.running) + len(self.warm) < self.cfg["workers"]:
            job = self._fork(None)
            if job is None:
                return
            self.warm[job.pid] = job

    def _discard_warm(self, job: _Job) -> None:
        if job.jobw >= 0:
            os.close(job.jobw)  # end of file without a job: the warm child exits
            job.jobw = -1
        for fd in list(job.fds):
            self._close_fd(job, fd)
        self._remove_workdir(job.workdir)

    def _kill(self, job: _Job) -> None:
        _kill_pid(job.pid)

    def _drain(self, job: _Job, fd: int, kind: str) -> None:
        if kind == "res":
            self._drain_result(job, fd)
            return
        limit = self.cfg["max_output_bytes"]
        buf = getattr(job, kind)
        while True:
            try:
                b = os.read(fd, 1 << 16)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                b = b""
            if not b:
                self._close_fd(job, fd)
                return
            room = limit - len(buf)
            if len(b) > room:
                buf += b[: max(room, 0)]
                job.truncated = True
                if not job.output_limit:
                    job.output_limit = True
                    self._kill(job)
            else:
                buf += b

    def _drain_result(self, job: _Job, fd: int) -> None:
        """Read the job's result channel, keeping only bytes that the job's own process wrote (the kernel tells which
        process sent each chunk), and of those only the last ``max_output_bytes`` + 64 KiB: the harness's record is
        the last thing that process writes. Children of the job, which inherit the channel, are not heard."""
        sock, cap = self.sock, self.cfg["max_output_bytes"] + (1 << 16)
        conn = sock.socket(fileno=fd)
        try:
            while True:
                try:
                    data, anc, _, _ = conn.recvmsg(1 << 16, self.cred_space)
                except (BlockingIOError, InterruptedError):
                    return
                except OSError:
                    data, anc = b"", []
                if not data:
                    conn.detach()
                    self._close_fd(job, fd)
                    return
                sender = None
                for level, kind, cdata in anc:
                    if level == sock.SOL_SOCKET and kind == sock.SCM_CREDENTIALS and len(cdata) >= 4:
                        sender = int.from_bytes(cdata[:4], sys.byteorder, signed=True)
                if sender != job.pid:
                    continue
                buf = job.res
                buf += data
                if len(buf) > cap:
                    del buf[: len(buf) - cap]
        finally:
            conn.detach()

    def _close_fd(self, job: _Job, fd: int) -> None:
        self.ep.unregister(fd)
        del self.fdmap[fd]
        del job.fds[fd]
        os.close(fd)

    def _reap(self) -> None:
        reaped = False
        while True:
            try:
                info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:
                break
            if info is None or info.si_pid == 0:
                break
            pid = info.si_pid
            job = self.running.pop(pid, None)
            warm = self.warm.pop(pid, None)
            if warm is not None:  # a warm child died before it got a job (killed from outside, or shut down)
                self._discard_warm(warm)
            if job is not None:  # kill the rest of its group while the zombie still pins the pgid
                try:
                    os.killpg(pid, signal.SIGKILL)
                except OSError:
                    pass
                # read the result channel for the last time while the zombie still holds its pid, so that no other
                # process can ever be taken for it; later bytes are not read
                for fd, kind in list(job.fds.items()):
                    if kind == "res":
                        self._drain_result(job, fd)
                        if fd in job.fds:
                            self._close_fd(job, fd)
            try:
                _, status, ru = os.wait4(pid, 0)
            except ChildProcessError:
                continue
            reaped = True
            if job is not None:
                self._finish(job, status, ru)
        if reaped:
            self._sweep()

    def _sweep(self) -> None:
        """Kill every child of ours that is not a running job: orphans of finished jobs."""
        self.resweep = False
        for pid in self._children():
            if pid not in self.running and pid not in self.warm:
                self.resweep = True
                self.st.stats["strays_killed"] += 1
                _kill_pid(pid)

    def _children_by_scan(self) -> list[int]:
        me, out = os.getpid(), []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/stat", "rb") as fh:
                        stat = fh.read()
                    if int(stat[stat.rindex(b")") + 2 :].split()[1]) == me:
                        out.append(int(entry))
                except (OSError, ValueError):
                    pass
        return out

    def _finish(self, job: _Job, status: int, ru) -> None:
        for fd, kind in list(job.fds.items()):
            if kind != "pid":
                self._drain(job, fd, kind)
        for fd in list(job.fds):
            self._close_fd(job, fd)
        wall = time.monotonic() - job.start
        self._remove_workdir(job.workdir)
        sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else 0
        returncode = -sig if sig else os.WEXITSTATUS(status)
        rec = parse_result(bytes(job.res), None if sig else returncode, job.has_call) if job.res else None
        exc_type = exc_message = ""
        value = None
        memory = False
        timed_out = job.timed_out
        if self.closing and (sig or rec is None):
            reason, exc_type, exc_message = "closed", "SandboxError", "the sandbox was closed while the job ran"
        elif job.timed_out:
            reason = "timeout"
            self.st.stats["timeouts"] += 1
        elif sig == signal.SIGXCPU:
            reason, timed_out = "cpu_limit", True
        elif job.output_limit:
            reason = "output_limit"
        elif job.proc_limit:
            reason, exc_type = "process_limit", "BlockingIOError"
            exc_message = f"more than {self.cfg['max_processes']} processes"
        elif rec is not None:
            phase, exc_type, exc_message, value, _code = rec
            reason = {
                "ok": "",
                "syntax": "syntax_error",
                "exception": "exception",
                "exit": "exit",
                "memory": "memory",
                "unrepresentable": "unrepresentable",
                "setup": "sandbox_error",
            }.get(phase, "sandbox_error")
            memory = phase == "memory"
            if sig and reason == "":
                reason = "signal"
        elif sig:
            reason, exc_type = "signal", signal.Signals(sig).name if sig in signal.valid_signals() else str(sig)
            exc_message = f"killed by signal {exc_type}"
            # RLIMIT_AS failures inside C code often end as SIGSEGV/SIGABRT near the limit
            memory = ru.ru_maxrss * 1024 >= 0.9 * self.st.limits.memory
        else:
            reason, exc_type = "exit", "SystemExit"
            exc_message = f"process exited with status {returncode} before finishing"
        ok = reason == ""
        out = bytes(job.out).decode("utf-8", "replace")
        err = bytes(job.err).decode("utf-8", "replace")
        result = (
            ok,
            reason,
            out,
            err,
            exc_type,
            exc_message,
            value,
            returncode,
            timed_out,
            memory,
            wall,
            job.truncated,
        )
        self._send(("done", job.jid, result))

    def _remove_workdir(self, path: str) -> None:
        try:
            os.rmdir(path)
            return
        except FileNotFoundError:
            return
        except OSError:
            pass
        import shutil

        def onerror(fn, p, _exc):
            try:
                os.chmod(os.path.dirname(p) or p, 0o700)
                os.chmod(p, 0o700)
                fn(p)
            except OSError:
                pass

        if sys.version_info >= (3, 12):
            shutil.rmtree(path, onexc=onerror)
        else:
            shutil.rmtree(path, onerror=onerror)

    def _report_fail(self, jid: int, reason: str, message: str) -> None:
        self._send(
            ("done", jid, (False, reason, "", "", "SandboxError", message, None, None, False, False, 0.0, False))
        )

    def _send(self, msg) -> None:
        try:
            send_msg(self.ctrl_out, msg)
        except OSError:
            self.closing = True

    def serve(self) -> None:
        workers = self.cfg["workers"]
        poll, fdmap, ctrl_in, wake_r = self.ep.poll, self.fdmap, self.ctrl_in, self.wake_r
        while not (self.closing and not self.running):
            while len(self.running) < workers and self.qhead < len(self.queue) and not self.closing:
                jid, timeout, spec, has_call = self.queue[self.qhead]
                self.queue[self.qhead] = None
                self.qhead += 1
                self._start(jid, timeout, spec, has_call)
            if self.qhead > 1024 and self.qhead * 2 > len(self.queue):
                del self.queue[: self.qhead]
                self.qhead = 0
            if self.closing:
                for pid, job in list(self.warm.items()):
                    del self.warm[pid]
                    self._discard_warm(job)
                    _kill_pid(pid)
            elif self.qhead == len(self.queue):  # idle capacity: get children ready for the next jobs
                self._prefork()
            timeout = None
            if self.running:
                now = time.monotonic()
                pending = [j.deadline for j in self.running.values() if not j.timed_out]
                timeout = max(0.0, min(pending) - now) if pending else 0.05
            if self.closing:
                for job in self.running.values():
                    self._kill(job)
                timeout = 0.05
            if self.resweep:
                timeout = 0.01 if timeout is None else min(timeout, 0.01)
            unwatched = False
            if self.running:  # exits are events; polling too is a backstop (and the way for an unwatched job)
                unwatched = not all(j.watched for j in self.running.values())
                cap = 0.05 if unwatched else 1.0
                timeout = cap if timeout is None else min(timeout, cap)
            if self.police and self.running:
                timeout = POLICE_INTERVAL if timeout is None else min(timeout, POLICE_INTERVAL)
            events = poll(-1 if timeout is None else timeout)
            if (unwatched or not events) and self.running:
                self._reap()
            for fd, _ in events:
                if fd == ctrl_in:
                    self._read_ctrl()
                elif fd == wake_r:
                    try:
                        while os.read(wake_r, 4096):
                            pass
                    except BlockingIOError:
                        pass
                    self._reap()
                elif fd in fdmap:
                    job, kind = fdmap[fd]
                    if kind == "pid":
                        self._reap()
                    else:
                        self._drain(job, fd, kind)
            if self.resweep:
                self._reap()
                self._sweep()
            if self.police and self.running:
                self._police()
            now = time.monotonic()
            for job in self.running.values():
                if not job.timed_out and now >= job.deadline:
                    job.timed_out = True
                    self._kill(job)  # its exit arrives as an event (pidfd or SIGCHLD) and is reaped then
        for _ in range(50):  # without a pid namespace nothing kills orphans for us: sweep until none are left
            self._sweep()
            time.sleep(0.01)
            self._reap()
            if self.st.info["pid"] or not self._children():
                break

    def _police(self) -> None:
        """Kill jobs whose process tree outgrew max_processes (only where RLIMIT_NPROC does not hold), and orphans."""
        limit = self.cfg["max_processes"]
        for job in self.running.values():
            if job.proc_limit or job.timed_out:
                continue
            count, todo = 1, [job.pid]
            while todo and count <= limit:
                kids = self._children_of(todo.pop())
                count += len(kids)
                todo += kids
            if count > limit:
                job.proc_limit = True
                self._kill(job)
        self._sweep()

    def _children_of(self, pid: int) -> list[int]:
        try:
            fd = os.open(f"/proc/{pid}/task/{pid}/children", os.O_RDONLY)
        except OSError:
            return []
        try:
            return [int(p) for p in os.read(fd, 1 << 16).split()]
        except OSError:
            return []
        finally:
            os.close(fd)

    def _children(self) -> list[int]:
        if not self.children_file:
            return self._children_by_scan()
        try:
            fd = os.open(self.children_file, os.O_RDONLY)
        except OSError:
            return []
        try:
            data = os.read(fd, 1 << 16)
        finally:
            os.close(fd)
        return [int(p) for p in data.split()]


# -------------------------------------------------------------------------------------------------- main
def _preload(modules=PRELOAD) -> list[str]:
    """Import ``modules`` (those that exist); return the ones that failed."""
    import _ast  # noqa: F401  (without it every job's compile() re-creates the AST types: ~3 ms a job)
    import importlib

    failed = []
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception:
            failed.append(name)
    import _sitebuiltins  # `exit()` / `quit()` exist in normal interpreters (added by site, which -S skips)

    builtins.exit = _sitebuiltins.Quitter("exit", "Ctrl-D (i.e. EOF)")
    builtins.quit = _sitebuiltins.Quitter("quit", "Ctrl-D (i.e. EOF)")
    return failed


def _prepare_job_state() -> None:
    """What every job inherits, done once in the zygote instead of once per job."""
    os.environ.clear()  # jobs get an empty environment
    sys.argv[:] = ["<sandbox>"]
    atexit._clear()
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # file size limit -> EFBIG instead of a kill


def _zygote(cfg: dict, info: dict, ctrl_in: int, ctrl_out: int, outer_pid: int) -> None:
    in_pidns = info["pid"]
    _ps.die_with_parent()
    if (os.getppid() == 0) != in_pidns and os.getppid() != outer_pid:
        os._exit(1)
    if not in_pidns:
        _prctl(PR_SET_CHILD_SUBREAPER, 1)
    root = info["root"]
    uid_drop = root and not cfg.get("test_no_uid_drop")  # test_*: produce the weaker modes on purpose
    if uid_drop and not info["mount"]:
        # without a private mount namespace the stdlib must already be searchable by a stranger uid
        uid_drop = all(_first_blocked(p) is None for p in _needed_paths())
    info["uid_drop"] = uid_drop
    workroot = own_workroot = None
    if info["mount"]:
        try:
            workroot = setup_filesystem(info, uid_drop, cfg["workers"], cfg)
        except OSError as e:
            info["mount_error"] = str(e)
    if workroot is None:
        import tempfile

        workroot = own_workroot = tempfile.mkdtemp(prefix="sandbox-")
        os.chmod(workroot, 0o711)
    info["workroot"] = workroot
    _prctl(PR_SET_NO_NEW_PRIVS, 1)  # exec of setuid binaries grants nothing, in every job
    if info["userns"]:
        try:
            _drop_all_caps()
            info["caps_dropped"] = True
        except OSError as e:
            info["caps_error"] = str(e)
    # process limit: exact per job with a fresh uid; approximate otherwise (RLIMIT_NPROC counts per user)
    nproc = cfg["max_processes"]
    if uid_drop:
        info["nproc"] = "per-job uid"
    elif info["userns"]:
        nproc = 2 + cfg["workers"] * cfg["max_processes"]
        info["nproc"] = "shared by the sandbox's jobs (user namespace)"
    elif not root:
        nproc = _count_own_tasks(os.getuid()) + cfg["workers"] * cfg["max_processes"]
        info["nproc"] = "approximate (counts all of this user's processes)"
    else:
        nproc = 0
        info["nproc"] = f"counted by the server every {POLICE_INTERVAL * 1000:.0f} ms (root without uid drop)"
    uid_base = UID_BASE + (outer_pid % (1 << 22)) * 256 if uid_drop else None
    info["network_mode"] = "namespace" if info["net"] else "audit-hook"
    try:
        _check_containment(cfg, info)
    except BaseException:
        if own_workroot:  # refused to serve: leave no empty work folder behind
            os.rmdir(own_workroot)
        raise
    os.chdir("/")
    try:
        os.nice(-JOB_NICE)
        info["server_priority"] = f"raised by {JOB_NICE}; jobs run at the caller's priority"
    except OSError:
        info["server_priority"] = f"caller's; jobs run {JOB_NICE} nicer"
    state = (cfg, info, ctrl_in, ctrl_out, workroot, own_workroot, uid_base, nproc)
    _exec_fresh(state)  # returns only if exec failed: then serve from this process
    info["fresh_interpreter"] = False
    _serve(*state)


UNSAFE_ENV = "REWARD_FNS_SANDBOX_UNSAFE"


def _check_containment(cfg: dict, info: dict) -> None:
    """Set ``info["contained"]``: whether a job is kept away from every process outside the sandbox (cannot signal,
    ptrace or write the memory of the caller, Ray, ...). That holds when each job runs under its own uid (root), or
    when jobs are unprivileged in a private pid namespace with its own /proc (user namespace). Otherwise refuse to
    serve, unless the caller opted in (``allow_unsafe_host_access``)."""
    privileged_jobs = info["root"] and not info["uid_drop"]  # jobs would run as host root
    hidden = info["pid"] and info.get("proc", False) and (not info["userns"] or info.get("caps_dropped", False))
    info["contained"] = bool(info["uid_drop"] or (hidden and not privileged_jobs))
    if info["contained"] or cfg.get("allow_unsafe_host_access"):
        return
    if privileged_jobs:
        what = "jobs would run as root, so a job could signal, ptrace or overwrite any process on this machine"
        fix = (
            "use isolation='auto' (a private mount namespace lets each job run under its own uid), or an interpreter "
            "whose stdlib other users can read (then each job gets its own uid without namespaces)"
        )
    else:
        what = (
            f"jobs would run as uid {os.getuid()}, the caller's own, without a private pid namespace, so a job could "
            "signal, ptrace or overwrite the memory of this user's other processes (the reward worker, Ray)"
        )
        fix = (
            "run as root (each job gets its own uid), or allow unprivileged user namespaces "
            "(sysctl user.max_user_namespaces>0, kernel.unprivileged_userns_clone=1) and use isolation='auto'"
        )
    raise RuntimeError(
        f"the sandbox cannot contain untrusted code here (isolation={cfg['isolation']!r}): {what}. Fix: {fix}. For "
        f"code you trust only, opt in with Sandbox(allow_unsafe_host_access=True) or {UNSAFE_ENV}=1."
    )


def _exec_fresh(state: tuple) -> None:
    """Replace this (setup-bloated) process by a fresh interpreter that only serves: the pid, namespaces, mounts,
    priority, no-new-privs, dropped capabilities and death signal all carry over; every fork then copies a heap of
    ~4 MB instead of ~8 MB. The script travels in a memfd, so its directory need not be visible here."""
    try:
        codes = []
        for path in (_ps.__file__, __file__):
            with open(os.path.abspath(path), "rb") as fh:  # compiled here: parsing would bloat the fresh heap
                codes.append(compile(fh.read(), path, "exec"))
        mfd = os.memfd_create("sandbox-zygote", 0)  # inheritable: no MFD_CLOEXEC
        os.write(mfd, marshal.dumps(tuple(codes)))
        for fd in state[2:4]:
            os.set_inheritable(fd, True)
        exe = os.path.realpath(sys.executable)  # the base interpreter of a venv: -S needs only its stdlib
        state_hex = marshal.dumps(state + (mfd,)).hex()
        os.execv(exe, [exe, "-s", "-S", "-B", "-c", _BOOT, str(mfd), state_hex])
    except (OSError, ValueError):
        pass


# The re-executed zygote's whole command line program: load the code objects of the shared process-server module and
# of this module from the memfd, and run them.
_BOOT = (
    "import marshal,os,sys;del sys.path[0];fd=int(sys.argv[1]);os.lseek(fd,0,0);"
    "p,c=marshal.loads(b''.join(iter(lambda:os.read(fd,1<<20),b'')));os.close(fd);"
    "m=sys.modules['_procserver']=type(sys)('_procserver');m.__file__='<procserver>';exec(p,m.__dict__);"
    "sys.argv[1:2]=['--serve'];exec(c,{'__name__':'__main__','__file__':'<sandbox-zygote>'})"
)


def _serve(cfg, info, ctrl_in, ctrl_out, workroot, own_workroot, uid_base, nproc) -> None:
    """The zygote proper: preload, freeze the heap, serve jobs; job children leave through here to run."""
    # not dumpable: a job of the same uid (user namespace) can neither ptrace nor read/write the memory of the server or
    # of another job (they inherit this); jobs with their own uid already differ from everyone else
    _prctl(PR_SET_DUMPABLE, 0)
    info["preload_failed"] = _preload(cfg.get("preload", PRELOAD))
    _prepare_job_state()
    import gc

    gc.collect()
    gc.freeze()  # keep the preloaded heap out of the children's copy-on-write faults
    server = Server(cfg, info, ctrl_in, ctrl_out, workroot, uid_base, nproc)
    send_msg(ctrl_out, ("ready", info))
    zygote, job = os.getpid(), None
    try:
        server.serve()
    except _BecomeJob as become:  # we are a new job child
        job = become.args
    finally:
        if own_workroot and os.getpid() == zygote:
            import shutil

            shutil.rmtree(own_workroot, ignore_errors=True)
    if job is not None:  # outside the except block: sys.exc_info() must not lead back to the server either
        st, server = server.st, None
        try:
            _child(*job, st)
        finally:
            os._exit(70)


def _serve_fresh(state_hex: str) -> None:
    """Entry point of the re-executed zygote (see :func:`_exec_fresh`)."""
    *state, _mfd = marshal.loads(bytes.fromhex(state_hex))  # the memfd was closed by _BOOT
    state[1]["fresh_interpreter"] = True
    try:
        _serve(*state)
    except BaseException as e:
        try:
            send_msg(state[3], ("error", f"{type(e).__name__}: {e}"))
        finally:
            os._exit(1)


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--serve":  # started by _BOOT
        _serve_fresh(sys.argv[2])
        return
    ctrl_in, ctrl_out = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    os.close(devnull)
    if sys.path and sys.path[0] == os.path.dirname(os.path.abspath(__file__)):
        del sys.path[0]
    cfg = read_msg(ctrl_in)
    if cfg is None:
        return
    _prctl(PR_SET_THP_DISABLE, 1)  # a copy-on-write fault in a job should copy 4 KiB, not a 2 MiB huge page
    info = setup_namespaces(cfg)
    outer_pid = os.getpid()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            _zygote(cfg, info, ctrl_in, ctrl_out, outer_pid)
        except BaseException as e:
            code = 1
            try:
                send_msg(ctrl_out, ("error", f"{type(e).__name__}: {e}"))
            except BaseException:
                pass
        os._exit(code)
    os.close(ctrl_in)
    os.close(ctrl_out)
    for sig in (signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            break
        except ChildProcessError:
            status = 0
            break
    sys.exit(os.waitstatus_to_exitcode(status) if status else 0)


if __name__ == "__main__":
    main()
