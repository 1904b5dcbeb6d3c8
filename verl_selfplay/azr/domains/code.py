"""Absolute Zero's code domain (``azr.domain=code``, the default): the interpreter labels every proposal.

Task types deduction, abduction and induction (AZR paper §3.2); records are :class:`~verl_selfplay.azr.buffers.Task`;
prompts from :mod:`verl_selfplay.azr.prompts`; a proposal is parsed and validated in the sandbox
(:func:`verl_selfplay.azr.proposals.evaluate_proposal`), its learnability is the solve rate of ``azr.n_learn`` solver
samples (:func:`~verl_selfplay.azr.proposals.solve_rate`) and its reward AZR's ``1 - s``
(:func:`~verl_selfplay.azr.proposals.proposer_reward`). Each step holds ``azr.propose_per_type`` proposer rows and
``azr.solve_per_type`` solver rows of every type, one advantage group per (role, type); metrics are ``azr/{type}/*``.
"""

from __future__ import annotations

import json
import logging
import os
import random
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from verl_selfplay.azr.buffers import Task, TaskBuffers
from verl_selfplay.azr.config import AZRConfig
from verl_selfplay.azr.domains import Label, Proposal, RowSpec, TaskDomain
from verl_selfplay.azr.prompts import DATA_SOURCES, PROPOSER_DATA_SOURCE, solver_ground_truth
from verl_selfplay.azr.prompts import proposer_prompt as build_proposer_prompt
from verl_selfplay.azr.prompts import solver_prompt as build_solver_prompt
from verl_selfplay.azr.seeds import seed_tasks
from verl_selfplay.common.metrics import mean

logger = logging.getLogger("verl_selfplay.azr.trainer")

_SANDBOXES: dict[tuple, Any] = {}  # one sandbox pool per worker process and settings


