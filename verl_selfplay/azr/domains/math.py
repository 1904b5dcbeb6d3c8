"""Math self-play (``azr.domain=math``): the proposer writes problems the policy half-solves; majority votes label them.

Math has no interpreter, so a proposed problem has no gold answer. Our seed note on PromptCoT asks for prompt
generation and policy solving in one loop, prompts aimed at what the policy cannot yet do, vote labels, and control
of the buffer's quality and diversity. This domain does that on the AZR machinery (same trainer mode, agent loop and
buffers). Settings: ``selfplay_math.*`` (:class:`MathConfig`, checked at start-up, naming the key); row counts come
from ``azr.propose_per_type`` (proposals per step) and ``azr.solve_per_type`` (solver problems per step).

One step holds:

- **proposer rows** (group ``propose.math``): K references from the buffer (``azr.n_references``), optionally a
  concept and a difficulty (PromptCoT's concept conditioning, Zhao et al. 2025, arXiv 2503.02324); the response's
  last ``<answer>`` block is the problem. In the agent loop a proposal is rejected, with a ``reason``, when it is
  empty (``format``), not valid UTF-8 (``encoding``), too long (``too_long``), tries to end the template
  (``injection``: R1/ChatML tags or ``User:``/``Assistant:`` turns), states its answer (``contains_answer``), or
  copies a reference (``copy``). Otherwise ``m = selfplay_math.label_samples`` solver answers are sampled through
  verl's inference server (concurrently, training temperature) and voted on with :func:`reward_fns.vote.vote`
  (equivalence-aware): the label is the majority answer, ``s`` the share of the m samples that agree with it. It is
  rejected when an answer comparison timed out (``timeout``), fewer than ``min_answer_share`` samples give an answer
  (``no_answers``), or ``s < min_majority_share`` (``unstable_label``). Before advantages the trainer compares the
  batch's valid proposals with the buffer by MiniLM embedding (``near_duplicate`` at cosine >=
  ``dedup_threshold``) and with each other.
- **Proposer reward** (:func:`proposer_reward`): ``1 - 2|s - 1/2|`` minus ``similarity_penalty * n_near / B``, where
  ``n_near`` counts the other valid proposals of the batch within cosine ``batch_similarity`` and ``B`` the valid
  proposals: R-Zero's uncertainty reward and repetition penalty (Huang et al. 2025, arXiv 2508.05004, §3.2), with
  MiniLM cosine clusters instead of R-Zero's BLEU clusters [ours]. An invalid proposal scores ``azr.invalid_reward``.
- **solver rows**: ``azr.solve_per_type`` labelled buffer problems, each ``solver_samples`` times (one advantage group
  per problem, ``solve.p<id>``: Task-Relative REINFORCE++ then whitens per problem, as GRPO's groups), scored by
  verl's reward worker with the ``vote`` data source against the stored label. Problems are drawn preferring a last
  measured ``s`` near 1/2 (PCL's targeting, arXiv 2510.01135), weight ``max(0.05, 1 - 2|s - 1/2|)``. Each group's
  accuracy re-measures ``s`` under the current policy.
- **label rows** (response mask all zero: generated, never trained): ``relabel_per_step`` buffer problems (never
  labelled first, then the least recently measured) re-labelled by a fresh vote of the current policy, and
  ``probes_per_step`` held-out seed problems with gold answers, labelled by the same loop, whose agreement with the
  gold is ``selfplay_math/label_acc_on_gold`` (how far to trust the pseudo-labels).

The buffer (:class:`MathBuffer`) deduplicates by normalised text and by embedding, caps at ``azr.buffer_cap``
evicting the proposed problem whose ``s`` is farthest from 1/2 (the oldest on ties), and is saved with verl's
checkpoints (``azr_buffers/math.jsonl``). Seeds come from ``seed_file`` (a verl RL parquet, or JSON lines with a
``problem``/``question``/``prompt`` and optional ``answer``/``ground_truth``); before step 1 the seeding phase labels
seeds by vote (or takes their gold, ``seed_labels=gold``) until ``azr.solve_per_type`` problems are labelled.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import random
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from reward_fns import vote as vote_fns
from reward_fns.format import extract_tag
from reward_fns.math import extract_answer, gold_text, verify_answer
from verl_selfplay.azr.buffers import TaskBuffer, TaskBuffers
from verl_selfplay.azr.domains import Label, Proposal, RowSpec, TaskDomain
from verl_selfplay.azr.prompts import wrap
from verl_selfplay.common.metrics import mean

logger = logging.getLogger("verl_selfplay.azr.trainer")

PREFIX = "selfplay_math"
TASK = "math"
SOLVER_DATA_SOURCE = "vote"
HIST_BINS = (0.2, 0.4, 0.6, 0.8)  # solve-rate histogram edges: [0, .2), [.2, .4), ..., [.8, 1]
_INJECTION = ("<think>", "</think>", "<answer>", "</answer>", "<|im_start|>", "<|im_end|>", "<|endoftext|>")
_TURN = re.compile(r"(^|\n)\s*(User|Assistant|System)\s*:", re.IGNORECASE)
_STATES_ANSWER = re.compile(
    r"\\boxed|\\fbox|\b(the\s+)?(final\s+)?answer\s*(is|:|=)|答案\s*(是|为|:|：)", re.IGNORECASE
)


# ---------------------------------------------------------------------- settings
@dataclass(frozen=True)
class MathConfig:
    """Validated ``selfplay_math.*`` options (our choices unless cited; see the module docstring)."""

    seed_file: str = ""  # required: the seed problems
    heldout: int = 0  # seed problems with gold held out for label_acc_on_gold
    probes_per_step: int = 0  # held-out problems labelled per step
    relabel_per_step: int = 0  # buffer problems re-labelled per step
    label_samples: int = 8  # m: solver samples that label a proposal (AZR's n_learn is 8)
    solver_samples: int = 16  # rows per solver problem (PromptCoT zero-RL: rollout 16)
    max_problem_chars: int = 2000
    min_answer_share: float = 0.5
    min_majority_share: float = 0.3
    dedup_threshold: float = 0.95  # MiniLM cosine at which a proposal duplicates a buffer problem
    batch_similarity: float = 0.9  # cosine within which two proposals of a batch count as one template
    similarity_penalty: float = 0.5  # R-Zero's repetition penalty weight (their lambda is 1 on BLEU clusters)
    seed_labels: str = "vote"  # "vote": seeds are labelled by the policy; "gold": by their gold answers
    concepts: tuple[str, ...] = ()  # PromptCoT-style concept conditioning (empty: off)
    difficulties: tuple[str, ...] = ("easy", "medium", "hard")
    timeout: float = 5.0  # math-verify budget per comparison (reward_fns.math's default)
    embedder: str = ""  # sentence-transformers model dir; "": the bundled all-MiniLM-L6-v2
    solver_acc_range: tuple[float, float] = (0.0, 1.0)  # solver groups outside get zero advantage (PromptCoT: .1, .8)

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any] | None) -> MathConfig:
        """Build from the ``selfplay_math`` node; ``ValueError`` naming ``selfplay_math.<key>`` on a bad value.

        >>> MathConfig.from_mapping({"seed_file": "s.jsonl", "label_samples": 4}).label_samples
        4
        >>> MathConfig.from_mapping({"seed_file": "s.jsonl", "min_majority_share": 2})
        Traceback (most recent call last):
        ...
        ValueError: selfplay_math.min_majority_share must be a number in [0, 1], got 2
        """
        raw = dict(raw or {})
        names = sorted(f.name for f in fields(cls))
        unknown = sorted(set(raw) - set(names))
        if unknown:
            raise ValueError(f"unknown key {PREFIX}.{unknown[0]}; valid: {', '.join(names)}")
        cfg = cls(**{k: _check(k, v) for k, v in raw.items()})
        if not cfg.seed_file:
            raise ValueError(f"{PREFIX}.seed_file must name the seed problems (a verl RL parquet or JSON lines)")
        return cfg


_COUNTS = {"heldout": 0, "probes_per_step": 0, "relabel_per_step": 0, "label_samples": 1, "solver_samples": 1}
_SHARES = ("min_answer_share", "min_majority_share", "dedup_threshold", "batch_similarity")


def _check(name: str, value: Any) -> Any:
    key = f"{PREFIX}.{name}"
    number = not isinstance(value, bool) and isinstance(value, (int, float))
    if name in _COUNTS:
        if isinstance(value, bool) or not isinstance(value, int) or value < _COUNTS[name]:
            raise ValueError(f"{key} must be an int >= {_COUNTS[name]}, got {value!r}")
        return value
    if name == "max_problem_chars":
        if isinstance(value, bool) or not isinstance(value, int) or value < 8:
            raise ValueError(f"{key} must be an int >= 8, got {value!r}")
        return value
    if name in _SHARES:
        if not number or not 0.0 <= value <= 1.0:
            raise ValueError(f"{key} must be a number in [0, 1], got {value!r}")
        return float(value)
    if name in ("similarity_penalty", "timeout"):
        if not number or not math.isfinite(value) or value < 0 or (name == "timeout" and value == 0):
            raise ValueError(f"{key} must be a finite number {'> 0' if name == 'timeout' else '>= 0'}, got {value!r}")
        return float(value)
    if name == "seed_labels":
        if value not in ("vote", "gold"):
            raise ValueError(f"{key} must be vote or gold, got {value!r}")
        return value
    if name in ("concepts", "difficulties"):
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, (list, tuple)) or not all(isinstance(x, str) and x.strip() for x in items):
            raise ValueError(f"{key} must be a list of non-empty strings, got {value!r}")
        if name == "difficulties" and not items:
            raise ValueError(f"{key} must not be empty")
        return tuple(items)
    if name == "solver_acc_range":
        ok = (
            isinstance(value, (list, tuple))
            and len(value) == 2
            and all(not isinstance(v, bool) and isinstance(v, (int, float)) for v in value)
        )
        if not ok or not 0.0 <= value[0] <= value[1] <= 1.0:
            raise ValueError(f"{key} must be [low, high] with 0 <= low <= high <= 1, got {value!r}")
        return (float(value[0]), float(value[1]))
    if name in ("seed_file", "embedder"):
        if not isinstance(value, str):
            raise ValueError(f"{key} must be a string, got {value!r}")
        return value
    raise AssertionError(name)  # pragma: no cover - every field has a branch


# ---------------------------------------------------------------------- records and buffer
def normalise(text: str) -> str:
    """The dedup form of a problem: lower case, whitespace collapsed.

    >>> normalise("  What is  3+4? ")
    'what is 3+4?'
    """
    return " ".join(str(text).split()).lower()


def problem_id(text: str) -> str:
    """A stable 12-hex id of a problem's normalised text (an advantage group name: no ``_`` or ``.``)."""
    return hashlib.sha1(normalise(text).encode("utf-8", "replace")).hexdigest()[:12]


