"""``AZRAgentLoop``: the verl agent loop of both AZR roles, selected per row by ``agent_name="azr"``.

verl's v1 agent-loop workers (``verl/experimental/agent_loop/agent_loop.py``, ``trainer/ppo/v1/agent_loop_tq.py``)
build one loop instance per trajectory from the row's ``agent_name``; the AZR trainer (:mod:`.trainer`) sets it on
every row it submits, and the validation parquet (:mod:`.data`) does too. One class serves both roles so that every
trajectory stores the same fields in TransferQueue (it keeps only the fields all samples share).

- **Solver rows** (``azr_role="solve"``): one generation; no reward here, so verl's streaming reward worker scores
  it with the row's ``azr_*`` data source (:func:`reward_fns.compute_score`, in the sandbox).
- **Proposer rows** (``azr_role="propose"``): one generation, then off the event loop: parse and validate the
  proposal in the sandbox; if valid, ``azr.n_learn`` solver attempts of the proposed task through verl's own
  inference server (``server_manager.generate``, sent concurrently, the training ``sampling_params``: AZR's paper
  intends the training temperature, while its reference code samples them with validation settings), scored in
  the sandbox; the proposer reward (:func:`.proposals.proposer_reward`) is returned as ``reward_score``, so the
  reward worker is skipped. The attempts never reach TransferQueue: they are not trained on. The proposal, its
  validation reason and its solve rate travel to the trainer in ``extra_fields["azr"]``.

Prompts are plain text in the R1 wrapper, tokenised without a chat template, as in the reference. Any exception
on a proposer row gives the invalid-proposal reward with the error recorded, never a failed trajectory.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import Any
from uuid import uuid4

from omegaconf import DictConfig, OmegaConf
from verl.experimental.agent_loop.agent_loop import AgentLoopBase, AgentLoopOutput

from reward_fns.code import Sandbox
from reward_fns.schemes import make_result
from verl_selfplay.azr.buffers import Task
from verl_selfplay.azr.config import AZRConfig
from verl_selfplay.azr.prompts import solver_prompt
from verl_selfplay.azr.proposals import evaluate_proposal, proposer_reward, solve_rate

logger = logging.getLogger(__name__)
logger.setLevel(os.getenv("VERL_LOGGING_LEVEL", "WARN"))

AGENT_NAME = "azr"
_SANDBOXES: dict[tuple, Sandbox] = {}  # one sandbox pool per worker process and settings


def _sandbox(cfg: AZRConfig, loop_workers: int = 1) -> Sandbox:
    """This worker's sandbox pool: the node's CPUs divided among verl's ``loop_workers`` agent-loop workers
    (``rollout.agent.num_workers``; fewer share a node on a multi-node run, so this never oversubscribes), unless
    ``azr.sandbox_workers`` sets the size."""
    workers = cfg.sandbox_workers or max(1, (os.cpu_count() or 1) // max(1, loop_workers))
    key = (os.getpid(), workers, cfg.timeout)
    if key not in _SANDBOXES:
        _SANDBOXES[key] = Sandbox(workers=workers, timeout=cfg.timeout)
    return _SANDBOXES[key]


def _azr_config(config: Any) -> AZRConfig:
    node = config.get("azr", None) if hasattr(config, "get") else None
    raw = OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else node
    return AZRConfig.from_mapping(raw)


class AZRAgentLoop(AgentLoopBase):
    """Proposer and solver of Absolute Zero in one loop (see the module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.azr = _azr_config(self.config)
        self.response_length = int(self.rollout_config.response_length)
        # verl runs rollout.agent.num_workers agent-loop workers (Ray actors), each with one such pool
        self.sandbox = _sandbox(self.azr, int(self.rollout_config.agent.num_workers or 1))

    async def _generate(self, prompt_ids: list[int], sampling_params: dict[str, Any]):
        return await self.server_manager.generate(
            request_id=uuid4().hex, prompt_ids=prompt_ids, sampling_params=dict(sampling_params)
        )

    def _encode(self, text: str) -> list[int]:
        return self._cap_text_prompt_length(self.tokenizer.encode(text, add_special_tokens=False))

    def _decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    async def run(self, sampling_params: dict[str, Any], **kwargs: Any) -> AgentLoopOutput:
        """One trajectory of ``kwargs["azr_role"]`` (``propose`` or ``solve``) for task ``kwargs["azr_task"]``."""
        role, task_type = str(kwargs.get("azr_role", "solve")), str(kwargs.get("azr_task", ""))
        messages = list(kwargs["raw_prompt"])
        prompt_ids = self._encode(str(messages[-1]["content"]))
        metrics: dict[str, Any] = {}
        start = time.perf_counter()
        out = await self._generate(prompt_ids, sampling_params)
        metrics["generate_sequences"] = time.perf_counter() - start
        metrics["num_preempted"] = out.num_preempted if out.num_preempted is not None else -1
        response_ids = list(out.token_ids)[: self.response_length]
        logprobs = list(out.log_probs)[: self.response_length] if out.log_probs else None
        extra = dict(out.extra_fields)
        reward = None
        azr_info: dict[str, Any] = {"role": role, "task": task_type}
        if role == "propose":
            reward, azr_info, reward_info = await self._judge_proposal(task_type, response_ids, kwargs, sampling_params)
            extra["reward_extra_info"] = reward_info
        extra["azr"] = azr_info
        extra.update({"turn_scores": [], "tool_rewards": []})  # the schema of verl's own loops
        return AgentLoopOutput(
            prompt_ids=prompt_ids,
            response_ids=response_ids,
            response_mask=[1] * len(response_ids),
            response_logprobs=logprobs,
            multi_modal_data={},
            reward_score=reward,
            num_turns=2,
            metrics=metrics,
            extra_fields=extra,
        )

    async def _judge_proposal(
        self, task_type: str, response_ids: list[int], row: dict[str, Any], sampling_params: dict[str, Any]
    ) -> tuple[float, dict[str, Any], dict[str, Any]]:
        """Proposer reward, the ``extra_fields["azr"]`` record and the ``reward_extra_info`` of one proposal."""
        cfg, info = self.azr, {"role": "propose", "task": task_type}
        sandbox_s = 0.0
        try:
            text = self._decode(response_ids)
            reference = str((row.get("extra_info") or {}).get("reference_program", ""))
            start = time.perf_counter()
            outcome = await self.loop.run_in_executor(
                None,
                lambda: evaluate_proposal(
                    task_type,
                    text,
                    reference,
                    num_inputs=cfg.induction_inputs,
                    sandbox=self.sandbox,
                    timeout=cfg.timeout,
                    repeats=cfg.validation_repeats,
                ),
            )
            sandbox_s += time.perf_counter() - start
            rate = None
            if outcome.valid:
                rate, learn_s = await self._learnability(outcome.task, sampling_params)
                sandbox_s += learn_s
            reward = proposer_reward(
                rate, valid=outcome.valid, zero_solve_reward=cfg.zero_solve_reward, invalid_reward=cfg.invalid_reward
            )
            info.update(
                valid=outcome.valid,
                reason=outcome.reason,
                detail=outcome.detail[:300],
                solve_rate=rate,
                task=outcome.task.to_json() if outcome.task else None,
            )
        except Exception as e:  # never fail a trajectory on model output: the row scores as an invalid proposal
            logger.warning("AZR proposer loop failed on a %s proposal: %r", task_type, e)
            reward, rate = cfg.invalid_reward, None
            info.update(valid=False, reason="loop_error", detail=repr(e)[:300], solve_rate=None, task=None)
        info["sandbox_s"] = sandbox_s
        reward_info = make_result(
            reward,
            acc=float(rate or 0.0),
            format_ok=info.get("reason") not in ("format", "too_long"),
            error=str(info.get("reason", "")),
        )
        return reward, info, reward_info

    async def _learnability(self, task: Task, sampling_params: dict[str, Any]) -> tuple[float, float]:
        """Solve rate of ``task`` over ``azr.n_learn`` fresh solver attempts, and the seconds spent scoring."""
        cfg = self.azr
        prompt_ids = self._encode(solver_prompt(task, visible=cfg.induction_visible, style=cfg.prompt_style))
        outs = await asyncio.gather(*(self._generate(prompt_ids, sampling_params) for _ in range(cfg.n_learn)))
        texts = [self._decode(list(o.token_ids)[: self.response_length]) for o in outs]
        start = time.perf_counter()
        rate = await self.loop.run_in_executor(
            None,
            lambda: solve_rate(task, texts, visible=cfg.induction_visible, sandbox=self.sandbox, timeout=cfg.timeout),
        )
        return rate, time.perf_counter() - start


def register(agent_loop_module: Any) -> None:
    """Register :class:`AZRAgentLoop` in verl's agent-loop registry as ``azr`` (idempotent; runs in every worker)."""
    registry = agent_loop_module._agent_loop_registry
    target = f"{AZRAgentLoop.__module__}.{AZRAgentLoop.__qualname__}"
    if registry.get(AGENT_NAME, {}).get("_target_") != target:
        agent_loop_module.register(AGENT_NAME)(AZRAgentLoop)
