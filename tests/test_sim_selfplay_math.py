"""benchmarks/sim_selfplay_math.py: the proposer reward moves the simulated buffer toward s = 1/2, and not by chance.

The same checks run with the real proposer reward (they must hold) and with stand-ins that must break them: a
constant reward (whitened to zero advantage: the proposer stays uniform, the arm equals the uniform-proposer one) and
a reward for easy problems (``s``). The share of non-zero-advantage groups over uniform seed sampling is not among
the checks the stand-ins break: the buffer's eviction and targeting produce most of it with any proposer.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import sim_selfplay_math as sim  # noqa: E402

SMALL = sim.Config(iters=60, seed=0)
BUFFER_ARMS = sim.BUFFER_ARMS  # self-play, uniform proposer


def constant(rate, penalty):
    return 0.0


def easy(rate, penalty):
    return -1.0 if rate is None else rate


def direction(res: sim.Result) -> dict[str, bool]:
    """The claims of the benchmark, each as a bool (second half of the run)."""
    half = res.config.iters // 2
    gap = {arm: res.final(arm, "gap", last=half) for arm in BUFFER_ARMS}
    true_gap = {arm: res.final(arm, "true_gap", last=half) for arm in BUFFER_ARMS}
    true_share = {arm: res.share(arm, true_label=True) for arm in BUFFER_ARMS}
    return {  # margins: about half the smallest difference over seeds 0-7 (the run is deterministic, seed 0)
        "gap_below_uniform_proposer": gap["self-play"] < gap["uniform proposer"] - 0.005,
        "true_gap_below_uniform_proposer": true_gap["self-play"] < true_gap["uniform proposer"] - 0.02,
        "more_groups_with_true_labels": true_share["self-play"] > true_share["uniform proposer"] + 0.02,
    }


def test_real_reward_moves_the_buffer_toward_half():
    res = sim.simulate(SMALL)
    assert all(direction(res).values()), direction(res)
    # non-zero-advantage solver groups: self-play over uniform seed sampling (vote labels, and gold labels)
    assert res.ratio() > 1.1 and res.ratio(baseline=sim.SEEDS_GOLD) > 1.1
    sp = res.arms["self-play"]
    assert sp.entropy[-1] < math.log(SMALL.families) - 0.5  # the proposer concentrates...
    mid = (res.skills >= 0.25) & (res.skills <= 0.75)
    assert sp.policy[mid].sum() > 2 * mid.mean()  # ...on the families it half-solves
    assert res.final("self-play", "label_acc") > res.final("uniform proposer", "label_acc")
    assert len(sp.gap) == SMALL.iters and all(0.0 <= g <= 0.5 for g in sp.gap)


@pytest.mark.parametrize(
    "reward, broken",
    [
        (constant, {"gap_below_uniform_proposer", "true_gap_below_uniform_proposer", "more_groups_with_true_labels"}),
        # rewarding s avoids the mislabelled hard problems too, but proposes easy ones
        (easy, {"gap_below_uniform_proposer", "true_gap_below_uniform_proposer"}),
    ],
    ids=["constant", "easy"],
)
def test_wrong_rewards_fail_the_checks(reward, broken):
    checks = direction(sim.simulate(SMALL, reward, arms=BUFFER_ARMS))
    assert {name for name, ok in checks.items() if not ok} == broken, checks


def test_deterministic_given_seed_and_cli(tmp_path):
    cfg = sim.Config(iters=8, seed=3, families=6, seeds_per_family=2, buffer_cap=24)
    a, b = sim.simulate(cfg), sim.simulate(cfg)
    for arm in sim.ARMS:
        assert a.arms[arm].informative == b.arms[arm].informative
        assert a.arms[arm].gap == b.arms[arm].gap
    assert np.array_equal(a.arms["self-play"].policy, b.arms["self-play"].policy)
    png = tmp_path / "sim.png"
    res = sim.main(["--iters", "8", "--families", "6", "--no-targeting", "--png", str(png), "--quiet"])
    assert png.stat().st_size > 10_000
    assert not res.config.targeting and res.config.iters == 8