@dataclass
class Problem:
    """One math problem: its ``label`` (vote; None until labelled), ``solve_rate`` (the last measured share of
    samples agreeing with the label), the ``gold`` answer when the seed file had one (metrics only)."""

    problem: str
    label: str | None = None
    solve_rate: float | None = None
    gold: str = ""
    concept: str = ""
    measured_step: int = -1
    step: int = 0
    source: str = "seed"  # "seed", "proposed" or "heldout"
    type: str = TASK

    @property
    def id(self) -> str:
        return problem_id(self.problem)

    def key(self) -> tuple[str, tuple[str, ...]]:
        """Deduplication key: the normalised text."""
        return normalise(self.problem), ()

    def to_json(self) -> str:
        """One JSON line."""
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Problem:
        """Inverse of :meth:`to_json` (after ``json.loads``); ``ValueError`` on a malformed record."""
        try:
            rate = d.get("solve_rate")
            return cls(
                problem=str(d["problem"]),
                label=None if d.get("label") is None else str(d["label"]),
                solve_rate=None if rate is None else float(rate),
                gold=str(d.get("gold") or ""),
                concept=str(d.get("concept") or ""),
                measured_step=int(d.get("measured_step", -1)),
                step=int(d.get("step", 0)),
                source=str(d.get("source", "proposed")),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"malformed problem record {str(d)[:200]}: {e!r}") from e


