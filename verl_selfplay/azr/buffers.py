"""AZR task records and the per-type task buffers (pure Python: no verl, no torch).

A :class:`Task` is what the interpreter validated: a program defining ``f``, its inputs (Python argument text, one
string per call) and the ``repr`` of each output; an induction task also has the proposer's ``message``. A
:class:`TaskBuffer` holds the tasks of one type (deduction, abduction or induction):

- it starts from hand-written seed tasks (:mod:`verl_selfplay.azr.seeds`), and grows with valid proposals;
- it deduplicates by normalised program (its AST, so comments, blank lines and formatting do not count) plus
  inputs [ours: the reference keeps duplicates], and keeps at most ``cap`` tasks, evicting the oldest proposed
  ones first (seeds stay);
- it samples K references for a proposer prompt uniformly without replacement, and solver tasks preferring the
  ones added at the latest step, then uniformly (the reference's ``max_new`` policy);
- it saves to and loads from readable JSON lines, one task a line (``global_step_N/azr_buffers/{type}.jsonl``).

>>> b = TaskBuffer("deduction", cap=10)
>>> b.add(Task("deduction", "def f(a):\\n    return a", ["'hi'"], ["'hi'"]), step=0)
True
>>> b.add(Task("deduction", "def f(a):  # same\\n    return a", ["'hi'"], ["'hi'"]), step=1)
False
>>> len(b)
1
"""

from __future__ import annotations

import ast
import json
import os
import random
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

BUFFER_DIR = "azr_buffers"


@dataclass
class Task:
    """One validated task: ``program``, ``inputs`` (argument text per call), ``outputs`` (``repr`` per call)."""

    type: str
    program: str
    inputs: list[str]
    outputs: list[str]
    message: str = ""
    step: int = 0  # the training step that added it (0: seeds and the seeding phase)
    source: str = "seed"  # "seed" (hand-written), "seeding" (base model, before training) or "proposed"

    def key(self) -> tuple[str, tuple[str, ...]]:
        """Deduplication key: the program's AST (formatting and comments ignored) plus its inputs."""
        try:
            norm = ast.dump(ast.parse(self.program))
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            norm = self.program.strip()
        return norm, tuple(s.strip() for s in self.inputs)

    def to_json(self) -> str:
        """One JSON line."""
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Task:
        """Inverse of :meth:`to_json` (after ``json.loads``); raises ``ValueError`` on a malformed record."""
        try:
            return cls(
                type=str(d["type"]),
                program=str(d["program"]),
                inputs=[str(x) for x in d["inputs"]],
                outputs=[str(x) for x in d["outputs"]],
                message=str(d.get("message", "")),
                step=int(d.get("step", 0)),
                source=str(d.get("source", "proposed")),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"malformed task record {str(d)[:200]}: {e!r}") from e


@dataclass
class TaskBuffer:
    """The tasks of one type, deduplicated and capped (see the module docstring)."""

    record_cls = Task  # the record type (a class attribute, not a field): what :meth:`read` parses

    type: str
    cap: int = 16384
    dedup: bool = True
    tasks: list[Task] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._keys: dict[tuple, int] = {}
        self._rebuild_index()

    def _rebuild_index(self) -> None:
        self._keys = {}
        for task in self.tasks:
            self._keys[task.key()] = self._keys.get(task.key(), 0) + 1

    def __len__(self) -> int:
        return len(self.tasks)

    def __contains__(self, task: Task) -> bool:
        return task.key() in self._keys

    def add(self, task: Task, step: int) -> bool:
        """Add ``task`` as of ``step``; ``False`` (nothing added) if it duplicates a task in the buffer."""
        if task.type != self.type:
            raise ValueError(f"a {task.type} task cannot go into the {self.type} buffer")
        if self.dedup and task in self:
            return False
        task.step = int(step)
        self.tasks.append(task)
        self._keys[task.key()] = self._keys.get(task.key(), 0) + 1
        self._evict()
        return True

    def _victim(self) -> int:
        """Index of the task to evict: the oldest non-seed one."""
        return next((i for i, t in enumerate(self.tasks) if t.source != "seed"), 0)

    def _evict(self) -> None:
        while len(self.tasks) > self.cap:
            task = self.tasks.pop(self._victim())
            key = task.key()
            self._keys[key] -= 1
            if not self._keys[key]:
                del self._keys[key]

    def references(self, k: int, rng: random.Random) -> list[Task]:
        """``k`` tasks drawn uniformly without replacement (all of them, shuffled, if there are fewer)."""
        return rng.sample(self.tasks, min(k, len(self.tasks)))

    def for_solver(self, n: int, rng: random.Random, latest_step: int) -> list[Task]:
        """``n`` tasks for solver rows: those added at ``latest_step`` first (shuffled), then uniform draws."""
        if not self.tasks or n <= 0:
            return []
        new = [t for t in self.tasks if t.step == latest_step and t.source != "seed"]
        rng.shuffle(new)
        chosen = new[:n]
        chosen += [rng.choice(self.tasks) for _ in range(n - len(chosen))]
        return chosen

    def distinct_programs(self) -> int:
        """Number of distinct normalised programs."""
        return len({key[0] for key in self._keys})

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike) -> None:
        """Write one task per line to ``path`` (atomically: a temporary file, then rename)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text("".join(t.to_json() + "\n" for t in self.tasks), encoding="utf-8")
        os.replace(tmp, path)

    def read(self, path: str | os.PathLike) -> None:
        """Replace the tasks with those of a file written by :meth:`save`; a malformed line raises ``ValueError``
        naming it."""
        tasks = []
        for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                tasks.append(self.record_cls.from_dict(json.loads(line)))
            except (json.JSONDecodeError, ValueError) as e:
                raise ValueError(f"{path}:{n}: {e}") from e
        self.tasks = tasks
        self._rebuild_index()

    @classmethod
    def load(cls, path: str | os.PathLike, type: str, cap: int = 16384, dedup: bool = True) -> TaskBuffer:
        """A buffer holding the tasks of a file written by :meth:`save` (see :meth:`read`)."""
        buffer = cls(type=type, cap=cap, dedup=dedup)
        buffer.read(path)
        return buffer


class TaskBuffers(dict):
    """The buffer of each task type, ``{type: TaskBuffer}``, saved and loaded as one folder."""

    @classmethod
    def seeded(cls, types: Iterable[str], seeds: dict[str, Sequence[Task]], cap: int, dedup: bool) -> TaskBuffers:
        """Buffers holding the seed tasks of each type."""
        out = cls()
        for task_type in types:
            buffer = TaskBuffer(task_type, cap=cap, dedup=dedup)
            for task in seeds.get(task_type, ()):
                buffer.add(Task(**{**asdict(task), "source": "seed"}), step=0)
            out[task_type] = buffer
        return out

    def save(self, folder: str | os.PathLike) -> Path:
        """Write ``folder/azr_buffers/{type}.jsonl`` for each type; returns that directory."""
        target = Path(folder) / BUFFER_DIR
        for task_type, buffer in self.items():
            buffer.save(target / f"{task_type}.jsonl")
        return target

    def load(self, folder: str | os.PathLike) -> bool:
        """Replace each buffer with ``folder/azr_buffers/{type}.jsonl``; ``False`` if the folder has none."""
        target = Path(folder) / BUFFER_DIR
        if not target.is_dir():
            return False
        for task_type, buffer in list(self.items()):
            path = target / f"{task_type}.jsonl"
            if path.exists():
                buffer.read(path)
        return True
