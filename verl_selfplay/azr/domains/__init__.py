"""Self-play task domains: what the proposer writes, how a proposal is checked and labelled, what the solver answers.

The AZR trainer mode (:mod:`verl_selfplay.azr.trainer`) and agent loop (:mod:`verl_selfplay.azr.agent_loop`) run any
:class:`TaskDomain`; ``azr.domain`` picks one (``code``: Absolute Zero, the default; ``math``: math self-play labelled
by majority vote, :mod:`.math`). A domain defines, for each of its ``task_types``:

- the proposer prompt from K buffer references (:meth:`TaskDomain.proposer_prompt`);
- parsing and validating a proposal into a buffer record (:meth:`TaskDomain.parse_proposal`, never raises on model
  text; a rejection carries a machine-readable ``reason``);
- the solver prompt of a record (:meth:`TaskDomain.solver_prompt`) and how verl's reward worker scores a solver
  answer (:meth:`TaskDomain.solver_scoring`: data source, ground truth, extra info for :func:`reward_fns.compute_score`);
- labelling a proposal from ``learn_samples`` solver answers sampled in the agent loop, and the proposer reward
  (:meth:`TaskDomain.label`, :meth:`TaskDomain.proposer_reward`);
- the buffer record type (``record_cls``: JSON lines, a dedup ``key()``) and the buffers (:meth:`TaskDomain.buffers`).

The trainer-side parts that differ between domains (which rows a step holds, what a harvest records, the per-step
metrics) are the hooks :meth:`TaskDomain.build_rows` and :meth:`TaskDomain.harvest`; a domain that needs the whole
batch before advantages (math: the batch-diversity penalty) overrides :meth:`TaskDomain.before_advantage`.
A third domain is one file: a subclass registered in :data:`DOMAINS`.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

__all__ = ["DOMAINS", "Label", "Proposal", "RowSpec", "TaskDomain", "get_domain"]


@dataclass
class Proposal:
    """A parsed proposal: ``record`` when it passed the checks, else a ``reason`` (and a human ``detail``)."""

    valid: bool
    reason: str = ""
    detail: str = ""
    record: Any = None


@dataclass
class Label:
    """The outcome of labelling a record from solver samples: ``rate`` is the solve rate the proposer reward uses
    (code: share of correct answers; math: share agreeing with the majority); ``record`` carries the label."""

    valid: bool
    rate: float | None = None
    reason: str = ""
    detail: str = ""
    record: Any = None
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class RowSpec:
    """One row of a step, before the trainer turns it into a verl row: its ``role`` (``propose``, ``solve`` or
    ``label``), ``task_type``, advantage ``group`` (the task part of the uid; no ``_`` or ``.``), prompt ``text``,
    reward ``data_source``, ``ground_truth`` and ``extra_info``."""

    role: str
    task_type: str
    group: str
    text: str
    data_source: str
    ground_truth: str = ""
    extra_info: dict[str, Any] = field(default_factory=dict)


class TaskDomain(ABC):
    """A self-play task domain (see the module docstring)."""

    name: ClassVar[str]
    metric_prefix: ClassVar[str]
    proposer_data_source: ClassVar[str] = "azr_propose"  # scored in the agent loop, never by the reward worker

    task_types: tuple[str, ...]
    learn_samples: int  # solver samples per valid proposal (and per label row)
    invalid_reward: float

    # ------------------------------------------------------------------ records and prompts
    @abstractmethod
    def record_from_json(self, text: str) -> Any:
        """Inverse of ``record.to_json()``; raises ``ValueError`` on a malformed record."""

    @abstractmethod
    def buffers(self) -> Any:
        """Fresh buffers (a :class:`~verl_selfplay.azr.buffers.TaskBuffers`) holding the domain's seed records."""

    @abstractmethod
    def proposer_prompt(self, task_type: str, references: Sequence[Any]) -> str:
        """The proposer prompt of ``task_type`` built on ``references``."""

    @abstractmethod
    def solver_prompt(self, record: Any) -> str:
        """The solver prompt of ``record``."""

    @abstractmethod
    def solver_scoring(self, record: Any) -> tuple[str, str, dict[str, Any]]:
        """``(data_source, ground_truth, extra_info)`` with which :func:`reward_fns.compute_score` scores a solver
        answer to ``record``."""

    # ------------------------------------------------------------------ proposals (in the agent loop)
    @abstractmethod
    def parse_proposal(self, task_type: str, text: str, row_info: Mapping[str, Any]) -> Proposal:
        """Parse and validate one proposer response (``row_info``: the row's ``extra_info``); never raises."""

    @abstractmethod
    def label(self, record: Any, responses: Sequence[str]) -> Label:
        """Label ``record`` from solver ``responses``; never raises on model text."""

    @abstractmethod
    def proposer_reward(self, label: Label | None) -> float:
        """The proposer reward of a proposal: ``label`` is None when it failed to parse or validate."""

    def proposal_info(self, proposal: Proposal, label: Label | None) -> dict[str, Any]:
        """Extra, domain-specific fields of the ``extra_fields["azr"]`` record of a proposer or label row."""
        return dict(label.info) if label is not None else {}

    # ------------------------------------------------------------------ trainer hooks
    @abstractmethod
    def build_rows(self, buffers: Any, rng: random.Random, step: int, fits: Callable[[str], bool]) -> list[RowSpec]:
        """The rows of training step ``step`` (``fits(text)``: whether a prompt fits ``data.max_prompt_length``)."""

    @abstractmethod
    def harvest(self, buffers: Any, rows: Mapping[str, list[dict[str, Any]]], step: int) -> dict[str, float]:
        """Update the buffers from one step's rows (``{group: [row]}``, each row ``{"azr", "reward", "len",
        "adv"}``) and return the step's metrics."""

    def seeding_rows(self, buffers: Any, rng: random.Random, fits: Callable[[str], bool]) -> list[RowSpec]:
        """Rows generated (untrained) before the first step, until this returns none; default: none."""
        return []

    def before_advantage(self, rows: Sequence[dict[str, Any]], buffers: Any) -> list[tuple[float, dict[str, Any]]]:
        """Batch-level proposer rewards: for each proposer row (``{"azr", "score"}``) its final reward and updated
        ``azr`` record. Default: unchanged."""
        return [(float(r["score"]), r["azr"]) for r in rows]

    def metric_group(self, group: str) -> str:
        """The name under which ``group``'s rows are summarised in per-group metrics (default: the group itself)."""
        return group

    def drop_solver_groups(self, accuracies: Mapping[str, Sequence[float]]) -> set[str]:
        """Solver groups (``{group: [acc per row]}``) whose advantages are zeroed after verl computes them, as an
        accuracy filter would drop them (whole steps cannot be refilled). Default: none."""
        return set()

    def state(self) -> dict[str, Any]:
        """Extra checkpoint state (JSON-able) beside the buffers."""
        return {}

    def load_state(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state` (default: nothing to restore)."""
        return None

    def rows_per_step(self) -> int:
        """How many rows :meth:`build_rows` returns (``data.train_batch_size`` must equal it)."""
        raise NotImplementedError


def get_domain(name: str, azr: Any, options: Mapping[str, Any] | None = None) -> TaskDomain:
    """The domain called ``name`` built from the ``azr.*`` settings and its own options (``selfplay_math.*``...)."""
    if name not in DOMAINS:
        raise ValueError(f"azr.domain={name!r} is unknown; valid: {', '.join(sorted(DOMAINS))}")
    module, cls = DOMAINS[name].rsplit(":", 1)
    import importlib

    return getattr(importlib.import_module(module), cls)(azr, options)


DOMAINS: dict[str, str] = {
    "code": "verl_selfplay.azr.domains.code:CodeDomain",
    "math": "verl_selfplay.azr.domains.math:MathDomain",
}
