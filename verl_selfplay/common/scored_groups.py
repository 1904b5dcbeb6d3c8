"""``ScoredGroups``: every judged prompt group's per-rollout metric values, recorded before any eviction.

The contract between a replay buffer that evicts prompt groups (``GroupFilterSampler``: rejected and surplus
groups) and a consumer that must learn from *every* scored prompt (PCL's value model). Without it, the consumer
reads rewards back from the trained batch only, i.e. from the groups that survived the filter: with the acc
filter on, PCL's value model would never see a target outside ``[acc.low, acc.high]``.

- The consumer calls :meth:`watch` with the metric names it needs (``acc``, ``reward``, any
  ``reward_extra_info`` key); nothing is recorded for a metric nobody watches, so the buffer costs nothing
  when no consumer is present.
- The replay buffer calls :meth:`record` for each group when it judges it, with the values it read from
  TransferQueue (after any relabelling, i.e. the values that group would be trained on).
- The consumer calls :meth:`pop` with the uids it submitted, once per step, and :meth:`clear` to drop what is
  left (e.g. groups of validation or of prompts it did not submit).

A replay buffer exposes its recorder as the attribute ``scored_groups``; :func:`scored_groups_of` finds it.

>>> log = ScoredGroups()
>>> log.record("u1", {"acc": [1.0, 0.0]})  # nobody watches "acc" yet: dropped
>>> log.watch("acc")
>>> log.record("u1", {"acc": [1.0, 1.0], "reward": [2.0, 2.0]})
>>> log.pop(["u1", "u2"], "acc")
{'u1': [1.0, 1.0]}
>>> log.pop(["u1"], "acc")
{}
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

SCORED_GROUPS_ATTR = "scored_groups"


class ScoredGroups:
    """Per prompt uid, the per-rollout values of the watched metrics (NaN where a rollout lacks one)."""

    def __init__(self) -> None:
        self.metrics: set[str] = set()
        self._values: dict[str, dict[str, list[float]]] = {}

    def watch(self, metric: str) -> None:
        """Record ``metric`` from now on."""
        self.metrics.add(str(metric))

    def record(self, uid: str, values: Mapping[str, Sequence[float | None]]) -> None:
        """Store one judged group's values (``None`` becomes NaN); metrics nobody watches are ignored."""
        kept = {
            m: [float("nan") if v is None else float(v) for v in vs] for m, vs in values.items() if m in self.metrics
        }
        if kept:
            self._values.setdefault(uid, {}).update(kept)

    def pop(self, uids: Iterable[str], metric: str) -> dict[str, list[float]]:
        """``{uid: values of metric}`` for the recorded uids among ``uids``; those uids are forgotten."""
        out: dict[str, list[float]] = {}
        for uid in uids:
            entry = self._values.pop(uid, None)
            if entry is not None and metric in entry:
                out[uid] = entry[metric]
        return out

    def clear(self) -> None:
        """Forget every recorded group."""
        self._values.clear()

    def __len__(self) -> int:
        return len(self._values)


def scored_groups_of(replay_buffer: Any) -> ScoredGroups | None:
    """The :class:`ScoredGroups` a replay buffer records into, or ``None`` (verl's own buffers have none)."""
    found = getattr(replay_buffer, SCORED_GROUPS_ATTR, None)
    return found if isinstance(found, ScoredGroups) else None