def usefulness(rate: float | None) -> float:
    """``1 - 2|s - 1/2|``: 1 at s = 1/2, 0 at s in {0, 1}; 1/2 for a problem never measured.

    >>> usefulness(0.5), usefulness(1.0), usefulness(0.25), usefulness(None)
    (1.0, 0.0, 0.5, 0.5)
    """
    return 0.5 if rate is None else max(0.0, 1.0 - 2.0 * abs(float(rate) - 0.5))


class MathBuffer(TaskBuffer):
    """The math problems: deduplicated by text and embedding, capped, evicting the least useful proposed problem."""

    record_cls = Problem

    def __init__(
        self,
        *args: Any,
        embed: Callable[[Sequence[str]], np.ndarray] | None = None,
        dedup_threshold: float = 1.0,
        **kwargs: Any,
    ) -> None:
        self.embed = embed
        self.dedup_threshold = dedup_threshold
        self._matrix: np.ndarray | None = None  # embeddings of self.tasks, in order (see vectors)
        self._matrix_texts: list[str] = []
        super().__init__(*args, **kwargs)

    def vectors(self, problems: Sequence[Problem] | None = None) -> np.ndarray:
        """Embeddings of ``problems`` (default: the buffer's, kept as one matrix that grows with appends)."""
        if problems is not None:
            return self.embed([p.problem for p in problems]) if self.embed else np.zeros((len(problems), 1), np.float32)
        if self.embed is None:
            return np.zeros((len(self.tasks), 1), np.float32)
        texts = [t.problem for t in self.tasks]
        cached = self._matrix_texts
        if texts[: len(cached)] != cached or not cached:
            cached, self._matrix = [], None
        if len(texts) > len(cached) or self._matrix is None:
            new = self.embed(texts[len(cached) :])
            self._matrix = new if self._matrix is None else np.concatenate([self._matrix, new])
        self._matrix_texts = texts
        return self._matrix

    def max_similarity(self, texts: Sequence[str]) -> np.ndarray:
        """For each text, its highest cosine to a buffer problem (0 without an encoder or problems)."""
        if not texts or not self.tasks or self.embed is None:
            return np.zeros(len(texts), np.float32)
        return (self.embed(list(texts)) @ self.vectors().T).max(axis=1)

    def add(self, task: Problem, step: int) -> bool:
        """Add ``task`` unless it duplicates a problem by text or (cosine >= ``dedup_threshold``) by embedding."""
        if self.dedup and self.dedup_threshold < 1.0 and task not in self:
            if float(self.max_similarity([task.problem])[0]) >= self.dedup_threshold:
                return False
        return super().add(task, step)

    def _victim(self) -> int:
        """The proposed problem whose last solve rate is farthest from 1/2 (oldest first on ties)."""
        candidates = [i for i, t in enumerate(self.tasks) if t.source == "proposed"]
        if not candidates:
            return super()._victim()
        return min(candidates, key=lambda i: (usefulness(self.tasks[i].solve_rate), self.tasks[i].step, i))

    def get(self, pid: str) -> Problem | None:
        """The problem with id ``pid``."""
        return next((t for t in self.tasks if t.id == pid), None)

    def labelled(self) -> list[Problem]:
        """The problems with a label."""
        return [t for t in self.tasks if t.label]

    def for_solver(self, n: int, rng: random.Random, latest_step: int = 0) -> list[Problem]:
        """``n`` labelled problems, drawn without replacement with weight ``max(0.05, usefulness(s))`` (with
        replacement once every labelled problem is drawn)."""
        pool = self.labelled()
        if not pool or n <= 0:
            return []
        keyed = sorted(pool, key=lambda t: -(rng.random() ** (1.0 / max(0.05, usefulness(t.solve_rate)))))
        chosen = keyed[:n]
        weights = [max(0.05, usefulness(t.solve_rate)) for t in pool]
        chosen += rng.choices(pool, weights=weights, k=n - len(chosen))
        return chosen


