"""``GroupFilterSampler``: verl's v1 replay buffer with group filters and majority-vote relabelling.

verl 0.9.1's v1 trainer samples each training batch from its ``ReplayBuffer``
(``verl/trainer/ppo/v1/replay_buffer.py``), which reads finished rollouts from TransferQueue and
lets a *custom sampler* -- a ``ReplayBuffer`` subclass -- decide which prompt groups to train on.
This class is that subclass; select it with::

    trainer.v1.sampler.custom_sampler.path=pkg://verl_selfplay.filters.sampler
    trainer.v1.sampler.custom_sampler.name=GroupFilterSampler
    +trainer.v1.sampler.sampler_kwargs.filters=[acc,length,repetition]
    +trainer.v1.sampler.sampler_kwargs.acc.low=0.1
    +trainer.v1.sampler.sampler_kwargs.acc.high=0.8

``sampler_kwargs`` (all optional; unknown keys fail at start-up and name the valid ones):

==============================  ==================================================================
``filters``                     any of ``acc``, ``length``, ``repetition`` (default ``[acc]``)
``acc.low`` / ``acc.high``      inclusive bounds on a group's mean metric (0.1 / 0.8)
``acc.metric``                  a ``reward_extra_info`` key (``acc``) or ``reward`` (``rm_scores``)
``length.level``                ``sample`` (zero loss mask) or ``group`` (drop the group)
``length.drop_truncated``       fail responses cut at ``rollout.response_length`` (true)
``length.max_length``           also fail responses longer than this many tokens (null)
``repetition.level``            ``sample`` or ``group``
``repetition.n``                n-gram size in tokens (10)
``repetition.threshold``        fail when the repeated n-gram ratio exceeds this (0.5)
``vote.enable``                 relabel groups of ``vote.data_sources`` by majority vote (true); without
                                it a ``vote`` row keeps the failure score ``reward_fns.vote`` gives it
``vote.data_sources``           data sources to relabel (``[vote]``)
``vote.train_n``                train on the first ``train_n`` rollouts of a voted group (null: all)
``max_extra_gen_rounds``        cap on refill rounds per step (9); a warning when it is hit
``on_exhausted``                at the cap: ``partial`` (train on what was kept) or ``error``
``poll_interval``               seconds between TransferQueue polls (2.0, as verl's buffer)
``max_response_length``         overrides ``actor_rollout_ref.rollout.response_length``
==============================  ==================================================================

One training step: the trainer submits ``data.train_batch_size`` prompts, and :meth:`sample` judges
every prompt group as soon as its ``n`` rollouts are finished (majority-vote relabelling first,
then :func:`~verl_selfplay.filters.pipeline.decide_group`). Rejected groups are evicted from
TransferQueue at once; kept groups get their relabelled rewards and zeroed loss masks written back.
When every submitted prompt is done and fewer groups than the batch size were kept, it submits
fresh prompts through the trainer's ``refill_fn`` (sized by the observed keep rate, in multiples of
``data.gen_batch_size``), at most ``max_extra_gen_rounds`` times. It never loops forever and never
returns an empty batch: at the cap it warns and trains on the kept groups, or raises a
``RuntimeError`` naming the knobs when nothing was kept (or ``on_exhausted=error``).

Majority-vote relabelling re-scores each rollout from the ``pred`` and ``format_ok`` keys the reward
function put in ``reward_extra_info`` (``reward_fns.compute_score`` always does); a reward function
without them fails the first step with a ``RuntimeError`` naming the missing keys and the ones it has.
Only the reward fields are rewritten (``rm_scores`` and ``extra_fields["reward_extra_info"]``, on every
output of a multi-output session, as verl's agent loop writes them); each output keeps the rest of its
``extra_fields``. A row's true answer is read from ``extra_info["eval_ground_truth"]`` and feeds only
the agreement metrics; ``reward_model.ground_truth`` of a ``vote`` row is ignored (a warning says so).
An acc-filter metric that is not a finite number (a reward-function bug) rejects its group as
``invalid_metric``, never as ``acc_too_low``, with one warning per data source.

The sampler's metrics reach verl's tracker through ``sample()``'s returned metrics dict (the trainer
merges it into the step's metrics):

======================================================  ====================================================
``training/group_filter/groups_generated|kept``         prompt groups judged / kept this step
``training/group_filter/groups_trained|surplus``        kept groups trained on / discarded beyond the batch
``training/group_filter/keep_rate``                     kept / generated
``training/group_filter/gen_rounds``, ``round_cap_hit``  generation rounds; 1.0 when the cap was reached
``training/group_filter/groups_rejected/<reason>``      always present for every reason: ``rollout_failure``,
                                                        ``invalid_metric``, ``acc_too_low``, ``acc_too_high``,
                                                        ``length``, ``repetition``
``training/group_filter/samples_masked/<filter>``       rollouts whose loss mask was zeroed (length, repetition)
``training/group_filter/group_metric_mean/<which>``     mean acc-filter metric of the ``generated`` / ``kept``
                                                        groups (groups with an invalid metric left out)
``training/vote/groups``, ``no_answer_groups``          groups relabelled; of them, groups with no answer
``training/vote/majority_ratio``, ``pseudo_acc``        votes for the label / rollouts; accuracy vs the label
``training/vote/dropped_rollouts``                      rollouts left out by ``vote.train_n``
``training/vote/labelled_groups``                       groups with ``extra_info["eval_ground_truth"]``
``training/vote/label_agreement``, ``true_acc``         only with labelled groups: pseudo-label equals the
                                                        true answer; rollouts' accuracy vs the true answer
======================================================  ====================================================

Why here and not in a trainer subclass: the relabelled reward must exist before advantages are
computed, and the sampler is the last place that sees whole groups before the trainer reads
``rm_scores`` back from TransferQueue (``PPOTrainer._compute_advantage``). Doing it here keeps every
registered trainer (``sync``, and ``pcl``) usable with filters and voting.

This module is the only one in :mod:`verl_selfplay.filters` that touches verl's private API (``ReplayBuffer``
internals); the TransferQueue field layout is read and written through :mod:`verl_selfplay.common.trajectories`.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from transfer_queue import KVBatchMeta
from verl.trainer.ppo.v1.replay_buffer import ReplayBuffer
from verl.utils.skip import SkipManager

import reward_fns
from reward_fns.vote import EVAL_GROUND_TRUTH_KEY
from verl_selfplay.common.scored_groups import ScoredGroups
from verl_selfplay.common.trajectories import (
    clear_keys,
    final_keys,
    key_uid,
    metric_value,
    read_fields,
    reward_extra_info,
    reward_field,
    sessions_by_uid,
    with_reward_extra_info,
    write_fields,
)
from verl_selfplay.filters.pipeline import (
    CONFIG_PREFIX,
    GroupVerdict,
    SamplerOptions,
    StepStats,
    decide_group,
    refill_prompts,
)
from verl_selfplay.ttrl.relabel import VoteStats, relabel_group, true_label

logger = logging.getLogger(__name__)
logger.setLevel(os.getenv("VERL_LOGGING_LEVEL", "INFO"))

ASYNC_TRAINER_MODES = ("colocate_async", "separate_async")


def _root_config(node: Any) -> DictConfig | None:
    """The full trainer config that ``sampler_kwargs`` hangs from (verl passes only the sub-node)."""
    if not isinstance(node, DictConfig):
        return None
    root = node._get_root()  # OmegaConf keeps parent links; private but stable since omegaconf 2.0
    if root is node or OmegaConf.select(root, "actor_rollout_ref", default=None) is None:
        return None
    return root  # type: ignore[return-value]


class _Group:
    """One prompt group read from TransferQueue: sessions (rollouts) and their trajectory keys."""

    def __init__(self, uid: str, keys: Sequence[str], tags: Mapping[str, dict]):
        self.uid = uid
        self.tags = {key: tags[key] for key in keys}
        # every output key of each session, in output order; the last one carries the session's reward
        self.session_keys = sessions_by_uid(keys).get(uid, [])
        self.final_keys = final_keys(self.session_keys)
        self.response_lens = [int(tags[k].get("response_len", 0)) for k in self.final_keys]
        self.rows: list[dict[str, Any]] = [{} for _ in self.final_keys]  # fields read from TQ, per session
        self.metric: list[float | None] = [None] * len(self.final_keys)
        self.rewrites: dict[str, dict[str, Any]] = {}  # key -> fields to write back if the group is kept

    def drop_sessions_from(self, keep_first: int) -> list[str]:
        """Keep only the first ``keep_first`` sessions; return the trajectory keys to evict."""
        dropped = [k for ks in self.session_keys[keep_first:] for k in ks]
        for name in ("session_keys", "final_keys", "response_lens", "rows", "metric"):
            setattr(self, name, getattr(self, name)[:keep_first])
        return dropped


class GroupFilterSampler(ReplayBuffer):
    """verl v1 replay buffer that filters prompt groups, relabels ``vote`` groups, and refills.

    verl constructs it with ``trainer_mode, trainer_config, max_off_policy_threshold,
    max_off_policy_strategy, sampler_kwargs, refill_fn`` (``PPOTrainer._build_replay_buffer``);
    everything else comes from ``sampler_kwargs`` (see the module docstring) and from the full
    trainer config it hangs from (``rollout.response_length``, ``data.gen_batch_size``, the
    reward's ``scheme``).
    """

    def __init__(
        self,
        trainer_mode: str,
        trainer_config: DictConfig | Mapping | None,
        max_off_policy_threshold: int | None,
        max_off_policy_strategy: str,
        sampler_kwargs: DictConfig | Mapping | None,
        refill_fn: Callable[[int], int] | None = None,
        **kwargs: Any,
    ):
        if trainer_mode in ASYNC_TRAINER_MODES:
            raise ValueError(
                f"GroupFilterSampler samples synchronously (it waits for whole prompt groups and refills); "
                f"trainer.v1.trainer_mode={trainer_mode!r} needs verl's async replay buffer. "
                f"Use trainer.v1.trainer_mode=sync (or a sync-based trainer such as pcl)."
            )
        if isinstance(sampler_kwargs, DictConfig):
            plain = OmegaConf.to_container(sampler_kwargs, resolve=True)
        else:
            plain = dict(sampler_kwargs or {})
        self.options = SamplerOptions.from_mapping(plain)  # type: ignore[arg-type]
        # every judged group's values of the metrics a consumer watches (PCL), recorded before any eviction
        self.scored_groups = ScoredGroups()
        self.root_config = _root_config(sampler_kwargs)
        super().__init__(
            trainer_mode=trainer_mode,
            trainer_config=trainer_config,
            max_off_policy_threshold=max_off_policy_threshold,
            max_off_policy_strategy=max_off_policy_strategy,
            sampler_kwargs=sampler_kwargs,
            poll_interval=self.options.poll_interval,
            refill_fn=refill_fn,
        )
        self.max_response_length = self.options.max_response_length or self._select(
            "actor_rollout_ref.rollout.response_length"
        )
        if self.options.length is not None and self.options.length.drop_truncated and not self.max_response_length:
            raise ValueError(
                f"{CONFIG_PREFIX}.length.drop_truncated needs the maximum response length: "
                f"set actor_rollout_ref.rollout.response_length or {CONFIG_PREFIX}.max_response_length"
            )
        self._vote_scheme_override = None
        if self._select("reward.custom_reward_function.path"):
            self._vote_scheme_override = self._select("reward.custom_reward_function.reward_kwargs.scheme")
        if self._select("algorithm.filter_groups.enable"):
            logger.warning(
                "algorithm.filter_groups.enable=True is ignored with GroupFilterSampler (verl applies DAPO's "
                "filter only in its built-in buffer); use %s.acc instead",
                CONFIG_PREFIX,
            )
        n = self._select("actor_rollout_ref.rollout.n")
        train_n = self.options.vote.train_n
        if train_n is not None and isinstance(n, int) and train_n >= n:
            logger.warning("%s.vote.train_n=%s >= rollout.n=%s: every rollout is trained on", CONFIG_PREFIX, train_n, n)
        self._warned_invalid_metric: set[str] = set()  # data sources already warned about, once each
        self._warned_gold_in_ground_truth = False
        logger.info("GroupFilterSampler: filters=%s, vote=%s", self.options.filters, self.options.vote)

    # ------------------------------------------------------------------ config helpers

    def _select(self, path: str) -> Any:
        if self.root_config is None:
            return None
        return OmegaConf.select(self.root_config, path, default=None)

    def _refill_granularity(self) -> int:
        """verl submits prompts in whole ``data.gen_batch_size`` dataloader chunks."""
        gen = self._select("data.gen_batch_size") or self._select("data.train_batch_size")
        return int(gen) if gen else 1

    def _vote_scheme(self, data_source: str, extra_info: Any) -> str:
        """The scheme ``reward_fns.compute_score`` used for this row (same precedence as there)."""
        if self._vote_scheme_override:
            return str(self._vote_scheme_override)
        if isinstance(extra_info, Mapping) and extra_info.get("scheme"):
            return str(extra_info["scheme"])
        entry = reward_fns.DATA_SOURCES.get(data_source)
        return entry[1] if entry else "r1"

    # ------------------------------------------------------------------ TransferQueue I/O

    def _evict_keys(self, partition_id: str, keys: list[str]) -> None:
        clear_keys(partition_id, keys)
        for key in keys:
            self.partitions[partition_id].pop(key, None)

    # ------------------------------------------------------------------ judging groups

    def _load_groups(self, partition_id: str, uids: list[str]) -> list[_Group]:
        partition = self.partitions[partition_id]
        wanted = set(uids)
        keys_by_uid: dict[str, list[str]] = defaultdict(list)
        for key in partition:
            uid = key_uid(key)
            if uid in wanted:
                keys_by_uid[uid].append(key)
        groups = [_Group(uid, keys_by_uid.get(uid, []), partition) for uid in uids]
        acc, vote = self.options.acc, self.options.vote
        fields = ["data_source", "extra_fields"] if vote.enable else ["data_source"]
        if acc is not None and reward_field(acc.metric) not in fields:
            fields.append(reward_field(acc.metric))
        for watched in sorted(self.scored_groups.metrics):
            if reward_field(watched) not in fields:
                fields.append(reward_field(watched))
        keys = [k for g in groups for k in g.final_keys]
        data = read_fields(partition_id, keys, fields)
        i = 0
        for g in groups:
            for s in range(len(g.final_keys)):
                g.rows[s] = {f: data[f][i] for f in fields}
                i += 1
        # the label and row options are needed only for the groups that will be relabelled
        voted = [g for g in groups if self._is_vote_group(g)]
        extra = ["reward_model", "extra_info"]
        data = read_fields(partition_id, [g.final_keys[0] for g in voted], extra)
        for i, g in enumerate(voted):
            g.rows[0].update({f: data[f][i] for f in extra})
        return groups

    def _metric_values(self, group: _Group) -> None:
        acc = self.options.acc
        if acc is None:
            return
        for s, row in enumerate(group.rows):
            group.metric[s] = metric_value(row.get(reward_field(acc.metric)), acc.metric)

    def _is_vote_group(self, group: _Group) -> bool:
        vote = self.options.vote
        return bool(vote.enable and group.rows and str(group.rows[0].get("data_source") or "") in vote.data_sources)

    def _eval_truth(self, group: _Group) -> Any:
        """A ``vote`` row's true answer, for the agreement metrics only (never the reward)."""
        extra_info = group.rows[0].get("extra_info")
        truth = extra_info.get(EVAL_GROUND_TRUTH_KEY) if isinstance(extra_info, Mapping) else None
        reward_model = group.rows[0].get("reward_model")
        gold = reward_model.get("ground_truth") if isinstance(reward_model, Mapping) else None
        if truth is None and true_label(gold) and not self._warned_gold_in_ground_truth:
            self._warned_gold_in_ground_truth = True
            logger.warning(
                "GroupFilterSampler: 'vote' rows carry reward_model.ground_truth=%r, which is ignored (a vote row is "
                "never scored against a gold answer). To log training/vote/label_agreement and true_acc, keep the "
                "true answer in extra_info.%s instead (python -m verl_selfplay.data.math --data-source vote does).",
                gold,
                EVAL_GROUND_TRUTH_KEY,
            )
        return truth

    def _relabel(self, partition_id: str, group: _Group, vote_stats: VoteStats) -> list[str]:
        """Majority-vote relabelling of a ``vote`` group; returns trajectory keys dropped by ``train_n``."""
        vote = self.options.vote
        if not self._is_vote_group(group):
            return []
        data_source = str(group.rows[0]["data_source"])
        infos = [reward_extra_info(row.get("extra_fields")) for row in group.rows]
        missing = [k for k in ("pred", "format_ok") if any(k not in info for info in infos)]
        if missing:
            have = sorted(next((info for info in infos if any(k not in info for k in missing)), {}))
            raise RuntimeError(
                f"GroupFilterSampler: vote relabelling of data source {data_source!r} needs the reward function to "
                f"report {', '.join(repr(k) for k in missing)} (the extracted answer and the format verdict of each "
                f"rollout) in reward_extra_info, but the rollouts of prompt {group.uid} lack it (the reward "
                f"function's keys: {have}). Use reward_fns.compute_score (it reports pred and format_ok), return "
                f"those keys from your reward function, or leave {data_source!r} out of "
                f"{CONFIG_PREFIX}.vote.data_sources."
            )
        extra_info = group.rows[0].get("extra_info")
        outcome = relabel_group(
            [info["pred"] for info in infos],
            [bool(info["format_ok"]) for info in infos],
            self._vote_scheme(data_source, extra_info),
            eval_ground_truth=self._eval_truth(group),
        )
        vote_stats.record(outcome)
        # verl gives every output of a session the final output's reward (agent_loop_tq.py,
        # _agent_loop_postprocess): reward_score and extra_fields["reward_extra_info"]; the rest of each
        # output's extra_fields is its own, so read the earlier outputs' extra_fields and keep them
        earlier = [k for keys in group.session_keys for k in keys[:-1]]
        earlier_fields = read_fields(partition_id, earlier, ["extra_fields"])["extra_fields"]
        own_fields = dict(zip(earlier, earlier_fields, strict=True))
        for s, info in enumerate(infos):
            # the reward function's error said the row had no label; the vote gave it one
            new_info = {**info, "acc": outcome.accs[s], "score": outcome.scores[s], "error": ""}
            for key in group.session_keys[s]:
                final = key == group.final_keys[s]
                own = group.rows[s].get("extra_fields") if final else own_fields[key]
                extra_fields = with_reward_extra_info(own, new_info)
                length = max(1, int(group.tags[key].get("response_len", 1)))
                rm_scores = torch.zeros(length, dtype=torch.float32)
                rm_scores[-1] = outcome.scores[s]
                group.rewrites.setdefault(key, {}).update({"rm_scores": rm_scores, "extra_fields": extra_fields})
                if final:
                    group.rows[s]["extra_fields"] = extra_fields
                    group.rows[s]["rm_scores"] = rm_scores  # what the acc filter's "reward" metric reads
        if vote.train_n is not None and len(group.final_keys) > vote.train_n:
            dropped = group.drop_sessions_from(vote.train_n)
            for key in dropped:
                group.rewrites.pop(key, None)
            vote_stats.dropped_rollouts += len(dropped)
            return dropped
        return []

    def _judge(
        self,
        partition_id: str,
        uids: list[str],
        stats: StepStats,
        vote_stats: VoteStats,
        kept: list[str],
    ) -> None:
        """Decide every newly finished group: evict it, or keep it (writing back rewards and masks)."""
        groups = self._load_groups(partition_id, uids)
        verdicts: dict[str, GroupVerdict] = {}
        to_evict_keys: list[str] = []
        for g in groups:
            to_evict_keys += self._relabel(partition_id, g, vote_stats)
            self._metric_values(g)
            self.scored_groups.record(
                g.uid,
                {m: [metric_value(row.get(reward_field(m)), m) for row in g.rows] for m in self.scored_groups.metrics},
            )
            verdicts[g.uid] = decide_group(
                self.options, g.metric, g.response_lens, max_response_length=self.max_response_length
            )
            if verdicts[g.uid].reason == "acc_missing":
                available = sorted(reward_extra_info(g.rows[0].get("extra_fields"))) if g.rows else []
                raise RuntimeError(
                    f"GroupFilterSampler: the rollouts of prompt {g.uid} lack the acc-filter metric "
                    f"{self.options.acc.metric!r} in reward_extra_info (it has: {available}). Return it from the "
                    f"reward function, or set {CONFIG_PREFIX}.acc.metric to one of those keys or 'reward'."
                )
            if verdicts[g.uid].reason == "invalid_metric":
                self._warn_invalid_metric(g)
        provisional = [g for g in groups if verdicts[g.uid].provisional]
        if provisional:
            keys = [k for g in provisional for k in g.final_keys]
            tokens = read_fields(partition_id, keys, ["responses"])["responses"]
            i = 0
            for g in provisional:
                seqs = [t.tolist() for t in tokens[i : i + len(g.final_keys)]]
                i += len(g.final_keys)
                verdicts[g.uid] = decide_group(
                    self.options,
                    g.metric,
                    g.response_lens,
                    max_response_length=self.max_response_length,
                    token_seqs=seqs,
                )
        rejected_uids: set[str] = set()
        rewrites: dict[str, dict[str, Any]] = {}
        for g in groups:
            verdict = verdicts[g.uid]
            stats.record(verdict)
            if not verdict.keep:
                rejected_uids.add(g.uid)
                continue
            kept.append(g.uid)
            rewrites.update(g.rewrites)
            for s in verdict.masked:
                for key in g.session_keys[s]:
                    length = int(g.tags[key].get("response_len", 0))
                    zeros = torch.zeros(length, dtype=torch.int64)
                    rewrites.setdefault(key, {}).update({"response_mask": zeros, "loss_mask": zeros})
        self._evict_keys(partition_id, to_evict_keys)
        self._clear_groups(partition_id, rejected_uids)
        write_fields(partition_id, rewrites)

    def _warn_invalid_metric(self, group: _Group) -> None:
        """Warn once per data source that its reward function reports a metric that is not a finite number."""
        data_source = str(group.rows[0].get("data_source") or "") if group.rows else ""
        if data_source in self._warned_invalid_metric:
            return
        self._warned_invalid_metric.add(data_source)
        bad = [v for v in group.metric if v is not None and not math.isfinite(v)]
        logger.warning(
            "GroupFilterSampler: the acc-filter metric %r of data source %r is not a finite number (%s in %d of %d "
            "rollouts of prompt %s). Such groups are rejected as invalid_metric "
            "(training/group_filter/groups_rejected/invalid_metric), not as acc_too_low; fix the reward function "
            "of that data source. This warning is shown once per data source.",
            self.options.acc.metric if self.options.acc else None,
            data_source or None,
            bad[0] if bad else "nan",
            len(bad),
            len(group.metric),
            group.uid,
        )

    # ------------------------------------------------------------------ sampling

    @SkipManager.annotate_tq(role="rollout_tq", phase="sample")
    def sample(self, global_steps: int, partition_id: str, batch_size: int) -> tuple[KVBatchMeta, dict]:
        """Return ``batch_size`` kept prompt groups (their trajectory keys) and this step's metrics.

        Validation batches (``partition_id="val"``) go through verl's own sampling unchanged.
        """
        if partition_id == "val":
            base_sample = getattr(ReplayBuffer.sample, "__wrapped__", ReplayBuffer.sample)
            return base_sample(self, global_steps, partition_id, batch_size)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        stats, vote_stats = StepStats(), VoteStats()
        kept: list[str] = []
        decided: set[str] = set()
        last_debug_time = time.time()
        while True:
            self._sync_metadata_from_transfer_queue()
            steps = self.prompt_global_steps[partition_id]
            terminal = (self.finished_keys[partition_id] | self.failure_keys[partition_id]) - decided
            if terminal:
                new = sorted(terminal, key=lambda uid: (steps.get(uid, 0), uid))
                self._judge(partition_id, new, stats, vote_stats, kept)
                decided.update(new)
            inflight = len(self.pending_keys[partition_id]) + len(self.running_keys[partition_id])
            if inflight == 0:
                if len(kept) >= batch_size:
                    break
                deficit = batch_size - len(kept)
                if stats.rounds - 1 < self.options.max_extra_gen_rounds and self.refill_fn is not None:
                    prompts = refill_prompts(deficit, stats.generated, stats.kept, self._refill_granularity())
                    logger.info(
                        "GroupFilterSampler: %d/%d groups kept after round %d (%s); generating %d more prompts",
                        len(kept),
                        batch_size,
                        stats.rounds,
                        stats.summary(),
                        prompts,
                    )
                    self.refill_fn(prompts)
                    stats.rounds += 1
                    continue
                stats.cap_hit = True
                message = (
                    f"GroupFilterSampler: only {len(kept)} of {batch_size} prompt groups passed the filters at the "
                    f"cap of {self.options.max_extra_gen_rounds} extra generation rounds ({stats.summary()}). "
                    f"Raise {CONFIG_PREFIX}.max_extra_gen_rounds, widen {CONFIG_PREFIX}.acc.low/high, or relax "
                    f"the length/repetition filters."
                )
                if not kept or self.options.on_exhausted == "error":
                    raise RuntimeError(message + (" No group is left to train on." if not kept else ""))
                logger.warning(message + f" Training this step on the {len(kept)} kept groups.")
                break
            last_debug_time = self._wait_for_next_poll(partition_id, last_debug_time)

        selected, surplus = kept[:batch_size], kept[batch_size:]
        self._clear_groups(partition_id, set(surplus))
        stats.trained, stats.surplus = len(selected), len(surplus)
        batch = self._materialize_batch(partition_id, selected, dict(self.partitions[partition_id]))
        if not batch.keys:
            raise RuntimeError("GroupFilterSampler: the selected prompt groups have no trajectories to train on")
        metrics: dict[str, float] = {**stats.metrics(), **vote_stats.metrics()}
        logger.info(
            "GroupFilterSampler step %s: %s, training on %d groups", global_steps, stats.summary(), len(selected)
        )
        return batch, metrics
