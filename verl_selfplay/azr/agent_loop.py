"""``AZRAgentLoop``: the verl agent loop of both self-play roles, selected per row by ``agent_name="azr"``.

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

What a proposal is, how it is checked and labelled, and its reward come from the run's task domain
(:mod:`verl_selfplay.azr.domains`, ``azr.domain``; the text above describes the code domain). The math domain also
has **label rows** (``azr_role="label"``): the row's record is labelled from ``learn_samples`` fresh samples (the
row's own generation is one of them) and its response mask is all zero, so it is never trained on.

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

from reward_fns.schemes import make_result
from verl_selfplay.azr.config import AZRConfig
from verl_selfplay.azr.domains import Label, Proposal, TaskDomain, get_domain

logger = logging.getLogger(__name__)
logger.setLevel(os.getenv("VERL_LOGGING_LEVEL", "WARN"))

AGENT_NAME = "azr"
_FORMAT_REASONS = ("format", "too_long", "encoding")


def _node(config: Any, name: str) -> Any:
    node = config.get(name, None) if hasattr(config, "get") else None
    return OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else node


def _azr_config(config: Any) -> AZRConfig:
    return AZRConfig.from_mapping(_node(config, "azr"))


def domain_of(config: Any, azr: AZRConfig | None = None) -> TaskDomain:
    """The task domain of a run (``azr.domain``) with its options (the ``selfplay_<domain>`` node, if any)."""
    azr = azr or _azr_config(config)
    return get_domain(azr.domain, azr, _node(config, f"selfplay_{azr.domain}"))


class AZRAgentLoop(AgentLoopBase):
    """Proposer and solver of self-play in one loop, for any task domain (see the module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.azr = _azr_config(self.config)
        self.domain = domain_of(self.config, self.azr)
        self.response_length = int(self.rollout_config.response_length)
        # verl runs rollout.agent.num_workers agent-loop workers (Ray actors); the code domain gives each a sandbox
        setup = getattr(self.domain, "setup_worker", None)
        if setup is not None:
            setup(int(self.rollout_config.agent.num_workers or 1))

    async def _generate(self, prompt_ids: list[int], sampling_params: dict[str, Any]):
        return await self.server_manager.generate(
            request_id=uuid4().hex, prompt_ids=prompt_ids, sampling_params=dict(sampling_params)
        )

    def _encode(self, text: str) -> list[int]:
        return self._cap_text_prompt_length(self.tokenizer.encode(text, add_special_tokens=False))

    def _decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    async def run(self, sampling_params: dict[str, Any], **kwargs: Any) -> AgentLoopOutput:
        """One trajectory of ``kwargs["azr_role"]`` (``propose``, ``solve`` or ``label``) of ``kwargs["azr_task"]``."""
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
        mask = [1] * len(response_ids)
        azr_info: dict[str, Any] = {"role": role, "task": task_type}
        if role == "propose":
            reward, azr_info, reward_info = await self._judge_proposal(task_type, response_ids, kwargs, sampling_params)
            extra["reward_extra_info"] = reward_info
        elif role == "label":  # generated, never trained: the response only carries the row
            reward, azr_info, reward_info = await self._label_row(task_type, response_ids, kwargs, sampling_params)
            extra["reward_extra_info"] = reward_info
            mask = [0] * len(response_ids)
        extra["azr"] = azr_info
        extra.update({"turn_scores": [], "tool_rewards": []})  # the schema of verl's own loops
        return AgentLoopOutput(
            prompt_ids=prompt_ids,
            response_ids=response_ids,
            response_mask=mask,
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
        domain, info = self.domain, {"role": "propose", "task": task_type}
        sandbox_s = 0.0
        try:
            text = self._decode(response_ids)
            row_info = dict(row.get("extra_info") or {})
            start = time.perf_counter()
            proposal: Proposal = await self.loop.run_in_executor(
                None, lambda: domain.parse_proposal(task_type, text, row_info)
            )
            sandbox_s += time.perf_counter() - start
            label = None
            if proposal.valid:
                label, learn_s = await self._learnability(proposal.record, sampling_params)
                sandbox_s += learn_s
            reward = domain.proposer_reward(label)
            valid = proposal.valid and label is not None and label.valid
            record = label.record if label is not None and label.record is not None else proposal.record
            info.update(domain.proposal_info(proposal, label))
            info.update(
                valid=valid,
                reason=proposal.reason or (label.reason if label is not None else ""),
                detail=(proposal.detail or (label.detail if label is not None else ""))[:300],
                solve_rate=label.rate if label is not None else None,
                task=record.to_json() if valid and record is not None else None,
            )
        except Exception as e:  # never fail a trajectory on model output: the row scores as an invalid proposal
            logger.warning("self-play proposer loop failed on a %s proposal: %r", task_type, e)
            reward = domain.invalid_reward
            info.update(valid=False, reason="loop_error", detail=repr(e)[:300], solve_rate=None, task=None)
        info["sandbox_s"] = sandbox_s
        reward_info = make_result(
            reward,
            acc=float(info.get("solve_rate") or 0.0),
            format_ok=info.get("reason") not in _FORMAT_REASONS,
            error=str(info.get("reason", "")),
        )
        return reward, info, reward_info

    async def _label_row(
        self, task_type: str, response_ids: list[int], row: dict[str, Any], sampling_params: dict[str, Any]
    ) -> tuple[float, dict[str, Any], dict[str, Any]]:
        """Label the row's record (``extra_info["record"]``) from fresh solver samples; reward 0 (not trained)."""
        row_info = dict(row.get("extra_info") or {})
        info: dict[str, Any] = {"role": "label", "task": task_type, "purpose": str(row_info.get("purpose", ""))}
        try:
            record = self.domain.record_from_json(str(row_info["record"]))
            label, _ = await self._learnability(record, sampling_params, first=self._decode(response_ids))
            info.update(label.info)
            info.update(
                valid=label.valid,
                reason=label.reason,
                solve_rate=label.rate,
                task=(label.record or record).to_json(),
            )
        except Exception as e:  # never fail a trajectory: the record keeps its old label
            logger.warning("self-play label row failed: %r", e)
            info.update(valid=False, reason="loop_error", detail=repr(e)[:300], solve_rate=None, task=None)
        return 0.0, info, make_result(0.0, acc=float(info.get("solve_rate") or 0.0), error=str(info.get("reason")))

    async def _learnability(
        self, record: Any, sampling_params: dict[str, Any], first: str | None = None
    ) -> tuple[Label, float]:
        """The domain's label of ``record`` from ``learn_samples`` fresh solver samples (``first``, when given, is
        one of them), and the seconds spent judging them."""
        prompt_ids = self._encode(self.domain.solver_prompt(record))
        n = self.domain.learn_samples - (first is not None)
        outs = await asyncio.gather(*(self._generate(prompt_ids, sampling_params) for _ in range(n)))
        texts = ([first] if first is not None else []) + [
            self._decode(list(o.token_ids)[: self.response_length]) for o in outs
        ]
        start = time.perf_counter()
        label = await self.loop.run_in_executor(None, lambda: self.domain.label(record, texts))
        return label, time.perf_counter() - start


def register(agent_loop_module: Any) -> None:
    """Register :class:`AZRAgentLoop` in verl's agent-loop registry as ``azr`` (idempotent; runs in every worker)."""
    registry = agent_loop_module._agent_loop_registry
    target = f"{AZRAgentLoop.__module__}.{AZRAgentLoop.__qualname__}"
    if registry.get(AGENT_NAME, {}).get("_target_") != target:
        agent_loop_module.register(AGENT_NAME)(AZRAgentLoop)
