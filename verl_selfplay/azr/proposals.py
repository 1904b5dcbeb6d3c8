"""Judging an AZR proposal: parse, validate in the sandbox, estimate learnability, reward (pure; no verl).

- :func:`evaluate_proposal` turns a proposer's response into a :class:`~verl_selfplay.azr.buffers.Task` or a
  rejection with a machine-readable ``reason`` (``format`` when the answer cannot be parsed; otherwise the reason of
  :func:`reward_fns.code.azr.validate_proposal`: ``forbidden``, ``timeout``, ``nondeterministic``, ...). Every
  execution runs in the sandbox; nothing here executes model text itself.
- :func:`solve_rate` scores the learnability attempts (solver responses of the proposed task) with the ``azr_*``
  data sources of :func:`reward_fns.compute_score`, in the sandbox, concurrently.
- :func:`proposer_reward` is AZR's learnability reward: ``1 - s`` when the solve rate ``s`` is strictly between 0
  and 1; ``zero_solve_reward`` when ``s`` is 0 or 1 (-0.5 in the reference code, ``rewards/reward_managers.py``;
  0 in the paper's Eq. 4, see AZR issue #37); ``invalid_reward`` (-1) for an invalid or badly formatted proposal.

>>> proposer_reward(0.25, valid=True), proposer_reward(1.0, valid=True), proposer_reward(None, valid=False)
(0.75, -0.5, -1.0)
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import reward_fns
from reward_fns.code import Sandbox
from reward_fns.code.azr import parse_proposal, validate_proposal
from verl_selfplay.azr.buffers import Task
from verl_selfplay.azr.prompts import DATA_SOURCES, solver_ground_truth

MAX_PROPOSAL_CHARS = 20_000  # [ours] a longer response is rejected before any parsing ("too_long")
_TASK_CODES = {"deduction": "code_o", "abduction": "code_i", "induction": "code_f"}


@dataclass
class ProposalOutcome:
    """A judged proposal: ``task`` when valid, else ``reason`` (and a human ``detail``)."""

    valid: bool
    reason: str = ""
    detail: str = ""
    task: Task | None = None


def evaluate_proposal(
    task_type: str,
    response: str,
    reference_program: str = "",
    *,
    num_inputs: int = 10,
    sandbox: Sandbox | None = None,
    timeout: float | None = None,
    repeats: int = 2,
) -> ProposalOutcome:
    """Parse and validate one proposer response of ``task_type`` (never raises on bad model output).

    Induction proposals write inputs and a message for ``reference_program`` (the program their prompt showed).
    """
    if not isinstance(response, str) or not response.strip():
        return ProposalOutcome(False, "format", "empty response")
    if len(response) > MAX_PROPOSAL_CHARS:
        return ProposalOutcome(False, "too_long", f"{len(response)} characters > {MAX_PROPOSAL_CHARS}")
    code = _TASK_CODES[task_type]
    parsed = parse_proposal(response, code, num_inputs=num_inputs if task_type == "induction" else None)
    if parsed is None:
        return ProposalOutcome(False, "format", "no complete proposal in the last <answer> block")
    if task_type == "induction":
        program, inputs, message = reference_program, list(parsed["inputs"]), str(parsed["message"])
        if len({s.strip() for s in inputs}) < len(inputs):
            return ProposalOutcome(False, "duplicate_inputs", "the inputs must differ from each other")
    else:
        program, inputs, message = parsed["program"], [parsed["input"]], ""
    check = validate_proposal(program, inputs, repeats=repeats, sandbox=sandbox, timeout=timeout)
    if not check.valid:
        return ProposalOutcome(False, check.reason, check.detail)
    return ProposalOutcome(True, task=Task(task_type, program, inputs, list(check.outputs), message=message))


def solve_rate(
    task: Task,
    responses: Sequence[str],
    *,
    visible: int = 5,
    sandbox: Sandbox | None = None,
    timeout: float | None = None,
) -> float:
    """Share of ``responses`` (solver answers to ``task``) that ``reward_fns`` scores correct, checked concurrently."""
    if not responses:
        return 0.0
    ground_truth, extra_info = solver_ground_truth(task, visible=visible)
    source = DATA_SOURCES[task.type]
    options = {k: v for k, v in (("sandbox", sandbox), ("timeout", timeout)) if v is not None}

    def one(text: str) -> float:
        return float(reward_fns.compute_score(source, text, ground_truth, dict(extra_info), **options)["acc"])

    with ThreadPoolExecutor(max_workers=min(len(responses), 16)) as pool:
        accs = list(pool.map(one, responses))
    return sum(accs) / len(accs)


def proposer_reward(
    solve_rate: float | None, *, valid: bool, zero_solve_reward: float = -0.5, invalid_reward: float = -1.0
) -> float:
    """AZR's proposer reward (see the module docstring)."""
    if not valid or solve_rate is None:
        return float(invalid_reward)
    if solve_rate <= 0.0 or solve_rate >= 1.0:
        return float(zero_solve_reward)
    return 1.0 - float(solve_rate)
