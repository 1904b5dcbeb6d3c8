"""Drive :class:`verl_selfplay.filters.sampler.GroupFilterSampler` the way verl's v1 trainer does.

- The sampler is built by verl's own ``PPOTrainer._build_replay_buffer`` from verl's composed Hydra config
  (``ppo_trainer`` + our overrides), with the trainer's ``refill_fn`` replaced by a scripted generator.
- Trajectories are written to TransferQueue exactly as verl's ``AgentLoopWorkerTQ._agent_loop_postprocess``
  writes them: ``AgentLoopOutput(...).as_dict()`` plus the dataset row's fields, ``loss_mask``, ``input_ids``
  and ``position_ids``, converted with verl's ``list_of_dict_to_tensordict``, with verl's tags; prompts are
  registered with verl's ``{"is_prompt": True, "status": ...}`` tags.
- TransferQueue itself is either the real one (``real_tq()``: Ray plus TransferQueue's controller and one
  storage unit, started in-process; about 30 s on a loaded 2-core machine) or :class:`FakeTQ`, an in-memory
  stand-in for exactly the five functions the replay buffer and the trainer call (``kv_list``,
  ``kv_batch_get``, ``kv_batch_put``, ``kv_put``, ``kv_clear``), which returns verl's own TensorDict layout
  (nested tensors for per-token fields, non-tensor stacks for the rest).
"""

from __future__ import annotations

import contextlib
import copy
import os
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import torch

SAMPLER_OVERRIDES = [
    "actor_rollout_ref.rollout.name=vllm",
    "trainer.v1.sampler.custom_sampler.path=pkg://verl_selfplay.filters.sampler",
    "trainer.v1.sampler.custom_sampler.name=GroupFilterSampler",
    "+trainer.v1.sampler.sampler_kwargs.poll_interval=0.01",
]
PARTITION = "train"


class FakeTQ:
    """In-memory TransferQueue: per-partition tags and per-key field dicts (see the module docstring)."""

    def __init__(self) -> None:
        self.tags: dict[str, dict[str, dict]] = defaultdict(dict)
        self.values: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
        self.gets: list[tuple[str, ...]] = []  # select_fields of every kv_batch_get, for assertions
        self.on_list: Callable[[FakeTQ], None] | None = None

    def kv_put(self, key: str, partition_id: str, fields: Any = None, tag: dict | None = None) -> None:
        self.tags[partition_id].setdefault(key, {}).update(tag or {})
        if fields is not None:
            self.values[partition_id].setdefault(key, {}).update(dict(fields))

    def kv_batch_put(self, keys: list[str], partition_id: str, fields: Any = None, tags: list | None = None) -> Any:
        for i, key in enumerate(keys):
            self.tags[partition_id].setdefault(key, {}).update((tags or [{}] * len(keys))[i] or {})
        if fields is not None:
            for name in fields.keys():
                column = fields.get(name)
                items = list(column.unbind(0)) if isinstance(column, torch.Tensor) else list(fields[name])
                for key, item in zip(keys, items, strict=True):
                    self.values[partition_id].setdefault(key, {})[name] = copy.deepcopy(item)
        return None

    def kv_batch_get(self, keys: list[str], partition_id: str, select_fields: Sequence[str] | str | None = None):
        from verl.utils.tensordict_utils import list_of_dict_to_tensordict

        select = [select_fields] if isinstance(select_fields, str) else list(select_fields or [])
        self.gets.append(tuple(select))
        stored = [self.values[partition_id][key] for key in keys]  # KeyError like StorageKeyNotFoundError
        names = select or list(stored[0]) if stored else select
        present = [n for n in names if any(n in row for row in stored)]
        for name in present:  # TransferQueue's select_fields skips fields no sample has
            if not all(name in row for row in stored):
                raise KeyError(f"field {name!r} is missing for some of the keys")
        data = list_of_dict_to_tensordict([{n: copy.deepcopy(row[n]) for n in present} for row in stored])
        for name in present:  # TransferQueue returns per-token fields as jagged tensors even when lengths agree
            value = data.get(name)
            if isinstance(value, torch.Tensor) and not value.is_nested and value.dim() >= 2:
                data[name] = torch.nested.as_nested_tensor(list(value.unbind(0)), layout=torch.jagged)
        return data

    def kv_list(self, partition_id: str | None = None) -> dict[str, dict[str, dict]]:
        if self.on_list is not None:
            self.on_list(self)
        parts = [partition_id] if partition_id else list(self.tags)
        return {p: {k: dict(t) for k, t in self.tags[p].items()} for p in parts if p in self.tags}

    def kv_clear(self, keys: list[str] | str, partition_id: str) -> None:
        for key in [keys] if isinstance(keys, str) else keys:
            self.tags[partition_id].pop(key, None)
            self.values[partition_id].pop(key, None)

    def keys(self, partition_id: str = PARTITION) -> set[str]:
        """Every key currently stored in ``partition_id``."""
        return set(self.tags[partition_id])


