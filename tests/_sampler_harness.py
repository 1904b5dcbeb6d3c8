"""Drive :class:`verl_selfplay.filters.sampler.GroupFilterSampler` the way verl's v1 trainer does.

- The sampler is built by verl's own ``PPOTrainer._build_replay_buffer`` from verl's composed Hydra config
  (``ppo_trainer`` + our overrides), with the trainer's ``refill_fn`` replaced by a scripted generator.
- TransferQueue is the real one: :func:`real_tq` starts Ray plus TransferQueue's controller and one storage unit
  in this process (about 20-30 s on a loaded 2-core machine). The test modules' ``tq`` fixtures (module scope)
  take it from :func:`shared_tq`, so it starts once per pytest process and stops at exit; :func:`clear` empties
  its partitions after each test. :class:`Store` passes every call through to it; it only
  records the ``select_fields`` of each ``kv_batch_get`` and runs an optional hook on each ``kv_list`` (to make a
  prompt group finish while the sampler polls).
- Trajectories are written to TransferQueue exactly as verl's ``AgentLoopWorkerTQ._agent_loop_postprocess``
  writes them: ``AgentLoopOutput(...).as_dict()`` plus the dataset row's fields, ``loss_mask``, ``input_ids``
  and ``position_ids``, converted with verl's ``list_of_dict_to_tensordict``, with verl's tags, one key per
  output ``{uid}_{session}_{index}``; prompts are registered with verl's ``{"is_prompt": True, "status": ...}``
  tags.
- Rewards are real: each rollout's response text is scored by ``reward_fns.compute_score`` (or a group's own
  ``reward_fn``) with the arguments verl's ``NaiveRewardManager.run_single`` passes, and stored the way verl
  stores the result (``reward_score`` into ``rm_scores``, the dict's keys into ``reward_extra_info``, a float
  result as ``{"acc": score}``; earlier outputs of a multi-output session get the last output's reward).
- The one fake is the inference server: :class:`Rollout` is what it would have returned for one rollout.
"""

from __future__ import annotations

import atexit
import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import torch

import reward_fns

SAMPLER_OVERRIDES = [
    "actor_rollout_ref.rollout.name=vllm",
    "trainer.v1.sampler.custom_sampler.path=pkg://verl_selfplay.filters.sampler",
    "trainer.v1.sampler.custom_sampler.name=GroupFilterSampler",
    "+trainer.v1.sampler.sampler_kwargs.poll_interval=0.01",
]
PARTITION = "train"
PARTITIONS = ("train", "val")


@contextlib.contextmanager
def real_tq() -> Iterator[Any]:
    """Ray plus a real TransferQueue (controller and one storage unit) in this process; shut down after."""
    import ray
    import transfer_queue as tq
    from omegaconf import OmegaConf

    # The CPU preset's Ray resources (verl_selfplay/config/cpu.yaml): 8 logical CPUs and one logical GPU, so a
    # test may also start verl's real FSDP actor worker group on CPU (tests/test_pcl_trainer.py); every Ray worker
    # runs verl on the `cpu` platform (the preset's VERL_PLATFORM=cpu), the driver's environment is left alone.
    ray.init(
        num_cpus=8,
        num_gpus=1,
        runtime_env={"env_vars": {"VERL_PLATFORM": "cpu"}},
        include_dashboard=False,
        log_to_driver=False,
        ignore_reinit_error=True,
    )
    try:
        tq.init(OmegaConf.create({"backend": {"SimpleStorage": {"num_data_storage_units": 1}}}))
        yield tq
    finally:
        with contextlib.suppress(Exception):
            tq.close()
        ray.shutdown()


_SHARED: list[Any] = []


def shared_tq() -> Any:
    """:func:`real_tq`, started on first use and shared by every test module of this process; stopped at exit."""
    if not _SHARED:
        context = real_tq()
        _SHARED.append(context.__enter__())
        atexit.register(context.__exit__, None, None, None)
    return _SHARED[0]


class Store:
    """The real ``transfer_queue`` module, passed through; records ``kv_batch_get``'s fields, hooks ``kv_list``."""

    def __init__(self, tq: Any) -> None:
        self._tq = tq
        self.gets: list[tuple[str, ...]] = []  # select_fields of every kv_batch_get, for assertions
        self.on_list: Callable[[Store], None] | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tq, name)

    def kv_batch_get(self, keys: Any, partition_id: str, select_fields: Any = None) -> Any:
        select = [select_fields] if isinstance(select_fields, str) else list(select_fields or [])
        self.gets.append(tuple(select))
        return self._tq.kv_batch_get(keys=keys, partition_id=partition_id, select_fields=select_fields)

    def kv_list(self, partition_id: str | None = None) -> Any:
        if self.on_list is not None:
            self.on_list(self)
        return self._tq.kv_list(partition_id=partition_id)

    def keys(self, partition_id: str = PARTITION) -> set[str]:
        """Every key currently stored in ``partition_id``."""
        return set(self._tq.kv_list(partition_id=partition_id).get(partition_id, {}))

    def read(self, keys: Sequence[str], name: str, partition_id: str = PARTITION) -> list[Any]:
        """One field of ``keys``, one value per key (per-token fields as 1-D tensors)."""
        value = self._tq.kv_batch_get(keys=list(keys), partition_id=partition_id, select_fields=[name])[name]
        if isinstance(value, torch.Tensor):
            return list(value.unbind(0))
        return [getattr(v, "data", v) for v in value]


