"""verl's TransferQueue trajectory layout, read and written in one place for all our adapters.

verl 0.9.1's v1 agent-loop workers store every rollout output under the key ``{uid}_{session}_{index}``
(``verl/experimental/agent_loop/agent_loop_tq.py``): ``uid`` is the prompt's group id, ``session`` the rollout
number within the group (0..n-1) and ``index`` the output number within a multi-output session. Per-token fields
(``responses``, ``rm_scores``, ``response_mask``...) come back as jagged tensors; ``extra_fields`` is a dict whose
``reward_extra_info`` holds the reward function's extra keys; the last output of a session carries its reward.

The replay buffer (filters) and the trainer modes (PCL, AZR) read rewards back through these functions; a verl
upgrade that changes the layout changes this file only.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
import transfer_queue as tq

PADDING_TAG = "is_padding"  # verl's tag on the rows it adds to balance a batch across data-parallel ranks


def split_key(key: str) -> tuple[str, int, int]:
    """``(uid, session, index)`` of a trajectory key.

    >>> split_key("3f2a_1_0")
    ('3f2a', 1, 0)
    """
    uid, session, index = key.rsplit("_", 2)
    return uid, int(session), int(index)


def key_uid(key: str) -> str:
    """The prompt uid of a trajectory key (uids are uuid4 strings without underscores)."""
    return key.split("_")[0]


def sessions_by_uid(keys: Iterable[str]) -> dict[str, list[list[str]]]:
    """Per prompt uid, its sessions in session order, each the list of its output keys in output order.

    >>> sessions_by_uid(["a_1_0", "a_0_1", "a_0_0", "b_0_0"])
    {'a': [['a_0_0', 'a_0_1'], ['a_1_0']], 'b': [['b_0_0']]}
    """
    grouped: dict[str, dict[int, list[tuple[int, str]]]] = defaultdict(lambda: defaultdict(list))
    for key in keys:
        uid, session, index = split_key(key)
        grouped[uid][session].append((index, key))
    return {uid: [[k for _, k in sorted(s[i])] for i in sorted(s)] for uid, s in grouped.items()}


def final_keys(sessions: Sequence[Sequence[str]]) -> list[str]:
    """The key of each session's last output: the one that carries the session's reward."""
    return [keys[-1] for keys in sessions]


def session_final_keys(keys: Iterable[str]) -> list[str]:
    """The key of each session's last output (the one carrying its reward), sorted; one pass, for large batches.

    >>> session_final_keys(["b_0_0", "a_0_1", "a_0_0", "a_1_0"])
    ['a_0_1', 'a_1_0', 'b_0_0']
    """
    last: dict[str, tuple[int, str]] = {}
    for key in keys:
        session, _, index = key.rpartition("_")
        i = int(index)
        if session not in last or last[session][0] < i:
            last[session] = (i, key)
    return sorted(key for _, key in last.values())


def reward_extra_info(extra_fields: Any) -> dict[str, Any]:
    """The reward function's extra keys stored in a trajectory's ``extra_fields`` (empty if absent).

    >>> reward_extra_info({"reward_extra_info": {"acc": 1.0}, "turns": 1})
    {'acc': 1.0}
    >>> reward_extra_info(None)
    {}
    """
    extra_fields = getattr(extra_fields, "data", extra_fields)  # NonTensorData wrapper
    info = extra_fields.get("reward_extra_info", {}) if isinstance(extra_fields, Mapping) else {}
    return dict(info) if isinstance(info, Mapping) else {}


def with_reward_extra_info(extra_fields: Any, info: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``extra_fields`` whose ``reward_extra_info`` is ``info`` (every other field kept)."""
    fields = dict(getattr(extra_fields, "data", extra_fields) or {})
    fields["reward_extra_info"] = dict(info)
    return fields


