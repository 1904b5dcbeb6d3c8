"""A sacrificial host for the hostile corpus: test_sandbox_hostile.py starts it (as root, on a system interpreter
whose stdlib every uid can read) to run the corpus in an isolation mode that the pytest process itself must not
host. It enters a private mount namespace with small tmpfs over /tmp, /var/tmp and /dev/shm (what jobs of a mode
without a private view write there stays out of the machine's and goes away with this process), drops to the uid
it is given (a fresh, unused one: whatever a job of a weak mode does to "the caller's" processes and files hits
only this process, its server and the test's sacrificial victim), makes a Sandbox with the given options and runs
the corpus. It reports one JSON line per step on stdout, flushed at once: a job of a mode that cannot contain it
may kill this very process (kill(-1) as its uid), and the test then reads what came before.

    python _hostile_host.py '{"uid": 123, "gid": 123, "code": "/dir", "opts": {...}, "targets": {...}, ...}'
"""

from __future__ import annotations

import ctypes
import json
import os
import sys

CLONE_NEWNS, MS_REC, MS_PRIVATE = 0x00020000, 0x4000, 0x40000


def emit(**record) -> None:
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()


def private_tmp() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNS) != 0:
        raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNS)")
    if libc.mount(b"none", b"/", None, ctypes.c_ulong(MS_REC | MS_PRIVATE), None) != 0:
        raise OSError(ctypes.get_errno(), "mount --make-rprivate /")
    for path in (b"/tmp", b"/var/tmp", b"/dev/shm"):
        if os.path.isdir(path) and libc.mount(b"tmpfs", path, b"tmpfs", 0, b"size=256m,mode=1777") != 0:
            raise OSError(ctypes.get_errno(), f"mount tmpfs on {path.decode()}")


def main() -> None:
    cfg = json.loads(sys.argv[1])
    private_tmp()
    if cfg["uid"] is not None:
        os.setgroups([])
        os.setgid(cfg["gid"])
        os.setuid(cfg["uid"])
    os.chdir("/")
    sys.path[:0] = [cfg["code"], os.path.join(cfg["code"], "tests")]

    import _hostile_corpus as hc

    from reward_fns.code import Sandbox

    targets, secret = cfg["targets"], os.environ[hc.SECRET_NAME]
    box = Sandbox(**hc.SANDBOX_OPTS, **cfg["opts"]).start()
    iso = box.isolation
    emit(step="start", iso=iso, pid=os.getpid(), uid=os.getuid())
    # jobs that share one uid can signal each other and share one process limit (README): there the process attacks
    # and the fork bombs run alone, afterwards
    together = [n for n in hc.CORPUS if iso["uid_drop"] or n not in hc.PROCESS_ATTACKS + hc.PROCESS_HOGS]
    alone = [n for n in hc.CORPUS if n not in together]
    alone.sort(key=lambda n: n == "kill_everything")  # may kill this process where jobs are not contained: last
    results, canaries, elapsed = hc.run_corpus(box, together, targets)
    under, by_uid = hc.settled_leftovers(box, None if iso["uid_drop"] else os.getuid(), {os.getpid(), *cfg["keep"]})
    emit(
        step="corpus",
        problems=hc.problems(results, iso, secret),
        canaries=canaries,
        elapsed=elapsed,
        under_server=under,
        by_uid=by_uid,
        stats=box.stats(),
        results=results,
    )
    for name in alone:
        r = hc.as_dict(box.run(hc.program(name, targets)))
        emit(step="alone", name=name, problems=hc.problems({name: r}, iso, secret), result=r)
    under, by_uid = hc.settled_leftovers(box, None if iso["uid_drop"] else os.getuid(), {os.getpid(), *cfg["keep"]})
    nxt = box.run(hc.NEXT_JOB)
    emit(step="end", next_job=nxt.stdout, under_server=under, by_uid=by_uid, env=os.environ.get(hc.SECRET_NAME))
    box.close()


if __name__ == "__main__":
    main()
