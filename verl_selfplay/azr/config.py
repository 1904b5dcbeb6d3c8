"""``azr.*`` settings of the AZR trainer mode, validated at start-up (a bad value names its key).

Defaults follow the Absolute Zero reference (LeapLabTHU/Absolute-Zero-Reasoner, ``scripts/selfplay/7b.sh`` and
``absolute_zero_reasoner/configs/azr_ppo_trainer.yaml``), cited per field; our own choices are marked [ours].
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

TASKS: tuple[str, ...] = ("deduction", "abduction", "induction")
PROMPT_STYLES = ("reference", "compact")
PREFIX = "azr"


@dataclass(frozen=True)
class AZRConfig:
    """Validated ``azr.*`` options (see the module docstring for the sources)."""

    domain: str = "code"  # [ours] the task domain (verl_selfplay.azr.domains): code (Absolute Zero) or math
    task_types: tuple[str, ...] = TASKS  # [ref] code_o, code_i, code_f
    propose_per_type: int = 64  # [ref] data.train_batch_size=64 per task type and role
    solve_per_type: int = 64  # [ref]
    n_references: int = 6  # [ref] K reference snippets in a proposer prompt
    n_learn: int = 8  # [ref] solver samples that estimate a proposal's learnability
    zero_solve_reward: float = -0.5  # [ref code] proposer reward when s is 0 or 1; the paper's Eq. 4 gives 0
    invalid_reward: float = -1.0  # [ref] unparsable or invalid proposal
    induction_inputs: int = 10  # [ref] inputs an induction proposal writes
    induction_visible: int = 5  # [ref] of which the first 5 pairs are shown to the solver; the rest are hidden
    buffer_cap: int = 16384  # [ref] per task type; the oldest proposed tasks are evicted first
    dedup: bool = True  # [ours] the reference keeps duplicates
    seed_buffer_size: int = 0  # [ref: 256] 0 skips the seeding phase (the hand-written seeds only)
    seed_max_rounds: int = 20  # [ours] cap on seeding rounds
    timeout: float = 10.0  # [ref] seconds per program execution
    validation_repeats: int = 2  # [ref] runs per input that must agree (determinism)
    prompt_style: str = "reference"  # [ours] "compact": short prompts for tiny models
    sample_seed: int = 0  # [ours] seed of the buffer sampling
    sandbox_workers: int | None = None  # [ours] None: the node's CPUs divided among the agent-loop workers

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any] | None) -> AZRConfig:
        """Build from the ``azr`` config node; raises ``ValueError`` naming ``azr.<key>`` on a bad value.

        >>> AZRConfig.from_mapping({"n_learn": 4}).n_learn
        4
        >>> AZRConfig.from_mapping({"n_lern": 4})
        Traceback (most recent call last):
        ...
        ValueError: unknown key azr.n_lern; valid: buffer_cap, dedup, domain, induction_inputs, induction_visible, invalid_reward, n_learn, n_references, prompt_style, propose_per_type, sample_seed, sandbox_workers, seed_buffer_size, seed_max_rounds, solve_per_type, task_types, timeout, validation_repeats, zero_solve_reward
        """
        raw = dict(raw or {})
        names = sorted(f.name for f in fields(cls))
        unknown = sorted(set(raw) - set(names))
        if unknown:
            raise ValueError(f"unknown key {PREFIX}.{unknown[0]}; valid: {', '.join(names)}")
        values: dict[str, Any] = {}
        for name, value in raw.items():
            values[name] = _check(name, value)
        cfg = cls(**values)
        if cfg.induction_visible >= cfg.induction_inputs:
            raise ValueError(
                f"{PREFIX}.induction_visible ({cfg.induction_visible}) must be < {PREFIX}.induction_inputs "
                f"({cfg.induction_inputs}): the rest are the hidden pairs the solver is scored on"
            )
        return cfg

    @property
    def batch_size(self) -> int:
        """Rows per step of the code domain: proposer and solver rows of every task type."""
        return len(self.task_types) * (self.propose_per_type + self.solve_per_type)


_INTS = {
    "propose_per_type": 0,
    "solve_per_type": 0,
    "n_references": 1,
    "n_learn": 1,
    "induction_inputs": 2,
    "induction_visible": 1,
    "buffer_cap": 1,
    "seed_buffer_size": 0,
    "seed_max_rounds": 1,
    "validation_repeats": 1,
    "sample_seed": 0,
}


def _check(name: str, value: Any) -> Any:
    key = f"{PREFIX}.{name}"
    if name in _INTS:
        if isinstance(value, bool) or not isinstance(value, int) or value < _INTS[name]:
            raise ValueError(f"{key} must be an int >= {_INTS[name]}, got {value!r}")
        return value
    if name == "sandbox_workers":
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValueError(f"{key} must be null or an int >= 1, got {value!r}")
        return value
    if name in ("zero_solve_reward", "invalid_reward", "timeout"):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"{key} must be a finite number, got {value!r}")
        if name == "timeout" and value <= 0:
            raise ValueError(f"{key} must be > 0 seconds, got {value!r}")
        return float(value)
    if name == "domain":
        from verl_selfplay.azr.domains import DOMAINS

        if value not in DOMAINS:
            raise ValueError(f"{key} must be one of {', '.join(sorted(DOMAINS))}, got {value!r}")
        return value
    if name == "dedup":
        if not isinstance(value, bool):
            raise ValueError(f"{key} must be true or false, got {value!r}")
        return value
    if name == "prompt_style":
        if value not in PROMPT_STYLES:
            raise ValueError(f"{key} must be one of {', '.join(PROMPT_STYLES)}, got {value!r}")
        return value
    if name == "task_types":
        items = [value] if isinstance(value, str) else list(value or [])
        bad = [t for t in items if t not in TASKS]
        if not items or bad or len(set(items)) != len(items):
            raise ValueError(f"{key} must be a non-empty list of distinct {', '.join(TASKS)}, got {value!r}")
        return tuple(items)
    raise AssertionError(name)  # pragma: no cover - every field has a branch
