"""The group-filter pipeline on plain data: options, per-group verdicts, refill sizing, step metrics.

:class:`~verl_selfplay.filters.sampler.GroupFilterSampler` (the thin verl adapter) reads one
finished prompt group from TransferQueue, hands its numbers to :func:`decide_group`, and acts on
the verdict: evict the group, keep it, or keep it with some rollouts' loss masks zeroed. Nothing
here imports verl, torch or Ray.

Per group, in this order (cheap checks first; the first failing check names the reason):

1. ``rollout_failure``: the group produced no trajectory at all;
2. (majority-vote relabelling of ``vote`` rows happens before, in the sampler);
3. ``acc``: ``invalid_metric`` when some rollout's metric is not a finite number (NaN: a reward-function
   bug, reported apart so it never looks like a legitimate rejection), else ``acc_too_low`` /
   ``acc_too_high`` when the mean of the metric over all rollouts lies outside ``[low, high]``;
4. ``length`` / ``repetition``: at group level one failing rollout drops the group; at sample level
   a failing rollout is masked, and a group whose rollouts are *all* masked is dropped.

>>> opts = SamplerOptions.from_mapping({"filters": ["acc", "length"], "length": {"level": "sample"}})
>>> v = decide_group(opts, [1.0, 0.0, 0.0, 0.0], [30, 512, 40, 50], max_response_length=512)
>>> v.keep, v.masked
(True, {1: 'length'})
>>> decide_group(opts, [0.0] * 4, [30] * 4, max_response_length=512).reason
'acc_too_low'
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from verl_selfplay.common.metrics import mean
from verl_selfplay.filters.acc import AccFilter, group_mean
from verl_selfplay.filters.length_repetition import LengthFilter, RepetitionFilter

CONFIG_PREFIX = "trainer.v1.sampler.sampler_kwargs"
FILTERS: tuple[str, ...] = ("acc", "length", "repetition")
DEFAULT_FILTERS: tuple[str, ...] = ("acc",)
# Group-level rejection reasons, in the order they are checked.
REJECT_REASONS: tuple[str, ...] = (
    "rollout_failure",
    "invalid_metric",
    "acc_too_low",
    "acc_too_high",
    "length",
    "repetition",
)
ON_EXHAUSTED: tuple[str, ...] = ("partial", "error")

# DAPO's verl recipe caps dynamic sampling at max_num_gen_batches=10 generation batches per step
# (verl recipe/dapo/run_dapo_qwen2.5_32b.sh): the first round plus 9 refills.
MAX_EXTRA_GEN_ROUNDS = 9
# verl's ReplayBuffer polls TransferQueue every 2 s (replay_buffer.py, poll_interval=2.0).
POLL_INTERVAL_S = 2.0
# Refill sizing: prompts = deficit / observed keep rate, never assuming a keep rate below this
# (so one round asks for at most 4x the missing groups). Our choice, not from a paper.
MIN_KEEP_RATE_ESTIMATE = 0.25

_TOP_KEYS = (
    "filters",
    "acc",
    "length",
    "repetition",
    "vote",
    "max_extra_gen_rounds",
    "on_exhausted",
    "poll_interval",
    "max_response_length",
)
_SUB_KEYS = {
    "acc": ("low", "high", "metric"),
    "length": ("level", "drop_truncated", "max_length"),
    "repetition": ("level", "n", "threshold"),
    "vote": ("enable", "data_sources", "train_n"),
}


def _check_keys(mapping: Mapping[str, Any], valid: Sequence[str], where: str) -> None:
    unknown = sorted(set(mapping) - set(valid))
    if unknown:
        raise ValueError(f"unknown key(s) {', '.join(repr(k) for k in unknown)} in {where}; valid: {', '.join(valid)}")


def _as_list(value: Any, name: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, Sequence):
        return [str(v) for v in value]
    raise ValueError(f"{CONFIG_PREFIX}.{name} must be a list, got {value!r}")


@dataclass(frozen=True)
class VoteOptions:
    """Majority-vote relabelling (TTRL) of the groups whose ``data_source`` is in ``data_sources``.

    ``train_n``: train on the first ``train_n`` rollouts of each voted group only (TTRL votes over
    64 samples and trains on 32); ``None`` trains on all of them.
    """

    enable: bool = True
    data_sources: tuple[str, ...] = ("vote",)
    train_n: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.enable, bool):
            raise ValueError(f"{CONFIG_PREFIX}.vote.enable must be true or false, got {self.enable!r}")
        if self.train_n is not None and (
            isinstance(self.train_n, bool) or not isinstance(self.train_n, int) or self.train_n < 1
        ):
            raise ValueError(f"{CONFIG_PREFIX}.vote.train_n must be a positive integer or null, got {self.train_n!r}")


@dataclass(frozen=True)
class SamplerOptions:
    """Everything ``trainer.v1.sampler.sampler_kwargs`` can set, validated.

    >>> SamplerOptions.from_mapping({"filters": ["acc", "lenght"]})
    Traceback (most recent call last):
    ...
    ValueError: unknown filter 'lenght' in trainer.v1.sampler.sampler_kwargs.filters; valid: acc, length, repetition
    >>> SamplerOptions.from_mapping({"acc": {"hgih": 0.9}})
    Traceback (most recent call last):
    ...
    ValueError: unknown key(s) 'hgih' in trainer.v1.sampler.sampler_kwargs.acc; valid: low, high, metric
    """

    acc: AccFilter | None = field(default_factory=AccFilter)
    length: LengthFilter | None = None
    repetition: RepetitionFilter | None = None
    vote: VoteOptions = field(default_factory=VoteOptions)
    max_extra_gen_rounds: int = MAX_EXTRA_GEN_ROUNDS
    on_exhausted: str = "partial"
    poll_interval: float = POLL_INTERVAL_S
    max_response_length: int | None = None

    @property
    def filters(self) -> tuple[str, ...]:
        """The active filter names."""
        return tuple(name for name in FILTERS if getattr(self, name) is not None)

    @classmethod
    def from_mapping(cls, kwargs: Mapping[str, Any] | None) -> SamplerOptions:
        """Parse and validate a plain mapping (``sampler_kwargs`` after ``OmegaConf.to_container``)."""
        kwargs = dict(kwargs or {})
        _check_keys(kwargs, _TOP_KEYS, CONFIG_PREFIX)
        filters = _as_list(kwargs.get("filters", list(DEFAULT_FILTERS)), "filters")
        for name in filters:
            if name not in FILTERS:
                raise ValueError(f"unknown filter {name!r} in {CONFIG_PREFIX}.filters; valid: {', '.join(FILTERS)}")
        sections: dict[str, dict[str, Any]] = {}
        for name, valid in _SUB_KEYS.items():
            section = kwargs.get(name) or {}
            if not isinstance(section, Mapping):
                raise ValueError(f"{CONFIG_PREFIX}.{name} must be a mapping of {', '.join(valid)}; got {section!r}")
            _check_keys(section, valid, f"{CONFIG_PREFIX}.{name}")
            if section and name in FILTERS and name not in filters:
                raise ValueError(
                    f"{CONFIG_PREFIX}.{name} is set but {name!r} is not in {CONFIG_PREFIX}.filters={filters}; "
                    f"add it to the list to enable that filter"
                )
            sections[name] = dict(section)
        vote = dict(sections["vote"])
        if "data_sources" in vote:
            vote["data_sources"] = tuple(_as_list(vote["data_sources"], "vote.data_sources"))
        rounds = kwargs.get("max_extra_gen_rounds", MAX_EXTRA_GEN_ROUNDS)
        if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 0:
            raise ValueError(f"{CONFIG_PREFIX}.max_extra_gen_rounds must be an integer >= 0, got {rounds!r}")
        on_exhausted = kwargs.get("on_exhausted", "partial")
        if on_exhausted not in ON_EXHAUSTED:
            raise ValueError(
                f"{CONFIG_PREFIX}.on_exhausted must be one of {', '.join(ON_EXHAUSTED)}; got {on_exhausted!r}"
            )
        poll = kwargs.get("poll_interval", POLL_INTERVAL_S)
        if isinstance(poll, bool) or not isinstance(poll, int | float) or not poll > 0:
            raise ValueError(f"{CONFIG_PREFIX}.poll_interval must be a positive number of seconds, got {poll!r}")
        max_len = kwargs.get("max_response_length")
        if max_len is not None and (isinstance(max_len, bool) or not isinstance(max_len, int) or max_len < 1):
            raise ValueError(f"{CONFIG_PREFIX}.max_response_length must be a positive integer, got {max_len!r}")
        return cls(
            acc=AccFilter(**sections["acc"]) if "acc" in filters else None,
            length=LengthFilter(**sections["length"]) if "length" in filters else None,
            repetition=RepetitionFilter(**sections["repetition"]) if "repetition" in filters else None,
            vote=VoteOptions(**vote),
            max_extra_gen_rounds=rounds,
            on_exhausted=on_exhausted,
            poll_interval=float(poll),
            max_response_length=max_len,
        )


@dataclass
class GroupVerdict:
    """What to do with one prompt group.

    ``reason`` is ``None`` when the group is kept. ``masked`` maps the index of each rollout whose
    loss mask must be zeroed to the filter that failed it. ``provisional`` is true while the
    repetition filter still has to see the response tokens.
    """

    reason: str | None = None
    masked: dict[int, str] = field(default_factory=dict)
    metric_mean: float = math.nan
    provisional: bool = False

    @property
    def keep(self) -> bool:
        """Whether the group goes into the training batch."""
        return self.reason is None


def _apply_rollout_filter(verdict: GroupVerdict, name: str, level: str, failures: Sequence[bool]) -> None:
    failed = [i for i, bad in enumerate(failures) if bad]
    if not failed:
        return
    if level == "group":
        verdict.reason = name
    else:
        for i in failed:
            verdict.masked.setdefault(i, name)


def decide_group(
    opts: SamplerOptions,
    metric_values: Sequence[float | None],
    response_lens: Sequence[int],
    *,
    max_response_length: int | None = None,
    token_seqs: Sequence[Sequence[int]] | None = None,
) -> GroupVerdict:
    """The verdict on one prompt group, from its per-rollout metric values and response lengths.

    ``metric_values`` are the acc-filter metric of each rollout (ignored when the acc filter is
    off). With the repetition filter on, pass ``token_seqs`` (the response token ids); without
    them a group that passes every other check gets a *provisional* verdict, so that the sampler
    reads tokens only for the groups that can still be kept.

    >>> opts = SamplerOptions.from_mapping({"filters": ["repetition"], "repetition": {"n": 2, "level": "group"}})
    >>> decide_group(opts, [], [4, 6]).provisional
    True
    >>> decide_group(opts, [], [4, 6], token_seqs=[[1, 2, 3, 4], [5, 6, 5, 6, 5, 6]]).reason
    'repetition'
    """
    n = len(response_lens)
    verdict = GroupVerdict()
    if n == 0:
        verdict.reason = "rollout_failure"
        return verdict
    if opts.acc is not None:
        reason = opts.acc.verdict(metric_values)
        if reason not in ("acc_missing", "invalid_metric"):
            verdict.metric_mean = group_mean([float(v) for v in metric_values])  # type: ignore[arg-type]
        if reason is not None:
            verdict.reason = reason
            return verdict
    if opts.length is not None:
        failures = opts.length.failures(response_lens, opts.max_response_length or max_response_length)
        _apply_rollout_filter(verdict, "length", opts.length.level, failures)
        if verdict.reason is not None:
            return verdict
    if opts.repetition is not None:
        if token_seqs is None:
            verdict.provisional = True
            return verdict
        if len(token_seqs) != n:
            raise ValueError(f"got {len(token_seqs)} token sequences for {n} rollouts")
        _apply_rollout_filter(verdict, "repetition", opts.repetition.level, opts.repetition.failures(token_seqs))
        if verdict.reason is not None:
            return verdict
    if verdict.masked and len(verdict.masked) == n:
        # every rollout masked: nothing left to train on, drop and refill instead
        verdict.reason = Counter(verdict.masked.values()).most_common(1)[0][0]
    return verdict


def refill_prompts(deficit: int, generated: int, kept: int, granularity: int) -> int:
    """How many fresh prompts to generate for ``deficit`` missing groups.

    The observed keep rate ``kept / generated`` of this step estimates how many prompts one kept
    group costs (never assuming less than :data:`MIN_KEEP_RATE_ESTIMATE`); the count is rounded up
    to a multiple of ``granularity`` (verl fetches prompts in ``data.gen_batch_size`` chunks).

    >>> refill_prompts(deficit=4, generated=16, kept=8, granularity=1)    # keep rate 1/2
    8
    >>> refill_prompts(deficit=4, generated=16, kept=0, granularity=1)    # nothing kept yet: 4x
    16
    >>> refill_prompts(deficit=3, generated=8, kept=5, granularity=8)     # whole dataloader chunks
    8
    """
    if deficit <= 0:
        return 0
    if granularity < 1:
        raise ValueError(f"granularity must be >= 1, got {granularity}")
    rate = kept / generated if generated > 0 else 0.0
    wanted = math.ceil(deficit / max(rate, MIN_KEEP_RATE_ESTIMATE) - 1e-9)
    return max(1, math.ceil(wanted / granularity)) * granularity


@dataclass
class StepStats:
    """Counters of one training step's sampling, reported to verl's tracker by :meth:`metrics`."""

    generated: int = 0
    kept: int = 0
    trained: int = 0
    surplus: int = 0
    rounds: int = 1
    cap_hit: bool = False
    rejected: Counter = field(default_factory=Counter)
    masked: Counter = field(default_factory=Counter)
    metric_means_generated: list[float] = field(default_factory=list)
    metric_means_kept: list[float] = field(default_factory=list)

    def record(self, verdict: GroupVerdict) -> None:
        """Count one final (non-provisional) verdict."""
        self.generated += 1
        has_mean = not math.isnan(verdict.metric_mean)
        if has_mean:
            self.metric_means_generated.append(verdict.metric_mean)
        if verdict.keep:
            self.kept += 1
            self.masked.update(verdict.masked.values())
            if has_mean:
                self.metric_means_kept.append(verdict.metric_mean)
        else:
            self.rejected[verdict.reason] += 1

    def metrics(self, prefix: str = "training/group_filter") -> dict[str, float]:
        """Flat scalar metrics (every reason is always present, so charts have no gaps).

        >>> s = StepStats(); s.record(GroupVerdict(reason="acc_too_low")); s.record(GroupVerdict())
        >>> m = s.metrics()
        >>> m["training/group_filter/groups_generated"], m["training/group_filter/groups_rejected/acc_too_low"]
        (2.0, 1.0)
        """
        out = {
            f"{prefix}/groups_generated": float(self.generated),
            f"{prefix}/groups_kept": float(self.kept),
            f"{prefix}/groups_trained": float(self.trained),
            f"{prefix}/groups_surplus": float(self.surplus),
            f"{prefix}/keep_rate": self.kept / self.generated if self.generated else 0.0,
            f"{prefix}/gen_rounds": float(self.rounds),
            f"{prefix}/round_cap_hit": float(self.cap_hit),
        }
        for reason in REJECT_REASONS:
            out[f"{prefix}/groups_rejected/{reason}"] = float(self.rejected.get(reason, 0))
        for name in ("length", "repetition"):
            out[f"{prefix}/samples_masked/{name}"] = float(self.masked.get(name, 0))
        if self.metric_means_generated:
            out[f"{prefix}/group_metric_mean/generated"] = mean(self.metric_means_generated)
        if self.metric_means_kept:
            out[f"{prefix}/group_metric_mean/kept"] = mean(self.metric_means_kept)
        return out

    def summary(self) -> str:
        """One human line for warnings and errors."""
        reasons = ", ".join(f"{k}={v}" for k, v in sorted(self.rejected.items())) or "none"
        return f"generated {self.generated} groups in {self.rounds} round(s), kept {self.kept}, rejected: {reasons}"
