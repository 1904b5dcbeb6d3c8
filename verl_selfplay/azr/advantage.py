"""Task-Relative REINFORCE++ (Absolute Zero Reasoner, arXiv 2505.03335): verl's REINFORCE++, whitened per (role, task).

On: ``algorithm.adv_estimator=task_relative_reinforce_plus_plus``. Every row's ``uid`` must come from
:func:`encode_uid`; the AZR trainer (``trainer.v1.trainer_mode=azr``, planned) sets them. The estimator is
registered into verl's ``ADV_ESTIMATOR_REGISTRY`` when verl imports ``verl.trainer.ppo.core_algos`` (see
:mod:`verl_selfplay.registry`); ``gamma`` is ``algorithm.gamma``. Use ``actor_rollout_ref.rollout.n=1`` as the
reference does: every (role, task) batch is one group of single-sample prompts.

What it computes. The reference (LeapLabTHU/Absolute-Zero-Reasoner) runs verl's stock ``reinforce_plus_plus``
estimator separately on each of its six (role, task) batches, then concatenates them for one actor update. So
each group gets REINFORCE++ returns, whitened with the token-weighted mean and variance of that group alone;
rows of different groups never influence each other. :func:`task_relative_advantages` does exactly that by
calling verl's ``compute_reinforce_plus_plus_outcome_advantage`` on each group's rows. verl's stock estimator
instead whitens over the whole step batch: one baseline across all six groups.

How the group of each row reaches the estimator. verl's v1 trainer calls ``_compute_advantage``, which hands a
custom estimator only ``token_level_rewards``, ``response_mask``, ``config=algorithm`` and
``index=non_tensor_batch["uid"]`` (``ray_trainer.compute_advantage``, reached unchanged through
``v1.utils.compute_advantage_for_multi_trajectories`` for every non-GRPO estimator). So the group travels in
the uid: ``uid = "{role}.{task}.{uuid4 hex}"`` and the group is ``uid.rsplit(".", 1)[0]`` (:func:`group_of`).
No ``_`` is allowed, because verl splits trajectory keys ``{uid}_{session}_{index}`` on ``_``. A separate
"group" field would not work: ``non_tensor_batch`` is passed to GDPO only, and ``_compute_advantage`` reads a
fixed list of fields; overriding it would copy about 60 lines of verl internals. And verl's padding rows
(``padding_utils.upsample_batch_to_divisible_size``) copy every other field of the first real sample, so they
would carry a real group, while their uid is a fresh ``pad<hex>`` with no group.

Failure handling.
- A group with fewer than 2 valid tokens (verl's padding rows, whose ``response_mask`` is all zero, or a lone
  1-token response) gets advantage 0 and still gets its returns; verl's ``masked_whiten`` would raise there.
- A uid without a group on a row with valid tokens raises :class:`ValueError`: the estimator was turned on
  without a trainer that encodes uids, and every plain uid would silently become its own one-row group.

verl touch-points: ``core_algos.register_adv_est`` / ``ADV_ESTIMATOR_REGISTRY`` (name
``task_relative_reinforce_plus_plus``), ``core_algos.compute_reinforce_plus_plus_outcome_advantage`` (called per
group), the custom-estimator call in ``ray_trainer.compute_advantage``, and the ``pad<hex>`` uids of
``padding_utils``. Nothing of verl is overridden.
"""

from __future__ import annotations

import uuid
from collections.abc import Hashable, Sequence
from types import ModuleType
from typing import Any

import torch

ADV_ESTIMATOR = "task_relative_reinforce_plus_plus"
_FORBIDDEN = ("_", ".")  # `_`: verl splits trajectory keys on it; `.`: separates the uid's parts


def encode_uid(role: str, task: str) -> str:
    """A fresh uid ``"{role}.{task}.{uuid4 hex}"`` whose group (:func:`group_of`) is ``"{role}.{task}"``.

    ``role`` and ``task`` must be non-empty and contain neither ``_`` nor ``.``.

    >>> uid = encode_uid("propose", "deduction")
    >>> uid.startswith("propose.deduction.") and len(uid) == len("propose.deduction.") + 32
    True
    >>> group_of(uid)
    'propose.deduction'
    >>> encode_uid("solve", "code_i")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: task 'code_i' must be non-empty and contain neither '_' nor '.' (...); e.g. 'code-i'
    """
    for what, value in (("role", role), ("task", task)):
        if not value or any(c in value for c in _FORBIDDEN):
            hint = f"; e.g. {value.replace('_', '-').replace('.', '-')!r}" if value else ""
            raise ValueError(
                f"{what} {value!r} must be non-empty and contain neither '_' nor '.' (verl splits trajectory keys"
                f" on '_', groups are split off at '.'){hint}"
            )
    return f"{role}.{task}.{uuid.uuid4().hex}"


def group_of(uid: str) -> str:
    """The group ``"{role}.{task}"`` of a uid made by :func:`encode_uid`; a uid without ``.`` is its own group.

    >>> group_of("solve.abduction.3f2a9c")
    'solve.abduction'
    >>> group_of("pad5e1d")  # verl's padding rows
    'pad5e1d'
    """
    return uid.rsplit(".", 1)[0]