@contextlib.contextmanager
def real_tq() -> Iterator[Any]:
    """Ray plus a real TransferQueue (controller and one storage unit) in this process; shut down after."""
    import ray
    import transfer_queue as tq
    from omegaconf import OmegaConf

    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    try:
        tq.init(OmegaConf.create({"backend": {"SimpleStorage": {"num_data_storage_units": 1}}}))
        yield tq
    finally:
        with contextlib.suppress(Exception):
            tq.close()
        ray.shutdown()


@dataclass
class Rollout:
    """One scripted rollout: what the agent loop and the reward function would have produced."""

    response_len: int = 8
    acc: float = 0.0
    pred: str = ""
    format_ok: bool = True
    tokens: list[int] | None = None  # response token ids (default: distinct ids, no repetition)
    score: float | None = None  # reward; default acc + format (the r1 scheme)

    def response_ids(self) -> list[int]:
        if self.tokens is not None:
            return list(self.tokens)
        return [100 + i for i in range(self.response_len)]


@dataclass
class Group:
    """One scripted prompt group."""

    rollouts: list[Rollout]
    data_source: str = "math"
    ground_truth: Any = "4"
    extra_info: dict = field(default_factory=lambda: {"index": 0})
    status: str = "finished"


def trajectory(uid: str, session: int, rollout: Rollout, group: Group, global_steps: int = 1) -> tuple[dict, dict]:
    """The TransferQueue fields and tag verl's agent loop writes for one rollout (``{uid}_{session}_0``)."""
    from verl.experimental.agent_loop.agent_loop import AgentLoopMetrics, AgentLoopOutput

    response_ids = rollout.response_ids()
    score = rollout.score if rollout.score is not None else rollout.acc + float(rollout.format_ok)
    info = {
        "score": score,
        "acc": rollout.acc,
        "format_ok": rollout.format_ok,
        "pred": rollout.pred,
        "timeout": False,
        "error": "",
    }
    output = AgentLoopOutput(
        prompt_ids=[1, 2, 3, 4],
        response_ids=response_ids,
        response_mask=[1] * len(response_ids),
        reward_score=score,
        num_turns=2,
        metrics=AgentLoopMetrics(),
        extra_fields={
            "reward_extra_info": info,
            "min_global_steps": global_steps,
            "max_global_steps": global_steps,
            "turn_scores": [],
            "tool_rewards": [],
        },
    )
    kwargs = {  # the dataset row (RLHFDataset.__getitem__) plus what the agent loop worker adds
        "data_source": group.data_source,
        "reward_model": {"style": "rule", "ground_truth": group.ground_truth},
        "extra_info": dict(group.extra_info),
        "raw_prompt": [{"role": "user", "content": "q"}],
        "index": 0,
        "tools_kwargs": {},
        "interaction_kwargs": {},
        "agent_name": "single_turn_agent",
        "uid": uid,
        "session_id": session,
        "global_steps": global_steps,
    }
    fields = output.as_dict()
    fields.update(kwargs)
    fields["loss_mask"] = fields["response_mask"]
    fields["input_ids"] = torch.cat([fields["prompts"], fields["responses"]])
    fields["position_ids"] = torch.arange(fields["input_ids"].numel())
    fields["multi_modal_inputs"] = {}
    prompt_len, response_len = fields["prompts"].numel(), fields["responses"].numel()
    tag = {
        "status": "success",
        "prompt_len": prompt_len,
        "response_len": response_len,
        "seq_len": prompt_len + response_len,
        "global_steps": global_steps,
        "min_global_steps": global_steps,
        "max_global_steps": global_steps,
    }
    return fields, tag


