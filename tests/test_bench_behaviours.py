"""benchmarks/bench_behaviours.py runs end to end on a small batch (its timings are printed, never asserted)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import bench_behaviours as bench  # noqa: E402


def test_quick_run_times_both_sides():
    r = bench.main(["--prompts", "8", "--n", "4"])
    assert r["reward_s"] > 0 and r["sampled_s"] > 0 and r["every_s"] > 0
    assert r["ratio"] == r["sampled_s"] / r["reward_s"]
