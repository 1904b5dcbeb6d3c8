"""Task-Relative REINFORCE++: per (role, task) group, exactly verl's own REINFORCE++ on that group's rows alone.

verl's ``compute_reinforce_plus_plus_outcome_advantage`` is the oracle throughout."""

import doctest
import subprocess
import sys

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from verl import DataProto
from verl.trainer.config import AlgoConfig
from verl.trainer.ppo import core_algos
from verl.trainer.ppo.core_algos import compute_reinforce_plus_plus_outcome_advantage as verl_rpp

from verl_selfplay.azr import advantage
from verl_selfplay.azr.advantage import (
    ADV_ESTIMATOR,
    compute_task_relative_reinforce_plus_plus_advantage,
    encode_uid,
    group_of,
    register,
    task_relative_advantages,
)

GAMMAS = st.sampled_from([1.0, 0.99, 0.9, 0.5])


@st.composite
def batches(draw, min_groups: int = 1, max_groups: int = 4):
    """(rewards, mask, groups, gamma): random outcome/dense rewards, random masks (gaps, empty rows), random groups."""
    bs = draw(st.integers(min_groups, 12))
    length = draw(st.integers(1, 7))
    seed = draw(st.integers(0, 2**31 - 1))
    gen = torch.Generator().manual_seed(seed)
    rewards = torch.randn(bs, length, generator=gen) * draw(st.sampled_from([0.1, 1.0, 10.0]))
    if draw(st.booleans()):  # outcome reward: only the last token
        rewards[:, :-1] = 0
    mask = (torch.rand(bs, length, generator=gen) < draw(st.sampled_from([0.0, 0.2, 0.6, 1.0]))).long()
    n_groups = draw(st.integers(min_groups, max_groups))
    names = ["propose.deduction", "solve.abduction", ("solve", "induction"), 7][:n_groups]  # any hashables
    groups = [draw(st.sampled_from(names)) for _ in range(bs)]
    groups[:min_groups] = names[:min_groups]  # at least min_groups distinct groups
    groups = [groups[i] for i in draw(st.permutations(range(bs)))]
    return rewards, mask, groups, draw(GAMMAS)


def _rows(groups, g):
    return torch.tensor([i for i, x in enumerate(groups) if x == g])


@settings(max_examples=300, deadline=None)
@given(batches())
def test_each_group_equals_verl_reinforce_pp_on_that_group_alone(batch):
    rewards, mask, groups, gamma = batch
    adv, ret = task_relative_advantages(rewards, mask, groups, gamma=gamma)
    assert adv.shape == ret.shape == rewards.shape
    for g in set(groups):
        rows = _rows(groups, g)
        r, m = rewards[rows], mask[rows]
        if m.sum() >= 2:
            want_adv, want_ret = verl_rpp(r, m, config=AlgoConfig(gamma=gamma))
            assert torch.equal(adv[rows], want_adv), g
            assert torch.equal(ret[rows], want_ret), g
        else:  # verl raises here; we give 0 and still verl's returns (two dummy full rows make it compute them)
            assert torch.equal(adv[rows], torch.zeros_like(r)), g
            pad = torch.ones(2, r.shape[1], dtype=m.dtype)
            _, want_ret = verl_rpp(
                torch.cat([r, torch.zeros(2, r.shape[1])]), torch.cat([m, pad]), config=AlgoConfig(gamma=gamma)
            )
            assert torch.equal(ret[rows], want_ret[: len(rows)]), g


@settings(max_examples=150, deadline=None)
@given(batches())
def test_zero_mean_per_group_over_valid_tokens(batch):
    rewards, mask, groups, gamma = batch
    adv, ret = task_relative_advantages(rewards, mask, groups, gamma=gamma)
    assert torch.all(adv[mask == 0] == 0)
    for g in set(groups):
        rows = _rows(groups, g)
        m = mask[rows].bool()
        if m.sum() >= 2:
            valid = ret[rows][m]
            # float32 rounding of the mean, scaled up by verl's 1/sqrt(var + 1e-8) (large for near-constant returns)
            tol = 1e-5 * (1 + valid.abs().max().item() / (valid.var().item() + 1e-8) ** 0.5)
            assert abs(adv[rows][m].mean().item()) < tol, g  # token-weighted, not per-row