def submit(store: Any, uid: str, group: Group, global_steps: int = 1) -> None:
    """Register a prompt and write its finished rollouts, as the trainer plus agent loop workers do."""
    from verl.utils.tensordict_utils import list_of_dict_to_tensordict

    store.kv_put(key=uid, partition_id=PARTITION, tag={"is_prompt": True, "status": "pending", "global_steps": 1})
    if group.rollouts:
        pairs = [trajectory(uid, s, r, group, global_steps) for s, r in enumerate(group.rollouts)]
        store.kv_batch_put(
            keys=[f"{uid}_{s}_0" for s in range(len(pairs))],
            partition_id=PARTITION,
            fields=list_of_dict_to_tensordict([p[0] for p in pairs]),
            tags=[p[1] for p in pairs],
        )
    store.kv_put(key=uid, partition_id=PARTITION, tag={"status": group.status})


class Generator:
    """The trainer's ``refill_fn``: each call submits the next scripted groups (cycling through ``plan``)."""

    def __init__(self, store: Any, plan: Sequence[Group], prefix: str = "refill"):
        self.store, self.plan, self.prefix = store, list(plan), prefix
        self.calls: list[int] = []
        self.uids: list[str] = []

    def __call__(self, num_prompts: int) -> int:
        self.calls.append(num_prompts)
        for _ in range(num_prompts):
            uid = f"{self.prefix}{len(self.uids):04d}"
            submit(self.store, uid, self.plan[len(self.uids) % len(self.plan)])
            self.uids.append(uid)
        return num_prompts


def compose_config(overrides: Sequence[str] = ()):
    """verl's composed ``ppo_trainer`` config with the sampler selected and ``overrides`` applied."""
    import verl.trainer.main_ppo as main_ppo
    from hydra import compose, initialize_config_dir

    config_dir = os.path.join(os.path.dirname(main_ppo.__file__), "config")
    with initialize_config_dir(config_dir=config_dir, version_base=None):
        return compose(config_name="ppo_trainer", overrides=[*SAMPLER_OVERRIDES, *overrides])


def build_sampler(config: Any, refill_fn: Callable[[int], int] | None):
    """The replay buffer verl's trainer builds from ``config`` (``PPOTrainer._build_replay_buffer``)."""
    from verl.trainer.ppo.v1.trainer_base import PPOTrainer

    trainer = SimpleNamespace(
        config=config, trainer_mode=config.trainer.v1.trainer_mode, _add_prompts_to_generate=refill_fn
    )
    return PPOTrainer._build_replay_buffer(trainer)


def patch_tq(monkeypatch: Any, store: Any) -> None:
    """Point verl's replay buffer, verl's trainer and our sampler at ``store``."""
    import verl.trainer.ppo.v1.replay_buffer as replay_buffer
    import verl.trainer.ppo.v1.trainer_base as trainer_base

    import verl_selfplay.common.trajectories as group_filter

    for module in (replay_buffer, trainer_base, group_filter):
        monkeypatch.setattr(module, "tq", store)


def compute_advantages(config: Any, batch: Any, store: Any) -> torch.Tensor:
    """Run verl's own ``PPOTrainer._compute_advantage`` on ``batch`` and return the padded advantages."""
    from verl.trainer.ppo.v1.trainer_base import PPOTrainer

    PPOTrainer._compute_advantage(SimpleNamespace(config=config), batch, metrics={})
    data = store.kv_batch_get(keys=batch.keys, partition_id=batch.partition_id, select_fields=["advantages"])
    return data["advantages"].to_padded_tensor(0.0)
