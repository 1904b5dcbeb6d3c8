"""Executions per second of reward_fns.code.Sandbox vs a fresh interpreter per call and vs a bare fork.

All three run the same small deterministic program, in the same run, at the same concurrency:

* (a) ``subprocess.run([sys.executable, "-c", code])`` per call: the approach of the AZR reference code;
* (b) a bare ``os.fork()`` per call from a slim ``python -S`` parent (as slim as the sandbox's fork server), the
  child ``exec``-ing the code and sending its stdout back through a pipe, with no limits at all: the practical
  upper bound;
* the Sandbox with every limit on (namespaces, per-job uid, rlimits, timeouts, bounded output).

Target (issue 4): >= 10x (a) and >= 50 % of (b). Run: ``nice python benchmarks/bench_sandbox.py``. Each round
measures the three back to back at 1 and at os.cpu_count() concurrent executions; ratios are taken within a round and
the median over rounds is reported (this machine is shared and noisy).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from reward_fns.code import Sandbox  # noqa: E402

CODE = """
def f(n):
    total = 0
    for i in range(n):
        total += i * i % 7
    return total
print(f(2000))
"""
EXPECTED = "3999\n"


def _check(out: str) -> None:
    assert out == EXPECTED, (out, EXPECTED)


def bench_subprocess(n: int, concurrency: int) -> float:
    def one(_):
        r = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, check=True)
        _check(r.stdout)

    t = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, range(n)))
    return n / (time.perf_counter() - t)


# (b) runs in a fresh `python -s -S` process, at least as slim as the sandbox's fork server, so that its forks are
# no dearer: forking this benchmark process instead would be slower (it is bigger and runs the sandbox's reader
# thread). Each child compiles the program itself, as any executor of different programs must.
FORK_LOOP = r"""
import _ast, os, select, sys, time  # _ast: else every child's compile() first builds the AST types (~3 ms)
code, expected, n, concurrency = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
t = time.perf_counter()
inflight, done, started = {}, 0, 0
while done < n:
    while started < n and len(inflight) < concurrency:
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            os.dup2(w, 1)
            try:  # compiled in the child, as any executor of (different) programs must
                exec(compile(code, "<bench>", "exec"), {"__name__": "__main__"})
                sys.stdout.flush()
            finally:
                os._exit(0)
        os.close(w)
        inflight[r] = (pid, [])
        started += 1
    ready, _, _ = select.select(list(inflight), [], [])
    for r in ready:
        b = os.read(r, 65536)
        if b:
            inflight[r][1].append(b)
            continue
        pid, chunks = inflight.pop(r)
        os.close(r)
        os.waitpid(pid, 0)
        assert b"".join(chunks).decode() == expected
        done += 1
print(n / (time.perf_counter() - t))
"""


def bench_fork(n: int, concurrency: int) -> float:
    """Bare fork, no limits, `concurrency` children in flight, from a slim parent; returns executions/s."""
    out = subprocess.run(
        [sys.executable, "-s", "-S", "-c", FORK_LOOP, CODE, EXPECTED, str(n), str(concurrency)],
        capture_output=True,
        text=True,
        check=True,
    )
    return float(out.stdout)


def bench_sandbox(sb: Sandbox, n: int, concurrency: int) -> float:
    t = time.perf_counter()
    if concurrency == 1:
        for _ in range(n):
            r = sb.run(CODE)
            assert r.ok, r
            _check(r.stdout)
    else:
        for r in sb.run_many([CODE] * n):
            assert r.ok, r
            _check(r.stdout)
    return n / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=400, help="executions per measurement (subprocess: n/8)")
    ap.add_argument("--rounds", type=int, default=5, help="rounds; each measures (a), (b) and the sandbox back to back")
    args = ap.parse_args()
    conc = os.cpu_count() or 1
    levels = sorted({1, conc})
    rates: dict[int, list[tuple[float, float, float]]] = {c: [] for c in levels}
    with Sandbox(workers=conc, timeout=10, memory_mb=512, max_processes=16) as sb:
        iso = sb.isolation
        print(
            f"sandbox isolation: network={iso['network_mode']} pid_ns={iso['pid']} mount_ns={iso['mount']} "
            f"uid_drop={iso['uid_drop']} nproc={iso['nproc']!r}; every limit on"
        )
        sb.run_many([CODE] * 20)  # warm up
        for _ in range(args.rounds):
            for c in levels:
                a = bench_subprocess(args.n // 8, c)
                b = bench_fork(args.n, c)
                s = bench_sandbox(sb, args.n, c)
                rates[c].append((a, b, s))
    # This machine is noisy: ratios are taken within a round (measured back to back), then the median over rounds.
    print(
        f"{'workers':>7} {'(a) subprocess':>15} {'(b) bare fork':>14} {'sandbox':>9}   median ratio: {'vs (a)':>7} {'vs (b)':>7}"
    )
    ok = True
    for c in levels:
        a, b, s = (max(r[i] for r in rates[c]) for i in range(3))
        ra = statistics.median(r[2] / r[0] for r in rates[c])
        rb = statistics.median(r[2] / r[1] for r in rates[c])
        print(f"{c:>7} {a:>12.0f}/s {b:>11.0f}/s {s:>7.0f}/s   {'':>14}{ra:>6.1f}x {100 * rb:>6.0f}%")
        ok &= ra >= 10 and rb >= 0.5
    print("rates: best round; target (>= 10x (a), >= 50% of (b), median ratio):", "met" if ok else "MISSED")


if __name__ == "__main__":
    main()