@settings(max_examples=150, deadline=None)
@given(batches(min_groups=2), st.integers(0, 2**31 - 1))
def test_groups_are_independent(batch, seed):
    rewards, mask, groups, gamma = batch
    changed = groups[0]
    rows = _rows(groups, changed)
    others = torch.tensor([i for i, g in enumerate(groups) if g != changed], dtype=torch.long)
    before, _ = task_relative_advantages(rewards, mask, groups, gamma=gamma)
    rewards2, mask2 = rewards.clone(), mask.clone()
    gen = torch.Generator().manual_seed(seed)
    rewards2[rows] = torch.randn(len(rows), rewards.shape[1], generator=gen) * 100
    mask2[rows] = 1 - mask2[rows]
    after, _ = task_relative_advantages(rewards2, mask2, groups, gamma=gamma)
    assert torch.equal(before[others], after[others])


@settings(max_examples=100, deadline=None)
@given(batches(max_groups=1))
def test_single_group_is_verl_whole_batch_reinforce_pp(batch):
    rewards, mask, groups, gamma = batch
    if mask.sum() < 2:
        with pytest.raises(ValueError):  # verl itself cannot whiten this batch
            verl_rpp(rewards, mask, config=AlgoConfig(gamma=gamma))
        return
    adv, ret = task_relative_advantages(rewards, mask, groups, gamma=gamma)
    want_adv, want_ret = verl_rpp(rewards, mask, config=AlgoConfig(gamma=gamma))
    assert torch.equal(adv, want_adv) and torch.equal(ret, want_ret)


def test_groups_with_fewer_than_two_valid_tokens_get_zero_advantage():
    rewards = torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, 3.0], [2.0, 0.0, 5.0], [0.0, 9.0, 0.0]])
    mask = torch.tensor([[1, 1, 1], [1, 1, 1], [0, 0, 1], [0, 0, 0]])
    adv, ret = task_relative_advantages(rewards, mask, ["a", "a", "one-token", "empty"], gamma=0.5)
    assert torch.all(adv[2:] == 0)
    assert adv[:2].abs().sum() > 0
    assert ret[2].tolist() == [0.0, 0.0, 5.0] and ret[3].tolist() == [0.0, 0.0, 0.0]
    adv, ret = task_relative_advantages(rewards[3:], mask[3:], ["only-padding"])  # verl would raise
    assert torch.all(adv == 0) and torch.all(ret == 0)
    assert task_relative_advantages(torch.zeros(0, 4), torch.zeros(0, 4, dtype=torch.long), [])[0].shape == (0, 4)


def test_task_relative_differs_from_stock_reinforce_pp():
    """The point of TRR++: a group whose rewards sit far apart from another's is not judged against it."""
    rewards = torch.tensor([[0.0, 1.0], [0.0, 0.0], [0.0, 11.0], [0.0, 10.0]])
    mask = torch.ones_like(rewards, dtype=torch.long)
    adv, _ = task_relative_advantages(rewards, mask, ["easy", "easy", "hard", "hard"])
    stock, _ = verl_rpp(rewards, mask, config=AlgoConfig(gamma=1.0))
    assert torch.allclose(adv[:2], adv[2:])  # same spread within each group: same advantages
    assert (stock[:2] < 0).all() and (stock[2:] > 0).all()


def test_mismatched_groups_are_rejected():
    with pytest.raises(ValueError, match="one group per row"):
        task_relative_advantages(torch.zeros(3, 2), torch.ones(3, 2), ["a", "b"])


def test_encode_uid_and_group_of():
    uid = encode_uid("propose", "deduction")
    assert group_of(uid) == "propose.deduction" and "_" not in uid
    assert encode_uid("propose", "deduction") != uid
    for role, task in [("pro_pose", "deduction"), ("propose", "ded.uction"), ("", "deduction"), ("solve", "")]:
        with pytest.raises(ValueError, match="neither '_' nor '.'"):
            encode_uid(role, task)