def _sandbox(cfg: AZRConfig, loop_workers: int = 1) -> Any:
    """This worker's sandbox pool: the node's CPUs divided among verl's ``loop_workers`` agent-loop workers
    (``rollout.agent.num_workers``; fewer share a node on a multi-node run, so this never oversubscribes), unless
    ``azr.sandbox_workers`` sets the size."""
    from reward_fns.code import Sandbox

    workers = cfg.sandbox_workers or max(1, (os.cpu_count() or 1) // max(1, loop_workers))
    key = (os.getpid(), workers, cfg.timeout)
    if key not in _SANDBOXES:
        _SANDBOXES[key] = Sandbox(workers=workers, timeout=cfg.timeout)
    return _SANDBOXES[key]


class CodeDomain(TaskDomain):
    """Absolute Zero's code tasks (see the module docstring)."""

    name = "code"
    metric_prefix = "azr"
    proposer_data_source = PROPOSER_DATA_SOURCE

    def __init__(self, azr: AZRConfig, options: Mapping[str, Any] | None = None) -> None:
        self.cfg = azr
        self.task_types = azr.task_types
        self.learn_samples = azr.n_learn
        self.invalid_reward = azr.invalid_reward
        self.sandbox: Any = None

    def setup_worker(self, loop_workers: int) -> None:
        """Give this agent-loop worker its sandbox pool."""
        self.sandbox = _sandbox(self.cfg, loop_workers)

    # ------------------------------------------------------------------ records and prompts
    def record_from_json(self, text: str) -> Task:
        return Task.from_dict(json.loads(text))

    def buffers(self) -> TaskBuffers:
        return TaskBuffers.seeded(self.task_types, seed_tasks(), self.cfg.buffer_cap, self.cfg.dedup)

    def proposer_prompt(self, task_type: str, references: Sequence[Task]) -> str:
        return build_proposer_prompt(
            task_type, references, num_inputs=self.cfg.induction_inputs, style=self.cfg.prompt_style
        )

    def solver_prompt(self, record: Task) -> str:
        return build_solver_prompt(record, visible=self.cfg.induction_visible, style=self.cfg.prompt_style)

    def solver_scoring(self, record: Task) -> tuple[str, str, dict[str, Any]]:
        truth, info = solver_ground_truth(record, visible=self.cfg.induction_visible)
        return DATA_SOURCES[record.type], truth, {"task_type": info["task_type"], "program": info["program"]}

    # ------------------------------------------------------------------ proposals
    def parse_proposal(self, task_type: str, text: str, row_info: Mapping[str, Any]) -> Proposal:
        from verl_selfplay.azr.proposals import evaluate_proposal

        outcome = evaluate_proposal(
            task_type,
            text,
            str(row_info.get("reference_program", "")),
            num_inputs=self.cfg.induction_inputs,
            sandbox=self.sandbox,
            timeout=self.cfg.timeout,
            repeats=self.cfg.validation_repeats,
        )
        return Proposal(outcome.valid, outcome.reason, outcome.detail, outcome.task)

    def label(self, record: Task, responses: Sequence[str]) -> Label:
        from verl_selfplay.azr.proposals import solve_rate

        rate = solve_rate(
            record, responses, visible=self.cfg.induction_visible, sandbox=self.sandbox, timeout=self.cfg.timeout
        )
        return Label(True, rate=rate, record=record)

    def proposer_reward(self, label: Label | None) -> float:
        from verl_selfplay.azr.proposals import proposer_reward

        valid = label is not None and label.valid
        return proposer_reward(
            label.rate if valid else None,
            valid=valid,
            zero_solve_reward=self.cfg.zero_solve_reward,
            invalid_reward=self.cfg.invalid_reward,
        )

    # ------------------------------------------------------------------ trainer hooks
    def rows_per_step(self) -> int:
        return self.cfg.batch_size

    def _proposer_row(self, buffers: TaskBuffers, task_type: str, rng: random.Random, fits) -> RowSpec:
        cfg = self.cfg
        if task_type == "induction":  # one program to write inputs for, from the deduction/abduction programs
            pool = [t for tt in ("deduction", "abduction") if tt in buffers for t in buffers[tt].tasks]
            pool = pool or seed_tasks()["deduction"]
            refs = [rng.choice(pool)]
        else:
            buffer = buffers[task_type]
            refs = buffer.references(cfg.n_references, rng) if len(buffer) else seed_tasks()[task_type][:1]
        text = self.proposer_prompt(task_type, refs)
        while len(refs) > 1 and not fits(text):  # verl would left-truncate the instructions away
            refs = refs[:-1]
            text = self.proposer_prompt(task_type, refs)
        info = {"task_type": task_type, "program": "", "reference_program": refs[0].program if refs else ""}
        return RowSpec("propose", task_type, task_type, text, self.proposer_data_source, "", info)

    def _solver_row(self, task: Task) -> RowSpec:
        source, truth, info = self.solver_scoring(task)
        info = {**info, "reference_program": ""}
        return RowSpec("solve", task.type, task.type, self.solver_prompt(task), source, truth, info)

    def build_rows(self, buffers: TaskBuffers, rng: random.Random, step: int, fits: Callable[[str], bool]):
        rows = []
        latest = step - 1  # tasks harvested at the previous step come first
        for task_type in self.task_types:
            rows += [self._proposer_row(buffers, task_type, rng, fits) for _ in range(self.cfg.propose_per_type)]
            buffer = buffers[task_type]
            if len(buffer):
                tasks = buffer.for_solver(self.cfg.solve_per_type, rng, latest)
            else:
                logger.warning(f"AZR: the {task_type} buffer is empty; falling back to the seed tasks")
                tasks = [rng.choice(seed_tasks()[task_type]) for _ in range(self.cfg.solve_per_type)]
            rows += [self._solver_row(t) for t in tasks]
        return rows

    def seeding_rows(self, buffers: TaskBuffers, rng: random.Random, fits: Callable[[str], bool]) -> list[RowSpec]:
        """Proposer rows for each type whose buffer holds fewer than ``azr.seed_buffer_size`` tasks."""
        target = self.cfg.seed_buffer_size
        short = [t for t in self.task_types if len(buffers[t]) < target]
        return [self._proposer_row(buffers, t, rng, fits) for t in short for _ in range(self.cfg.propose_per_type)]

    def harvest(self, buffers: TaskBuffers, rows: Mapping[str, list[dict[str, Any]]], step: int) -> dict[str, float]:
        out: dict[str, float] = {}
        sandbox_s = 0.0
        for task_type in self.task_types:
            proposals = rows.get(f"propose.{task_type}", [])
            solutions = rows.get(f"solve.{task_type}", [])
            valid = [p for p in proposals if p["azr"].get("valid")]
            added = 0
            for p in valid:
                task = self.record_from_json(p["azr"]["task"])
                task.source = "proposed"
                added += buffers[task_type].add(task, step)
            reasons = Counter(str(p["azr"].get("reason") or "unknown") for p in proposals if not p["azr"].get("valid"))
            rates = [p["azr"]["solve_rate"] for p in valid if p["azr"].get("solve_rate") is not None]
            prefix = f"{self.metric_prefix}/{task_type}"
            out[f"{prefix}/valid_rate"] = len(valid) / len(proposals) if proposals else float("nan")
            out[f"{prefix}/learnability"] = mean((p["reward"].get("score", np.nan) for p in valid), np.nan)
            out[f"{prefix}/solver_acc"] = mean((s["reward"].get("acc", 0.0) for s in solutions), np.nan)
            out[f"{prefix}/buffer_size"] = float(len(buffers[task_type]))
            out[f"{prefix}/distinct_programs"] = float(buffers[task_type].distinct_programs())
            out[f"{prefix}/added"] = float(added)
            out[f"{prefix}/solve_rate_mean"] = mean(rates, np.nan)
            out[f"{prefix}/solve_rate_trivial"] = mean((r in (0.0, 1.0) for r in rates), np.nan)
            out[f"{prefix}/proposer_response_length"] = mean((p["len"] for p in proposals), np.nan)
            out[f"{prefix}/solver_response_length"] = mean((s["len"] for s in solutions), np.nan)
            for reason, count in reasons.items():
                out[f"{prefix}/rejected/{reason}"] = float(count)
            sandbox_s += sum(float(p["azr"].get("sandbox_s") or 0.0) for p in proposals)
        out[f"{self.metric_prefix}/sandbox_s"] = sandbox_s
        return out