def task_relative_advantages(
    token_level_rewards: torch.Tensor,
    response_mask: torch.Tensor,
    groups: Sequence[Hashable],
    gamma: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(advantages, returns)``, each ``[bs, L]``: verl's REINFORCE++ computed on each group's rows alone.

    ``groups`` holds one hashable per row. For every group the result equals
    ``compute_reinforce_plus_plus_outcome_advantage`` applied to that group's rows with this ``gamma``, except
    that a group with fewer than 2 valid tokens gets advantage 0 (its returns are still computed).

    >>> rewards = torch.tensor([[0.0, 1.0], [0.0, 0.0], [0.0, 5.0], [0.0, 7.0]])
    >>> mask = torch.tensor([[1, 1], [1, 1], [0, 1], [0, 0]])
    >>> adv, ret = task_relative_advantages(rewards, mask, ["a", "a", "b", "c"])
    >>> adv[:2].sum().abs() < 1e-6, adv[2:].abs().sum().item()  # "a" is zero-mean; "b", "c" have < 2 tokens
    (tensor(True), 0.0)
    >>> ret.tolist()
    [[1.0, 1.0], [0.0, 0.0], [0.0, 5.0], [0.0, 0.0]]
    """
    from verl.trainer.config import AlgoConfig
    from verl.trainer.ppo.core_algos import compute_reinforce_plus_plus_outcome_advantage

    bs, length = token_level_rewards.shape
    if len(groups) != bs or response_mask.shape != token_level_rewards.shape:
        raise ValueError(
            f"need one group per row and a mask shaped like the rewards: got {len(groups)} groups,"
            f" rewards {tuple(token_level_rewards.shape)}, mask {tuple(response_mask.shape)}"
        )
    advantages = torch.zeros_like(token_level_rewards)
    returns = torch.zeros_like(token_level_rewards)
    if bs == 0 or length == 0:
        return advantages, returns
    config = AlgoConfig(gamma=gamma)
    rows_of: dict[Hashable, list[int]] = {}
    for i, g in enumerate(groups):
        rows_of.setdefault(g, []).append(i)
    for rows_list in rows_of.values():
        rows = torch.tensor(rows_list, device=token_level_rewards.device)
        rewards, mask = token_level_rewards[rows], response_mask[rows]
        if mask.sum() >= 2:
            adv, ret = compute_reinforce_plus_plus_outcome_advantage(rewards, mask, config=config)
            advantages[rows] = adv.to(advantages.dtype)
        else:  # verl would raise in masked_whiten: two all-valid dummy rows let it compute the returns
            dummy = torch.ones((2, length), dtype=mask.dtype, device=mask.device)
            _, ret = compute_reinforce_plus_plus_outcome_advantage(
                torch.cat([rewards, torch.zeros_like(dummy, dtype=rewards.dtype)]),
                torch.cat([mask, dummy]),
                config=config,
            )
            ret = ret[: len(rows_list)]
        returns[rows] = ret.to(returns.dtype)
    return advantages, returns


def compute_task_relative_reinforce_plus_plus_advantage(
    token_level_rewards: torch.Tensor,
    response_mask: torch.Tensor,
    config: Any = None,
    index: Sequence[str] | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, torch.Tensor]:
    """verl's estimator ``task_relative_reinforce_plus_plus``: :func:`task_relative_advantages` grouped by uid.

    ``index`` is verl's per-row uid array; each row's group is :func:`group_of` its uid. ``gamma`` is
    ``config.gamma`` (1.0 without a config). Raises :class:`ValueError` if ``index`` is missing or a row with
    valid tokens has a uid not made by :func:`encode_uid`.
    """
    if index is None:
        raise ValueError(
            f"adv_estimator={ADV_ESTIMATOR} needs each row's uid (verl passes index=non_tensor_batch['uid']);"
            " none was given"
        )
    uids = [str(u) for u in index]
    valid = (response_mask != 0).any(dim=-1).tolist()
    bad = [u for u, v in zip(uids, valid, strict=True) if v and "." not in u]
    if bad:
        raise ValueError(
            f"adv_estimator={ADV_ESTIMATOR} needs uids built by verl_selfplay.azr.advantage.encode_uid"
            f" ('role.task.hex', as the AZR trainer sets them, trainer.v1.trainer_mode=azr); got {bad[0]!r}"
            f" ({len(bad)} such rows)"
        )
    gamma = config.get("gamma", 1.0) if config is not None else 1.0
    return task_relative_advantages(token_level_rewards, response_mask, [group_of(u) for u in uids], gamma=gamma)


def register(core_algos: ModuleType) -> None:
    """Register the estimator in verl's ``core_algos.ADV_ESTIMATOR_REGISTRY`` as ``task_relative_reinforce_plus_plus``.

    Idempotent. Called by :mod:`verl_selfplay.registry` when verl imports ``verl.trainer.ppo.core_algos``.
    """
    fn = compute_task_relative_reinforce_plus_plus_advantage
    if core_algos.ADV_ESTIMATOR_REGISTRY.get(ADV_ESTIMATOR) is not fn:
        core_algos.register_adv_est(ADV_ESTIMATOR)(fn)
