"""benchmarks/bench_azr_step.py runs end to end on a tiny step, and both sides reach the same verdicts."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import bench_azr_step as bench  # noqa: E402


def test_step_generator_is_deterministic_and_mixed():
    a = bench.make_step(3, 8, 8, 8, 1)
    b = bench.make_step(3, 8, 8, 8, 1)
    assert [p.program for p in a[0]] == [p.program for p in b[0]]
    assert [s.answer for s in a[1]] == [s.answer for s in b[1]]
    kinds = {p.kind for p in a[0]}
    assert {"valid", "loop", "slow", "syntax", "forbidden", "no_f", "error", "bad_input"} <= kinds
    assert any(p.looping for p in a[0]) and any(s.looping for s in a[1])


def test_quick_run_agrees_with_the_reference():
    r = bench.main(["--quick", "--samples", "4", "--timeout", "0.2", "--workers", "2", "--threads", "16"])
    assert r["disagreements"] == 0
    assert r["valid"] > 0 and r["ref_timeouts"] > 0
    assert r["ref_step_s"] > 0 and r["ours_step_s"] > 0
