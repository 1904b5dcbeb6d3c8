"""PCL's selection maths, config validation, candidate pool and metrics (pure Python, no verl)."""

from __future__ import annotations

import doctest
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from verl_selfplay.pcl import selection as pcl
from verl_selfplay.pcl.selection import (
    CandidatePool,
    PCLConfig,
    calibration_error,
    check_batch_fits,
    check_target_range,
    effective_ratio,
    select,
)


def test_doctests():
    result = doctest.testmod(pcl)
    assert result.failed == 0 and result.attempted >= 8


# ----------------------------------------------------------------------------------------------- select


@settings(max_examples=200, deadline=None)
@given(
    preds=st.lists(st.floats(0, 1, allow_nan=False) | st.sampled_from([0.25, 0.5, 0.75]), min_size=1, max_size=60),
    tau=st.floats(0, 1),
    data=st.data(),
)
def test_select_is_the_m_closest_with_lowest_position_on_ties(preds, tau, data):
    m = data.draw(st.integers(1, len(preds)))
    got = select(preds, m, tau).tolist()
    brute = sorted(range(len(preds)), key=lambda i: (abs(preds[i] - tau), i))[:m]
    assert got == brute
    chosen_far = max(abs(preds[i] - tau) for i in got)
    assert all(abs(preds[i] - tau) >= chosen_far for i in set(range(len(preds))) - set(got))


def test_select_ties_and_constant_predictions_keep_candidate_order():
    assert select([0.5] * 6, 4).tolist() == [0, 1, 2, 3]
    assert select([0.25, 0.75, 0.75, 0.25], 2).tolist() == [0, 1]
    assert select([0.0, 1.0, 0.5], 1, tau=0.0).tolist() == [0]


def test_select_puts_non_finite_predictions_last():
    assert select([np.nan, 0.9, np.inf, 0.1], 3).tolist() == [1, 3, 0]


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (([0.1, 0.2], 0, 0.5), ValueError),
        (([0.1, 0.2], 3, 0.5), ValueError),
        (([0.1, 0.2], 1, 1.5), ValueError),
        (([0.1, 0.2], 1, float("nan")), ValueError),
        (([[0.1, 0.2]], 1, 0.5), ValueError),
        (([0.1, 0.2], 1.0, 0.5), TypeError),
    ],
)
def test_select_rejects_bad_arguments(args, error):
    with pytest.raises(error):
        select(*args)


# ----------------------------------------------------------------------------------------------- config


def test_config_defaults_fit_a_pass_rate():
    """k = 4 and tau = 0.5 are PCL's; the embedding value model is ours. V predicts a pass rate (PCL's p(x) for a
    binary reward), so the default metric is the 0/1 ``acc``, inside the (0, 1) range of the default sigmoid head,
    not the trajectory reward (0..2 under the default r1 scheme)."""
    cfg = PCLConfig.from_mapping(None)
    assert (cfg.enable, cfg.k, cfg.tau, cfg.value_model, cfg.metric) == (True, 4, 0.5, "embedding", "acc")
    assert cfg.bounded
    check_target_range(cfg.metric, cfg.bounded, 0.0, 1.0, "0/1 acc")


def test_bounded_head_refuses_targets_outside_0_1_naming_pcl_metric():
    with pytest.raises(ValueError, match=r"pcl\.metric='reward' takes values in \[0, 2\]"):
        check_target_range("reward", True, 0.0, 2.0, "scheme r1")
    with pytest.raises(ValueError, match=r"pcl\.metric='acc' takes values in \[-0\.5, 1\]"):
        check_target_range("acc", True, -0.5, 1.0, "observed")
    check_target_range("reward", False, -3.0, 3.0, "unbounded head")
    assert not PCLConfig.from_mapping({"value_model_kwargs": {"bounded": False}}).bounded


@pytest.mark.parametrize(
    ("cfg", "key"),
    [
        ({"k": 0}, "pcl.k"),
        ({"k": -3}, "pcl.k"),
        ({"k": 1.5}, "pcl.k"),
        ({"k": True}, "pcl.k"),
        ({"tau": -0.1}, "pcl.tau"),
        ({"tau": 1.01}, "pcl.tau"),
        ({"tau": float("nan")}, "pcl.tau"),
        ({"tau": "half"}, "pcl.tau"),
        ({"value_model": "mlp"}, "pcl.value_model"),
        ({"value_model_kwargs": 3}, "pcl.value_model_kwargs"),
        ({"enable": "yes"}, "pcl.enable"),
        ({"metric": ""}, "pcl.metric"),
        ({"seed": "x"}, "pcl.seed"),
        ({"kk": 4}, "pcl.kk"),
    ],
)
def test_bad_config_names_the_key(cfg, key):
    with pytest.raises((ValueError, TypeError), match=key.replace(".", r"\.")):
        PCLConfig.from_mapping(cfg)


def test_batch_larger_than_dataset_names_the_key():
    check_batch_fits(10, 10)
    with pytest.raises(ValueError, match=r"data\.train_batch_size=11"):
        check_batch_fits(11, 10)