def test_docstring_examples():
    result = doctest.testmod(advantage, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 5 and result.failed == 0


def _uids_and_batch(gamma_seed: int = 0):
    gen = torch.Generator().manual_seed(gamma_seed)
    uids = [
        encode_uid(r, t)
        for r, t in [("propose", "deduction"), ("solve", "deduction"), ("propose", "abduction")]
        for _ in range(4)
    ]
    order = torch.randperm(len(uids), generator=gen).tolist()
    uids = [uids[i] for i in order] + ["pad0123abcd", "pad0123abcd"]  # verl's padding rows: one shared pad uid
    bs, length = len(uids), 6
    mask = (torch.rand(bs, length, generator=gen) < 0.7).long()
    mask[:, 0] = 1
    mask[-2:] = 0
    rewards = torch.zeros(bs, length)
    rewards[:, -1] = torch.randn(bs, generator=gen)
    rewards[-2:] = 0
    return np.array(uids, dtype=object), rewards, mask


def _expected(uids, rewards, mask, gamma):
    adv = torch.zeros_like(rewards)
    for g in {u.rsplit(".", 1)[0] for u in uids if "." in u}:
        rows = torch.tensor([i for i, u in enumerate(uids) if u.startswith(g + ".")])
        adv[rows], _ = verl_rpp(rewards[rows], mask[rows], config=AlgoConfig(gamma=gamma))
    return adv


def test_registered_estimator_through_verl_registry():
    register(core_algos)
    register(core_algos)  # twice is fine
    fn = core_algos.get_adv_estimator_fn(ADV_ESTIMATOR)
    assert fn is compute_task_relative_reinforce_plus_plus_advantage
    uids, rewards, mask = _uids_and_batch()
    for config, gamma in [(AlgoConfig(gamma=0.9), 0.9), (None, 1.0), ({"gamma": 0.5}, 0.5)]:
        adv, ret = fn(token_level_rewards=rewards, response_mask=mask, config=config, index=uids)
        assert torch.equal(adv, _expected(uids, rewards, mask, gamma))
        assert torch.all(adv[-2:] == 0) and torch.all(ret[-2:] == 0)


def test_estimator_rejects_uids_without_group():
    rewards, mask = torch.zeros(2, 3), torch.ones(2, 3, dtype=torch.long)
    with pytest.raises(ValueError, match="encode_uid"):
        compute_task_relative_reinforce_plus_plus_advantage(
            rewards, mask, index=np.array(["3f2a", "9c1b"], dtype=object)
        )
    with pytest.raises(ValueError, match="uid"):
        compute_task_relative_reinforce_plus_plus_advantage(rewards, mask)


def test_registered_when_verl_imports_core_algos():
    """In a fresh process, ``import verl`` plus verl's own import of core_algos registers the estimator."""
    code = (
        "import verl\n"
        "from verl.trainer.ppo import core_algos\n"
        f"fn = core_algos.get_adv_estimator_fn({ADV_ESTIMATOR!r})\n"
        "print(fn.__module__, fn.__name__)\n"
    )
    proc = subprocess.run([sys.executable, "-W", "ignore", "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split() == [advantage.__name__, compute_task_relative_reinforce_plus_plus_advantage.__name__]


def test_through_verl_compute_advantage():
    from verl.trainer.ppo.ray_trainer import compute_advantage
    from verl.trainer.ppo.v1.utils import compute_advantage_for_multi_trajectories

    register(core_algos)
    uids, rewards, mask = _uids_and_batch(1)
    config = AlgoConfig(gamma=0.9, adv_estimator=ADV_ESTIMATOR)

    def data():
        return DataProto.from_dict(
            tensors={"token_level_rewards": rewards.clone(), "response_mask": mask.clone()},
            non_tensors={"uid": uids.copy()},
        )

    out = compute_advantage(data(), adv_estimator=config.adv_estimator, gamma=config.gamma, config=config)
    assert torch.equal(out.batch["advantages"], _expected(uids, rewards, mask, 0.9))
    # the v1 trainer's entry (trainer_base._compute_advantage) delegates non-GRPO estimators unchanged
    keys = [f"{u}_0_0" for u in uids]
    out_v1 = compute_advantage_for_multi_trajectories(
        data(), keys, adv_estimator=config.adv_estimator, gamma=config.gamma, config=config
    )
    assert torch.equal(out_v1.batch["advantages"], out.batch["advantages"])
    assert torch.equal(out_v1.batch["returns"], out.batch["returns"])