def clear(tq: Any) -> None:
    """Evict every key of every partition the tests use (between tests sharing one TransferQueue)."""
    for partition in PARTITIONS:
        keys = list(tq.kv_list(partition_id=partition).get(partition, {}))
        if keys:
            tq.kv_clear(keys=keys, partition_id=partition)


@contextlib.contextmanager
def patched_store(monkeypatch: Any, tq: Any) -> Iterator[Store]:
    """A :class:`Store` over ``tq`` that verl's buffer, verl's trainer and our sampler use; cleared after."""
    store = Store(tq)
    patch_tq(monkeypatch, store)
    try:
        yield store
    finally:
        store.on_list = None
        clear(tq)


def r1_text(answer: str | None, formatted: bool = True) -> str:
    r"""A response in the R1 layout whose final answer is ``answer`` (``None``: no answer at all).

    >>> r1_text("4")
    '<think>I add.</think><answer>\\boxed{4}</answer>'
    >>> r1_text("4", formatted=False), r1_text(None, formatted=False)
    ('The answer is \\boxed{4}.', 'I do not know.')
    """
    boxed = "\\boxed{" + str(answer) + "}"
    if not formatted:
        return "I do not know." if answer is None else f"The answer is {boxed}."
    return f"<think>I add.</think><answer>{'no idea' if answer is None else boxed}</answer>"


@dataclass
class Rollout:
    """What the inference server returned for one rollout: the one fake in these tests (no model runs).

    ``text`` is the response the reward function reads (default: :func:`r1_text` of ``answer``). The token
    ids are ``tokens``, else ``response_len`` distinct ids; they are not a tokenization of the text (the
    sampler never decodes them). ``outputs`` > 1 makes a multi-output agent-loop session.
    """

    answer: str | None = "4"
    formatted: bool = True
    response_len: int = 8
    tokens: list[int] | None = None
    outputs: int = 1
    text: str | None = None

    def response(self) -> str:
        return self.text if self.text is not None else r1_text(self.answer, self.formatted)

    def response_ids(self) -> list[int]:
        if self.tokens is not None:
            return list(self.tokens)
        return [100 + i for i in range(self.response_len)]


@dataclass
class Group:
    """One prompt group: the dataset row and its rollouts.

    ``data_source=None`` writes rows without a ``data_source`` column (the reward function still gets
    ``"math"``). ``reward_fn`` replaces ``reward_fns.compute_score`` (called with verl's keyword arguments plus
    ``reward_kwargs``, as ``+reward.custom_reward_function.reward_kwargs.*`` would pass them).
    """

    rollouts: list[Rollout]
    data_source: str | None = "math"
    ground_truth: Any = "4"
    extra_info: dict = field(default_factory=lambda: {"index": 0})
    status: str = "finished"
    reward_fn: Callable[..., Any] = reward_fns.compute_score
    reward_kwargs: dict = field(default_factory=dict)


def reward(rollout: Rollout, group: Group) -> tuple[float, dict[str, Any]]:
    """``(reward_score, reward_extra_info)`` as verl's ``NaiveRewardManager.run_single`` computes them."""
    extra_info = {**group.extra_info, "num_turns": 2, "rollout_reward_scores": {}}
    result = group.reward_fn(
        data_source=group.data_source or "math",
        solution_str=rollout.response(),
        ground_truth=group.ground_truth,
        extra_info=extra_info,
        **group.reward_kwargs,
    )
    if isinstance(result, dict):
        return float(result["score"]), dict(result)
    return float(result), {"acc": float(result)}


def trajectories(uid: str, session: int, rollout: Rollout, group: Group, global_steps: int = 1) -> list[tuple]:
    """``(key, fields, tag)`` of each output verl's agent loop writes for one rollout session."""
    from verl.experimental.agent_loop.agent_loop import AgentLoopMetrics, AgentLoopOutput

    response_ids = rollout.response_ids()
    score, info = reward(rollout, group)
    out = []
    for index in range(rollout.outputs):
        output = AgentLoopOutput(
            prompt_ids=[1, 2, 3, 4 + index],
            response_ids=response_ids,
            response_mask=[1] * len(response_ids),
            reward_score=score,  # verl copies the last output's reward onto the earlier ones
            num_turns=2,
            metrics=AgentLoopMetrics(),
            extra_fields={
                "reward_extra_info": dict(info),
                "min_global_steps": global_steps,
                "max_global_steps": global_steps,
                "turn_scores": [float(index)],  # differs per output: must survive relabelling
                "tool_rewards": [],
            },
        )
        kwargs = {  # the dataset row (RLHFDataset.__getitem__) plus what the agent loop worker adds
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
        if group.data_source is not None:
            kwargs["data_source"] = group.data_source
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
        out.append((f"{uid}_{session}_{index}", fields, tag))
    return out


def submit(store: Any, uid: str, group: Group, global_steps: int = 1) -> None:
    """Register a prompt and write its finished rollouts, as the trainer plus agent loop workers do."""
    from verl.utils.tensordict_utils import list_of_dict_to_tensordict

    tag = {"is_prompt": True, "status": "pending", "global_steps": global_steps}
    store.kv_put(key=uid, partition_id=PARTITION, tag=tag)
    for session, rollout in enumerate(group.rollouts):  # one put per session, as each agent loop does
        outputs = trajectories(uid, session, rollout, group, global_steps)
        store.kv_batch_put(
            keys=[k for k, _, _ in outputs],
            partition_id=PARTITION,
            fields=list_of_dict_to_tensordict([f for _, f, _ in outputs]),
            tags=[t for _, _, t in outputs],
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