def test_value_model_names_match_the_builders():
    from verl_selfplay.pcl.value_model import VALUE_MODELS, WORKER_VALUE_MODELS

    assert set(VALUE_MODELS) | set(WORKER_VALUE_MODELS) == set(pcl.VALUE_MODEL_NAMES)


# ----------------------------------------------------------------------------------------------- pool


def run_pool(pool: CandidatePool, steps: int, m: int, k: int, choose) -> tuple[list[int], list[int]]:
    """Run ``steps`` draw/commit rounds; returns (every candidate offered, every candidate kept)."""
    offered, kept = [], []
    for _ in range(steps):
        cand = pool.draw(k * m)
        assert len(cand) == len(set(cand)) == min(k * m, pool.size)  # no prompt twice in one step
        chosen = choose(cand, m)
        pool.commit(cand, chosen)
        offered += cand
        kept += [cand[i] for i in chosen]
    return offered, kept


@settings(max_examples=80, deadline=None)
@given(
    size=st.integers(1, 40),
    m=st.integers(1, 8),
    k=st.integers(1, 6),
    steps=st.integers(1, 30),
    seed=st.integers(0, 10),
)
def test_unselected_prompts_are_never_lost(size, m, k, steps, seed):
    """Whatever is selected, each lap offers every prompt exactly once: every completed lap offered all of them,
    and the current lap's unoffered prompts are exactly what remains in the pool."""
    m = min(m, size)
    rng = np.random.default_rng(seed)
    pool = CandidatePool(size, seed=seed)
    offered, kept = run_pool(pool, steps, m, k, choose=lambda cand, m: rng.permutation(len(cand))[:m].tolist())
    remaining = pool.state_dict()["remaining"]
    expected = Counter({i: pool.lap for i in range(size)}) + Counter(set(range(size)) - set(remaining))
    assert Counter(offered) == expected
    assert len(remaining) == len(set(remaining))
    assert (pool.offered, pool.trained) == (len(offered), len(kept))


def test_one_verl_epoch_scores_every_prompt_k_times():
    """N/m steps (verl's epoch) with k*m candidates each: every prompt is a candidate exactly k times."""
    pool = CandidatePool(24, seed=3)
    offered, _ = run_pool(pool, steps=6, m=4, k=4, choose=lambda cand, m: select([0.5] * len(cand), m).tolist())
    assert Counter(offered) == Counter({i: 4 for i in range(24)})


def test_a_rejected_prompt_is_scored_again_on_every_lap():
    pool = CandidatePool(12, seed=0, shuffle=False)
    never = 0  # a prompt the value model keeps rejecting
    offers = 0
    for _ in range(6):  # 6 steps x 8 candidates = 4 laps of 12
        cand = pool.draw(8)
        offers += never in cand
        pool.commit(cand, [i for i, c in enumerate(cand) if c != never][:4])
    assert pool.offered == 48 and offers == 4  # one offer per lap: returned to the pool, not dropped


def test_more_candidates_than_prompts_scores_all_of_them():
    pool = CandidatePool(5, seed=0)
    for _ in range(3):
        cand = pool.draw(40)
        assert sorted(cand) == list(range(5))
        pool.commit(cand, [0])


def test_pool_state_round_trip_is_exact():
    a = CandidatePool(50, seed=7)
    rng = np.random.default_rng(0)
    run_pool(a, 9, 6, 4, choose=lambda cand, m: rng.permutation(len(cand))[:m].tolist())
    b = CandidatePool(50, seed=0)
    b.load_state_dict(a.state_dict())
    assert b.state_dict() == a.state_dict()
    choose = lambda cand, m: list(range(m))  # noqa: E731
    assert run_pool(a, 12, 6, 4, choose) == run_pool(b, 12, 6, 4, choose)  # crosses lap boundaries


def test_pool_refuses_stale_commits_and_foreign_states():
    pool = CandidatePool(10, seed=0)
    cand = pool.draw(4)
    pool.commit(cand, [0])
    with pytest.raises(ValueError, match="draw"):
        pool.commit(cand, [0])
    with pytest.raises(ValueError, match="selected positions"):
        pool.commit(pool.draw(4), [4])
    with pytest.raises(ValueError, match="train_files"):
        CandidatePool(11).load_state_dict(pool.state_dict())


# ----------------------------------------------------------------------------------------------- metrics


def test_effective_ratio_counts_groups_with_mixed_rewards():
    assert effective_ratio([[1, 1, 0, 0], [1, 1, 1, 1], [0, 0, 0, 0], [0, 1, 0, 0]]) == 0.5
    assert effective_ratio([[1, float("nan"), 0], [1, float("nan"), 1], [1]]) == pytest.approx(1 / 3)
    assert np.isnan(effective_ratio([]))


def test_calibration_error_is_zero_only_when_calibrated():
    rng = np.random.default_rng(0)
    p = rng.random(2000)
    outcomes = (rng.random(2000) < p).astype(float)
    assert calibration_error(p, outcomes) < 0.05
    assert calibration_error(np.full(2000, 0.9), outcomes) > 0.35