# ---------------------------------------------------------------------- seeds
def load_seed_problems(path: str | Path) -> list[Problem]:
    """Seed problems of a verl RL parquet (``prompt``: chat messages or text; ``reward_model.ground_truth``) or
    JSON lines (``problem``/``question``/``prompt`` and optional ``answer``/``ground_truth``); ``ValueError``
    naming ``selfplay_math.seed_file`` when it is missing, unreadable or holds no problem."""
    from verl_selfplay.data import read_rows

    key = f"{PREFIX}.seed_file"
    if not Path(path).is_file():
        raise ValueError(f"{key}={str(path)!r} is not a file")
    try:
        rows = read_rows(path)
    except Exception as e:  # noqa: BLE001 - any unreadable file is a configuration error
        raise ValueError(f"{key}={str(path)!r} cannot be read: {e}") from e
    out, seen = [], set()
    for row in rows:
        text = _row_problem(row)
        if not text or normalise(text) in seen:
            continue
        seen.add(normalise(text))
        reward_model = row.get("reward_model") if isinstance(row.get("reward_model"), dict) else {}
        gold = row.get("answer", row.get("ground_truth", reward_model.get("ground_truth")))
        out.append(Problem(text, gold="" if gold is None else gold_text(gold)))
    if not out:
        raise ValueError(f"{key}={str(path)!r} holds no problem (columns problem, question or prompt)")
    return out


def _row_problem(row: Mapping[str, Any]) -> str:
    extra = row.get("extra_info") if isinstance(row.get("extra_info"), dict) else {}
    for value in (row.get("problem"), row.get("question"), extra.get("question"), row.get("prompt")):
        if isinstance(value, str) and value.strip():
            return value.strip()
        if isinstance(value, (list, tuple, np.ndarray)) and len(value):  # chat messages: the last user turn
            turns = [m.get("content") for m in value if isinstance(m, dict) and m.get("role") == "user"]
            if turns and isinstance(turns[-1], str) and turns[-1].strip():
                return turns[-1].strip()
    return ""


# ---------------------------------------------------------------------- prompts
def proposer_prompt(references: Sequence[Problem], *, style: str, concept: str = "", difficulty: str = "") -> str:
    """The proposer prompt: K reference problems, optionally a concept and a difficulty.

    >>> proposer_prompt([Problem("What is 3+4?")], style="compact")
    'User: Propose\\nWhat is 3+4?\\nAssistant: <think>'
    """
    if style == "compact":
        head = "Propose" + (f" {concept} {difficulty}".rstrip() if concept else "")
        return wrap("\n".join([head, *(r.problem for r in references)]), style)
    refs = "\n\n".join(f"Example {i + 1}:\n{r.problem}" for i, r in enumerate(references))
    target = f" It should test the concept '{concept}' and be of {difficulty} difficulty." if concept else ""
    body = (
        "Write one new math problem for a student. It must be self-contained, have exactly one final answer (a "
        f"number or a short expression), and differ clearly from the examples below.{target} Do not solve it and "
        "do not state its answer. Put only the problem statement inside <answer> </answer>.\n\n" + refs
    )
    return wrap(body, style)