def metric_value(value: Any, metric: str) -> float | None:
    """One trajectory's ``metric``: ``"reward"`` sums ``rm_scores``, any other name reads ``reward_extra_info``.

    ``value`` is the field read for that metric (:func:`reward_field`). ``None`` when the metric is absent; NaN when
    it is present but not a number.

    >>> metric_value(torch.tensor([0.0, 0.0, 1.5]), "reward")
    1.5
    >>> metric_value({"reward_extra_info": {"acc": 1}}, "acc"), metric_value({}, "acc")
    (1.0, None)
    """
    if metric == "reward":
        if value is None:
            return None
        return float(value.sum().item()) if isinstance(value, torch.Tensor) else float(np.sum(value))
    found = reward_extra_info(value).get(metric)
    if found is None:
        return None
    try:
        return float(found)
    except (TypeError, ValueError):
        return float("nan")


def reward_value(value: Any, metric: str) -> float:
    """:func:`metric_value`, with NaN for an absent metric."""
    found = metric_value(value, metric)
    return float("nan") if found is None else found


def reward_field(metric: str) -> str:
    """The TransferQueue field that holds ``metric`` (see :func:`reward_value`)."""
    return "rm_scores" if metric == "reward" else "extra_fields"


def read_fields(partition_id: str, keys: list[str], fields: list[str]) -> dict[str, list[Any]]:
    """``{field: [value per key]}`` from TransferQueue; a field that no trajectory has reads as ``None`` values."""
    if not keys or not fields:
        return {f: [None] * len(keys) for f in fields}
    data = tq.kv_batch_get(keys=keys, partition_id=partition_id, select_fields=fields)
    present = set(data.keys())
    out: dict[str, list[Any]] = {}
    for f in fields:
        if f not in present:  # TransferQueue skips fields no trajectory has (e.g. a dataset without data_source)
            out[f] = [None] * len(keys)
            continue
        value = data[f]
        out[f] = list(value.unbind(0)) if isinstance(value, torch.Tensor) else list(value)
    return out


def write_fields(partition_id: str, rewrites: Mapping[str, Mapping[str, Any]]) -> None:
    """Write ``{key: {field: value}}`` back to TransferQueue (one put per distinct set of fields)."""
    from verl.utils.tensordict_utils import list_of_dict_to_tensordict

    by_fields: dict[tuple[str, ...], list[str]] = defaultdict(list)
    for key, fields in rewrites.items():
        by_fields[tuple(sorted(fields))].append(key)
    for names, keys in by_fields.items():
        rows = [{f: rewrites[k][f] for f in names} for k in keys]
        tq.kv_batch_put(keys=keys, partition_id=partition_id, fields=list_of_dict_to_tensordict(rows))


def group_rewards(
    partition_id: str, keys: Sequence[str], tags: Sequence[Mapping[str, Any]], metric: str, uids: Iterable[str]
) -> dict[str, list[float]]:
    """Per prompt uid in ``uids``, one reward per rollout session (NaN where ``metric`` is missing).

    ``keys``/``tags`` are a trained batch's (``KVBatchMeta``); verl's padding rows are skipped, and a multi-output
    session counts once, with its last output's reward.
    """
    wanted = set(uids)
    real = [k for k, tag in zip(keys, tags, strict=True) if not tag.get(PADDING_TAG, False) and key_uid(k) in wanted]
    sessions = sessions_by_uid(real)
    last = [k for uid in sorted(sessions) for k in final_keys(sessions[uid])]
    field = reward_field(metric)
    values = read_fields(partition_id, last, [field])[field]
    out: dict[str, list[float]] = defaultdict(list)
    for key, value in zip(last, values, strict=True):
        out[key_uid(key)].append(reward_value(value, metric))
    return dict(out)


def clear_keys(partition_id: str, keys: Sequence[str]) -> None:
    """Evict trajectories from TransferQueue."""
    if keys:
        tq.kv_clear(partition_id=partition_id, keys=list(keys))