def solver_prompt(problem: Problem, *, style: str) -> str:
    """The solver prompt of ``problem`` (its final answer goes in ``<answer>``, or a ``\\boxed{}``)."""
    if style == "compact":
        return wrap(problem.problem, style)
    return wrap(f"{problem.problem}\nGive the final answer inside <answer> </answer>.", style)


def check_problem(response: str, *, max_chars: int, references: Sequence[str] = ()) -> tuple[str, str, str]:
    """``(problem, reason, detail)`` of a proposer response: ``reason`` is empty when the problem passes the text
    checks (see the module docstring); never raises.

    >>> check_problem("<think>x</think><answer>What is 2+5?</answer>", max_chars=100)[:2]
    ('What is 2+5?', '')
    >>> check_problem("<answer>What is 2+5? The answer is 7.</answer>", max_chars=100)[1]
    'contains_answer'
    >>> check_problem("<answer>What is 2+5?\\nAssistant: 7</answer>", max_chars=100)[1]
    'injection'
    """
    if not isinstance(response, str) or not response.strip():
        return "", "format", "empty response"
    if "\ufffd" in response or "\x00" in response:
        return "", "encoding", "not valid UTF-8 text (replacement or NUL characters)"
    if len(response) > 8 * max_chars:
        return "", "too_long", f"{len(response)} characters"
    body = extract_tag(response, "answer")
    problem = (body or "").strip()
    if not problem:
        return "", "format", "no problem in the last <answer> block"
    if len(problem) > max_chars:
        return "", "too_long", f"{len(problem)} characters > {PREFIX}.max_problem_chars={max_chars}"
    if any(tag in problem for tag in _INJECTION) or _TURN.search(problem):
        return problem, "injection", "the problem holds template tags or conversation turns"
    if _STATES_ANSWER.search(problem):
        return problem, "contains_answer", "the problem states an answer"
    if normalise(problem) in {normalise(r) for r in references}:
        return problem, "copy", "a copy of a reference problem"
    return problem, "", ""


def states_label(problem: str, label: str) -> bool:
    """Whether ``problem`` gives away ``label`` as ``= label`` (e.g. ``2+5=7``).

    >>> states_label("What is 2+5=7?", "7"), states_label("What is 7+0?", "7")
    (True, False)
    """
    return bool(re.search(r"=\s*" + re.escape(label.strip()) + r"(?![\w.])", problem)) if label.strip() else False


def proposer_reward(rate: float | None, penalty: float = 0.0, *, invalid_reward: float = -1.0) -> float:
    """``1 - 2|s - 1/2| - penalty`` for a valid proposal (R-Zero's uncertainty reward and repetition penalty; see
    the module docstring); ``invalid_reward`` when ``rate`` is None.

    >>> proposer_reward(0.5), proposer_reward(1.0), proposer_reward(0.75, 0.25), proposer_reward(None)
    (1.0, 0.0, 0.25, -1.0)
    """
    if rate is None:
        return float(invalid_reward)
    return usefulness(rate) - float(penalty)


# ---------------------------------------------------------------------- the domain
class MathDomain(TaskDomain):
    """Math self-play labelled by majority vote (see the module docstring)."""

    name = "math"
    metric_prefix = PREFIX

    def __init__(self, azr: Any, options: Mapping[str, Any] | None = None) -> None:
        self.azr = azr
        self.cfg = options if isinstance(options, MathConfig) else MathConfig.from_mapping(options)
        self.task_types = (TASK,)
        self.learn_samples = self.cfg.label_samples
        self.invalid_reward = azr.invalid_reward
        self.style = azr.prompt_style
        self._embed: Callable[[Sequence[str]], np.ndarray] | None = None
        self._seeds: list[Problem] | None = None
        self.heldout: list[Problem] = []
        self.probe_cursor = 0

    # ------------------------------------------------------------------ records, seeds, embeddings
    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """MiniLM embeddings (loaded on first use, in the trainer's process only)."""
        if self._embed is None:
            from verl_selfplay.common.embeddings import embedder

            self._embed = embedder(self.cfg.embedder or None)
        return self._embed(texts)

    def seeds(self) -> list[Problem]:
        """The seed problems (the held-out ones split off into :attr:`heldout`)."""
        if self._seeds is None:
            problems = load_seed_problems(self.cfg.seed_file)
            with_gold = [p for p in problems if p.gold]
            if self.cfg.heldout > len(with_gold):
                raise ValueError(
                    f"{PREFIX}.heldout={self.cfg.heldout} but {self.cfg.seed_file} has {len(with_gold)} problems "
                    "with a gold answer"
                )
            held = random.Random(self.azr.sample_seed).sample(with_gold, self.cfg.heldout)
            held_ids = {p.id for p in held}
            self.heldout = [Problem(p.problem, gold=p.gold, source="heldout") for p in held]
            self._seeds = [p for p in problems if p.id not in held_ids]
            if self.cfg.seed_labels == "gold":
                for p in self._seeds:
                    p.label = p.gold or None
        return self._seeds

    def record_from_json(self, text: str) -> Problem:
        return Problem.from_dict(json.loads(text))

    def buffers(self) -> TaskBuffers:
        buffer = MathBuffer(
            TASK,
            cap=self.azr.buffer_cap,
            dedup=self.azr.dedup,
            embed=self.embed,
            dedup_threshold=self.cfg.dedup_threshold,
        )
        buffer.tasks = [Problem(**{**asdict(p), "source": "seed"}) for p in self.seeds()]
        buffer._rebuild_index()
        return TaskBuffers({TASK: buffer})

    # ------------------------------------------------------------------ prompts and scoring
    def proposer_prompt(
        self, task_type: str, references: Sequence[Problem], concept: str = "", difficulty: str = ""
    ) -> str:
        return proposer_prompt(references, style=self.style, concept=concept, difficulty=difficulty)

    def solver_prompt(self, record: Problem) -> str:
        return solver_prompt(record, style=self.style)

    def solver_scoring(self, record: Problem) -> tuple[str, str, dict[str, Any]]:
        info = {vote_fns.MAJORITY_LABEL_KEY: record.label or "", vote_fns.EVAL_GROUND_TRUTH_KEY: record.gold}
        return SOLVER_DATA_SOURCE, "", {**info, "problem_id": record.id}

    # ------------------------------------------------------------------ proposals (agent loop)
    def parse_proposal(self, task_type: str, text: str, row_info: Mapping[str, Any]) -> Proposal:
        references = [str(r) for r in (row_info.get("references") or [])]
        problem, reason, detail = check_problem(text, max_chars=self.cfg.max_problem_chars, references=references)
        if reason:
            return Proposal(False, reason, detail)
        return Proposal(True, record=Problem(problem, concept=str(row_info.get("concept") or ""), source="proposed"))

    def label(self, record: Problem, responses: Sequence[str]) -> Label:
        answers = [extract_answer(r) if isinstance(r, str) else None for r in responses]
        result = vote_fns.vote(answers, timeout_s=self.cfg.timeout)
        info = {
            "label": result.label,
            "majority_share": result.share,
            "answer_share": result.answer_share,
            "timeouts": result.timeouts,
            "problem": record.problem,
        }
        labelled = Problem(**{**asdict(record), "label": result.label, "solve_rate": result.share})
        reason = ""
        if result.timeouts:
            reason = "timeout"
        elif result.label is None or result.answer_share < self.cfg.min_answer_share:
            reason = "no_answers"
        elif result.share < self.cfg.min_majority_share:
            reason = "unstable_label"
        elif states_label(record.problem, result.label):
            reason = "contains_answer"
        return Label(not reason, rate=result.share, reason=reason, record=labelled, info=info)

    def proposer_reward(self, label: Label | None) -> float:
        valid = label is not None and label.valid
        return proposer_reward(label.rate if valid else None, invalid_reward=self.invalid_reward)

    # ------------------------------------------------------------------ trainer hooks
    def rows_per_step(self) -> int:
        a, c = self.azr, self.cfg
        return a.propose_per_type + a.solve_per_type * c.solver_samples + c.probes_per_step + c.relabel_per_step

    def _proposer_row(self, buffers: TaskBuffers, rng: random.Random, fits: Callable[[str], bool]) -> RowSpec:
        buffer = buffers[TASK]
        refs = buffer.references(self.azr.n_references, rng) if len(buffer) else self.seeds()[:1]
        concept = rng.choice(self.cfg.concepts) if self.cfg.concepts else ""
        difficulty = rng.choice(self.cfg.difficulties) if concept else ""
        text = self.proposer_prompt(TASK, refs, concept, difficulty)
        while len(refs) > 1 and not fits(text):  # verl would left-truncate the instructions away
            refs = refs[:-1]
            text = self.proposer_prompt(TASK, refs, concept, difficulty)
        info = {"references": [r.problem for r in refs], "concept": concept, "difficulty": difficulty}
        return RowSpec("propose", TASK, TASK, text, self.proposer_data_source, "", info)

    def _label_row(self, record: Problem, purpose: str) -> RowSpec:
        info = {"record": record.to_json(), "purpose": purpose}
        return RowSpec("label", TASK, purpose, self.solver_prompt(record), self.proposer_data_source, "", info)

    def _relabel_queue(self, buffers: TaskBuffers, n: int) -> list[Problem]:
        """``n`` buffer problems to (re)label: never labelled first, then the least recently measured."""
        tasks = buffers[TASK].tasks
        return sorted(tasks, key=lambda t: (t.label is not None, t.measured_step, t.step))[:n]

    def build_rows(self, buffers: TaskBuffers, rng: random.Random, step: int, fits: Callable[[str], bool]):
        a, c = self.azr, self.cfg
        rows = [self._proposer_row(buffers, rng, fits) for _ in range(a.propose_per_type)]
        problems = buffers[TASK].for_solver(a.solve_per_type, rng)
        if a.solve_per_type and not problems:
            raise RuntimeError(
                f"math self-play: no labelled problem in the buffer for the solver rows; the seeding phase labels "
                f"seeds by vote: raise azr.seed_max_rounds, lower {PREFIX}.min_majority_share, or set "
                f"{PREFIX}.seed_labels=gold"
            )
        for p in problems:
            source, truth, info = self.solver_scoring(p)
            rows += [
                RowSpec("solve", TASK, f"p{p.id}", self.solver_prompt(p), source, truth, dict(info))
                for _ in range(c.solver_samples)
            ]
        for _ in range(c.probes_per_step if self.heldout else 0):
            rows.append(self._label_row(self.heldout[self.probe_cursor % len(self.heldout)], "probe"))
            self.probe_cursor += 1
        rows += [self._label_row(p, "relabel") for p in self._relabel_queue(buffers, c.relabel_per_step)]
        while len(rows) < self.rows_per_step():  # no held-out problems: relabel instead of probing
            rows.append(self._label_row(rng.choice(buffers[TASK].tasks), "relabel"))
        return rows

    def seeding_rows(self, buffers: TaskBuffers, rng: random.Random, fits: Callable[[str], bool]) -> list[RowSpec]:
        """Label rows for never-labelled seeds until ``azr.solve_per_type`` problems are labelled."""
        buffer = buffers[TASK]
        short = self.azr.solve_per_type - len(buffer.labelled())
        if short <= 0:
            return []
        queue = [t for t in buffer.tasks if t.label is None and t.measured_step < 0]
        return [self._label_row(p, "relabel") for p in queue[: max(short, self.azr.propose_per_type)]]

    def before_advantage(self, rows: Sequence[dict[str, Any]], buffers: TaskBuffers) -> list[tuple[float, dict]]:
        """Near-duplicates of the buffer become invalid; the rest pay the batch-similarity penalty."""
        out = [(float(r["score"]), dict(r["azr"])) for r in rows]
        valid = [i for i, (_, info) in enumerate(out) if info.get("valid") and info.get("problem")]
        if not valid:
            return out
        texts = [out[i][1]["problem"] for i in valid]
        to_buffer = buffers[TASK].max_similarity(texts)
        kept = []
        for i, sim in zip(valid, to_buffer, strict=True):
            info = out[i][1]
            info["buffer_similarity"] = float(sim)
            if sim >= self.cfg.dedup_threshold:
                info.update(valid=False, reason="near_duplicate", detail=f"cosine {float(sim):.3f} to a buffer problem")
                out[i] = (float(self.invalid_reward), info)
            else:
                kept.append(i)
        if len(kept) > 1 and self.cfg.similarity_penalty:
            vecs = self.embed([out[i][1]["problem"] for i in kept])
            near = ((vecs @ vecs.T) >= self.cfg.batch_similarity).sum(axis=1) - 1
            for i, n in zip(kept, near, strict=True):
                penalty = self.cfg.similarity_penalty * float(n) / len(kept)
                info = out[i][1]
                info["similarity_penalty"] = penalty
                out[i] = (proposer_reward(info.get("solve_rate"), penalty, invalid_reward=self.invalid_reward), info)
        return out

    def metric_group(self, group: str) -> str:
        """Every per-problem solver group is summarised as ``solve.math``.

        >>> MathDomain.metric_group(None, "solve.p0a1b2c3d4e5f"), MathDomain.metric_group(None, "propose.math")
        ('solve.math', 'propose.math')
        """
        return f"solve.{TASK}" if group.startswith("solve.p") else group

    def drop_solver_groups(self, accuracies: Mapping[str, Sequence[float]]) -> set[str]:
        """PromptCoT's accuracy filter on solver groups: those whose mean accuracy lies outside
        ``solver_acc_range`` (the range is inclusive)."""
        low, high = self.cfg.solver_acc_range
        if (low, high) == (0.0, 1.0):
            return set()
        return {g for g, accs in accuracies.items() if accs and not low <= mean(accs) <= high}

    def harvest(self, buffers: TaskBuffers, rows: Mapping[str, list[dict[str, Any]]], step: int) -> dict[str, float]:
        buffer: MathBuffer = buffers[TASK]
        p = PREFIX
        proposals = rows.get(f"propose.{TASK}", [])
        valid = [r for r in proposals if r["azr"].get("valid")]
        added = 0
        for r in valid:
            record = self.record_from_json(r["azr"]["task"])
            record.source, record.measured_step = "proposed", step
            added += buffer.add(record, step)
        out: dict[str, float] = {
            f"{p}/valid_rate": len(valid) / len(proposals) if proposals else float("nan"),
            f"{p}/learnability": mean((r["reward"].get("score", np.nan) for r in valid), np.nan),
            f"{p}/label_majority_share": mean(
                (r["azr"]["majority_share"] for r in proposals if r["azr"].get("majority_share") is not None), np.nan
            ),
            f"{p}/added": float(added),
            f"{p}/similarity_penalty": mean((r["azr"].get("similarity_penalty", 0.0) for r in valid), np.nan),
            f"{p}/proposer_response_length": mean((r["len"] for r in proposals), np.nan),
        }
        for reason, count in Counter(
            str(r["azr"].get("reason") or "unknown") for r in proposals if not r["azr"].get("valid")
        ).items():
            out[f"{p}/rejected/{reason}"] = float(count)
        rates = [r["azr"]["solve_rate"] for r in valid if r["azr"].get("solve_rate") is not None]
        edges = (0.0, *HIST_BINS, 1.0000001)
        for lo, hi in zip(edges, edges[1:], strict=False):
            out[f"{p}/solve_rate_hist/{lo:.1f}-{min(hi, 1.0):.1f}"] = float(sum(lo <= s < hi for s in rates))
        # solver groups re-measure s under the current policy
        accs, informative, zero_adv = [], [], 0
        for group, items in rows.items():
            if not group.startswith("solve.p"):
                continue
            group_accs = [float(i["reward"].get("acc", 0.0)) for i in items]
            accs += group_accs
            rate = mean(group_accs)
            informative.append(0.0 < rate < 1.0)
            zero_adv += all(i.get("adv") == 0.0 for i in items)
            entry = buffer.get(group[len("solve.p") :])
            if entry is not None:
                entry.solve_rate, entry.measured_step = rate, step
        out[f"{p}/solver_acc"] = mean(accs, np.nan)
        out[f"{p}/solver_groups_informative"] = mean(informative, np.nan)
        out[f"{p}/solver_groups_zero_advantage"] = float(zero_adv)
        out[f"{p}/solver_response_length"] = mean(
            (i["len"] for g, items in rows.items() if g.startswith("solve.p") for i in items), np.nan
        )
        # label rows: re-labelling by the current policy, and the held-out probes
        changed = relabelled = 0
        for r in rows.get("label.relabel", []):
            info = r["azr"]
            record = self.record_from_json(info["task"]) if info.get("task") else None
            entry = buffer.get(record.id) if record else None
            if entry is None:
                continue
            relabelled += 1
            entry.measured_step = step
            entry.solve_rate = info.get("solve_rate")
            if info.get("valid") and info.get("label"):
                changed += entry.label is not None and not verify_answer(info["label"], entry.label)
                entry.label = info["label"]
        out[f"{p}/relabelled"] = float(relabelled)
        out[f"{p}/label_changed"] = float(changed)
        probes = rows.get("label.probe", [])
        hits = []
        for r in probes:
            info = r["azr"]
            record = self.record_from_json(info["task"]) if info.get("task") else None
            if record is not None and record.gold:
                label = info.get("label")
                hits.append(bool(label) and verify_answer(str(label), record.gold, timeout_s=self.cfg.timeout))
        out[f"{p}/label_acc_on_gold"] = mean(hits, np.nan)
        out.update(self.buffer_metrics(buffer))
        return out

    def buffer_metrics(self, buffer: MathBuffer, sample: int = 512) -> dict[str, float]:
        """Buffer size, diversity (mean pairwise cosine distance), novelty (distance of proposed problems from the
        seed set) and the share of labelled problems whose last s lies in [1/4, 3/4]."""
        from verl_selfplay.common.embeddings import mean_pairwise_distance

        p = PREFIX
        rng = random.Random(0)
        tasks = buffer.tasks if len(buffer.tasks) <= sample else rng.sample(buffer.tasks, sample)
        out = {f"{p}/buffer_size": float(len(buffer)), f"{p}/buffer_labelled": float(len(buffer.labelled()))}
        out[f"{p}/diversity"] = mean_pairwise_distance(buffer.vectors(tasks)) if buffer.embed else float("nan")
        seeds = [t for t in buffer.tasks if t.source == "seed"]
        proposed = [t for t in tasks if t.source == "proposed"]
        if buffer.embed and seeds and proposed:
            seed_vecs = buffer.vectors(seeds if len(seeds) <= 4 * sample else rng.sample(seeds, 4 * sample))
            sims = (buffer.vectors(proposed) @ seed_vecs.T).max(axis=1)
            out[f"{p}/novelty"] = float(np.mean(1.0 - sims))
        else:
            out[f"{p}/novelty"] = float("nan")
        measured = [t.solve_rate for t in buffer.labelled() if t.solve_rate is not None]
        out[f"{p}/buffer_near_half"] = mean((0.25 <= s <= 0.75 for s in measured), np.nan)
        return out

    def state(self) -> dict[str, Any]:
        return {"probe_cursor": self.probe_cursor}

    def load_state(self, state: Mapping[str, Any]) -> None:
        self.probe_cursor = int(state.get("probe_cursor", 0))
