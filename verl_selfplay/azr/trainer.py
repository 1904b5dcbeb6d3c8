# ruff: noqa: E402
"""Self-play inside verl: the v1 trainer mode ``azr`` (``trainer.v1.trainer_mode=azr``), for any task domain.

The run's task domain (``azr.domain``: ``code`` = Absolute Zero, described below; ``math`` = math self-play labelled by
majority vote, :mod:`verl_selfplay.azr.domains.math`) decides which rows a step holds, how proposals are judged and
what a harvest records (:mod:`verl_selfplay.azr.domains`); this module is the verl plumbing: rows to verl, the
domain's batch-level proposer rewards before verl's advantages (``_compute_advantage``: its rewritten ``rm_scores``)
and its solver-group filter after them (zeroed ``advantages``), the harvest from TransferQueue, the seeding phase and
checkpoints.

Turn it on with::

    trainer.v1.trainer_mode=azr
    algorithm.adv_estimator=task_relative_reinforce_plus_plus
    actor_rollout_ref.rollout.n=1
    data.train_batch_size=<3 * (azr.propose_per_type + azr.solve_per_type)>
    +azr.propose_per_type=64 +azr.solve_per_type=64 +azr.n_learn=8 ...   # see verl_selfplay.azr.config
    reward.custom_reward_function.path=pkg://reward_fns reward.custom_reward_function.name=compute_score

Each step (:meth:`AZRTrainer._next_train_batch`) submits one generation batch: for every task type,
``azr.propose_per_type`` proposer rows (K references from that type's buffer in the prompt) and
``azr.solve_per_type`` solver rows (buffer tasks, those added at the previous step first), every row routed to
:class:`~verl_selfplay.azr.agent_loop.AZRAgentLoop` by ``agent_name`` and carrying its (role, task) group in its
``uid`` for Task-Relative REINFORCE++ (:mod:`verl_selfplay.azr.advantage`). This is the reference's order too: it
builds a step's solver batches before that step's proposals exist. After verl's own step (generation, rewards,
advantages, one actor update over all six groups), :meth:`AZRTrainer.step` reads each trajectory's
``extra_fields`` back from TransferQueue, adds the valid proposals to the buffers and logs ``azr/*`` metrics. The
buffers are saved with every verl checkpoint as JSON lines (``global_step_N/azr_buffers/{type}.jsonl``) and
restored on resume. With ``azr.seed_buffer_size > 0``, a seeding phase before the first step lets the model propose
(untrained) until every buffer holds that many tasks.

Failure handling: bad ``azr.*`` values, ``data.train_batch_size`` not equal to the rows per step,
``rollout.n != 1``, DAPO filtering or a missing ``trainer.total_training_steps`` fail at start-up, naming the key.
An empty buffer falls back to the seed tasks with a warning.

verl touch points (verl 0.9.1, ``verl/trainer/ppo/v1/trainer_base.py``): the ``"sync"`` mode name and checkpoint
state through :class:`~verl_selfplay.common.sync_trainer.SyncModeTrainer`; ``_init_dataloader`` (the epoch length:
AZR has no dataset epoch), ``_next_train_batch`` (row construction), ``step`` (harvest and metrics), and for the
seeding phase ``_submit_batch_to_rollout`` plus TransferQueue polling.
"""

from __future__ import annotations

from types import ModuleType

TRAINER_MODE = "azr"


def register(v1_module: ModuleType | None = None) -> None:
    """Register :class:`AZRTrainer` as verl trainer mode ``azr`` (idempotent; see ``pcl.trainer.register``)."""
    cls = globals().get("AZRTrainer")
    if cls is None:
        return
    from verl.trainer.ppo.v1.trainer_base import TRAINER_REGISTRY, register_trainer

    if TRAINER_REGISTRY.get(TRAINER_MODE) is not cls:
        register_trainer(TRAINER_MODE)(cls)


import json
import logging
import os
import random
import time
from collections import defaultdict
from typing import Any

import torch
import transfer_queue as tq
from omegaconf import DictConfig, OmegaConf
from tensordict import TensorDict
from transfer_queue import KVBatchMeta
from verl.utils import tensordict_utils as tu
from verl.utils.dataset.rl_dataset import collate_fn

from verl_selfplay.azr.advantage import ADV_ESTIMATOR, encode_uid, group_of
from verl_selfplay.azr.agent_loop import domain_of
from verl_selfplay.azr.config import AZRConfig
from verl_selfplay.azr.domains import RowSpec, TaskDomain
from verl_selfplay.common.sync_trainer import SyncModeTrainer
from verl_selfplay.common.trajectories import (
    PADDING_TAG,
    key_uid,
    read_fields,
    reward_extra_info,
    with_reward_extra_info,
    write_fields,
)

logger = logging.getLogger(__name__)
logger.setLevel(os.getenv("VERL_LOGGING_LEVEL", "INFO"))

AGENT_NAME = "azr"
SEEDING_POLL_S = 0.2
SEEDING_TIMEOUT_S = 3600.0


def _row_field(extra_fields: Any, name: str) -> dict[str, Any]:
    extra = getattr(extra_fields, "data", extra_fields)
    value = extra.get(name) if isinstance(extra, dict) else None
    return dict(value) if isinstance(value, dict) else {}


class AZRTrainer(SyncModeTrainer):
    """verl's synchronous v1 trainer running self-play of the run's task domain (see the module docstring)."""

    def __init__(self, config: DictConfig) -> None:
        node = config.get("azr", None)
        raw = OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else node
        self.azr = AZRConfig.from_mapping(raw)  # fails here, before any worker starts, on a bad azr.* value
        self.domain: TaskDomain = domain_of(config, self.azr)  # and on a bad selfplay_<domain>.* value
        _check_verl_config(config, self.azr, self.domain)
        super().__init__(config)
        self.rng = random.Random(self.azr.sample_seed)
        self.buffers = self.domain.buffers()
        self._row_index = 0
        logger.info(f"AZR: {self.azr}")

    # ------------------------------------------------------------------ data
    def _init_dataloader(self) -> None:
        """verl's dataloaders (validation set, placeholder train set); AZR's epoch is the whole run."""
        super()._init_dataloader()
        self.steps_per_epoch = max(1, int(self.total_training_steps))

    def _prompt_fits(self, text: str) -> bool:
        return len(self.tokenizer.encode(text, add_special_tokens=False)) <= int(self.config.data.max_prompt_length)

    def _row(self, spec: RowSpec) -> dict[str, Any]:
        self._row_index += 1
        return {
            "uid": encode_uid(spec.role, spec.group),
            "index": self._row_index,
            "raw_prompt": [{"role": "user", "content": spec.text}],
            "agent_name": AGENT_NAME,
            "data_source": spec.data_source,
            "reward_model": {"style": "rule", "ground_truth": spec.ground_truth},
            "extra_info": {**spec.extra_info, "split": "train", "index": self._row_index},
            "azr_role": spec.role,
            "azr_task": spec.task_type,
        }

    def _rows(self, specs: list[RowSpec]) -> list[dict[str, Any]]:
        rows = [self._row(spec) for spec in specs]
        keys = sorted({k for r in rows for k in r["extra_info"]})  # the same extra_info keys on every row
        for r in rows:
            r["extra_info"] = {k: r["extra_info"].get(k) for k in keys}
        self.rng.shuffle(rows)  # verl hands each agent-loop worker a contiguous chunk: mix the slow proposer rows
        return rows

    def build_rows(self) -> list[dict[str, Any]]:
        """This step's rows (the domain's proposer, solver and label rows), shuffled across workers."""
        return self._rows(self.domain.build_rows(self.buffers, self.rng, self.global_steps, self._prompt_fits))

    def _to_batch(self, rows: list[dict[str, Any]]) -> TensorDict:
        batch_dict = collate_fn(rows)
        batch = tu.get_tensordict(batch_dict)
        tu.assign_non_tensor_data(batch, "global_steps", self.global_steps)
        return batch

    def _next_train_batch(self, num_prompts: int | None = None) -> TensorDict:
        """All rows of one AZR step (``num_prompts`` must be ``data.train_batch_size``)."""
        rows = self.build_rows()
        if num_prompts is not None and num_prompts != len(rows):
            raise RuntimeError(
                f"AZR submits whole steps of {len(rows)} rows, but verl asked for {num_prompts} prompts; "
                "refills (algorithm.filter_groups, trainer.v1.sampler.sync_refill_failed_groups) are not supported"
            )
        return self._to_batch(rows)

    # ------------------------------------------------------------------ step
    def step(self, metrics: dict, timing_raw: dict) -> KVBatchMeta:
        """verl's step, then the harvest of valid proposals and the domain's metrics of this step."""
        batch = super().step(metrics, timing_raw)
        keys = [k for k, tag in zip(batch.keys, batch.tags, strict=True) if not tag.get(PADDING_TAG, False)]
        metrics.update(self.harvest(batch.partition_id, keys, step=self.global_steps))
        return batch

    def _compute_advantage(self, batch: KVBatchMeta, metrics: dict) -> KVBatchMeta:
        """The domain's batch-level proposer rewards (:meth:`TaskDomain.before_advantage`), then verl's advantages."""
        if type(self.domain).before_advantage is not TaskDomain.before_advantage:
            self._rescore_proposals(batch)
        batch = super()._compute_advantage(batch, metrics)
        if type(self.domain).drop_solver_groups is not TaskDomain.drop_solver_groups:
            metrics.update(self._filter_solver_groups(batch))
        return batch

    def _filter_solver_groups(self, batch: KVBatchMeta) -> dict[str, float]:
        """Zero the advantages of the solver groups the domain drops (its accuracy filter)."""
        keys = [
            k
            for k, tag in zip(batch.keys, batch.tags, strict=True)
            if not tag.get(PADDING_TAG, False) and key_uid(k).startswith("solve.")
        ]
        extras = read_fields(batch.partition_id, keys, ["extra_fields"])["extra_fields"] if keys else []
        accuracies: dict[str, list[float]] = defaultdict(list)
        for key, extra in zip(keys, extras, strict=True):
            accuracies[group_of(key_uid(key))].append(float(reward_extra_info(extra).get("acc", 0.0) or 0.0))
        dropped = self.domain.drop_solver_groups(accuracies)
        zeroed = [k for k in keys if group_of(key_uid(k)) in dropped]
        if zeroed:
            advantages = read_fields(batch.partition_id, zeroed, ["advantages"])["advantages"]
            write_fields(
                batch.partition_id,
                {k: {"advantages": torch.zeros_like(a)} for k, a in zip(zeroed, advantages, strict=True)},
            )
        prefix = self.domain.metric_prefix
        return {
            f"{prefix}/solver_groups_dropped": float(len(dropped)),
            f"{prefix}/solver_groups_kept": float(len(accuracies) - len(dropped)),
        }

    def _rescore_proposals(self, batch: KVBatchMeta) -> None:
        keys = [
            k
            for k, tag in zip(batch.keys, batch.tags, strict=True)
            if not tag.get(PADDING_TAG, False) and key_uid(k).startswith("propose.")
        ]
        if not keys:
            return
        data = read_fields(batch.partition_id, keys, ["extra_fields", "rm_scores"])
        rows = [
            {"azr": _row_field(extra, "azr"), "score": float(scores.sum().item())}
            for extra, scores in zip(data["extra_fields"], data["rm_scores"], strict=True)
        ]
        rewrites = {}
        results = self.domain.before_advantage(rows, self.buffers)
        for key, extra, scores, row, (score, info) in zip(
            keys, data["extra_fields"], data["rm_scores"], rows, results, strict=True
        ):
            if score == row["score"] and info == row["azr"]:
                continue
            fields = dict(getattr(extra, "data", extra) or {})
            fields["azr"] = info
            reward = {**reward_extra_info(extra), "score": score, "error": str(info.get("reason", ""))}
            new_scores = torch.zeros_like(scores, dtype=torch.float32)
            if new_scores.numel():
                new_scores.view(-1)[-1] = score
            rewrites[key] = {"rm_scores": new_scores, "extra_fields": with_reward_extra_info(fields, reward)}
        write_fields(batch.partition_id, rewrites)

    def harvest(self, partition_id: str, keys: list[str], step: int) -> dict[str, float]:
        """Hand the rows among ``keys`` to the domain (buffers, metrics); add the per-group advantage means."""
        data = read_fields(partition_id, keys, ["extra_fields", "response_mask", "advantages"])
        per_group: dict[str, list[dict[str, Any]]] = defaultdict(list)
        rows = zip(keys, data["extra_fields"], data["response_mask"], data["advantages"], strict=True)
        for key, extra, mask, adv in rows:
            group = group_of(key_uid(key))
            length = float(mask.sum().item()) if hasattr(mask, "sum") else float("nan")
            adv_sum = float((adv * mask).sum().item()) if hasattr(adv, "sum") and hasattr(mask, "sum") else None
            per_group[group].append(
                {"azr": _row_field(extra, "azr"), "reward": reward_extra_info(extra), "len": length, "adv": adv_sum}
            )
        out = self.domain.harvest(self.buffers, per_group, step)
        by_kind: dict[str, list[dict[str, Any]]] = defaultdict(list)  # a domain may have one group per problem
        for group, items in per_group.items():
            by_kind[self.domain.metric_group(group)] += items
        for kind, items in by_kind.items():  # Task-Relative REINFORCE++ whitens each group: its mean is ~0
            tokens = sum(i["len"] for i in items)
            if tokens and all(i["adv"] is not None for i in items):
                out[f"{self.domain.metric_prefix}/advantage_mean/{kind}"] = sum(i["adv"] for i in items) / tokens
        return out

    # ------------------------------------------------------------------ seeding phase
    def _fit_seed_buffers(self) -> None:
        """Generate the domain's seeding rows (untrained) until it has none left (code: ``azr.seed_buffer_size``
        tasks per type; math: labelled seeds), at most ``azr.seed_max_rounds`` rounds."""
        cfg = self.azr
        for round_ in range(cfg.seed_max_rounds):
            specs = self.domain.seeding_rows(self.buffers, self.rng, self._prompt_fits)
            if not specs:
                break
            rows = self._rows(specs)
            keys = self._generate_untrained(self._to_batch(rows), [r["uid"] for r in rows])
            stats = self.harvest("train", keys, step=0)
            tq.kv_clear(keys=keys, partition_id="train")
            sizes = {t: len(b) for t, b in self.buffers.items()}
            logger.info(f"AZR seeding round {round_ + 1}: buffer sizes {sizes}; {stats}")
        else:
            if cfg.seed_max_rounds and self.domain.seeding_rows(self.buffers, random.Random(0), self._prompt_fits):
                sizes = {t: len(b) for t, b in self.buffers.items()}
                logger.warning(
                    f"AZR seeding stopped after azr.seed_max_rounds={cfg.seed_max_rounds} rounds short of its target "
                    f"(azr.seed_buffer_size={cfg.seed_buffer_size}; buffer sizes {sizes})"
                )
        for buffer in self.buffers.values():  # seeded tasks count as seeds of the run (never "latest")
            for task in buffer.tasks:
                if task.source == "proposed":
                    task.source, task.step = "seeding", 0

    def _generate_untrained(self, batch: TensorDict, uids: list[str]) -> list[str]:
        """Submit ``batch`` to verl's rollout, wait until every uid is done, return the trajectory keys."""
        self._submit_batch_to_rollout(batch)
        wanted, deadline = set(uids), time.monotonic() + SEEDING_TIMEOUT_S
        while True:
            listing = tq.kv_list(partition_id="train").get("train", {})
            prompts = {k: t for k, t in listing.items() if k in wanted}
            if len(prompts) == len(wanted) and all(
                t.get("status") in ("finished", "failure") for t in prompts.values()
            ):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"AZR seeding: generation did not finish within {SEEDING_TIMEOUT_S:.0f} s")
            time.sleep(SEEDING_POLL_S)
        keys = [k for k in listing if k not in wanted and key_uid(k) in wanted]
        tq.kv_clear(keys=list(wanted), partition_id="train")  # the prompt entries
        return keys

    def on_train_begin(self) -> None:
        """verl's hook before the first step (replicas awake): the optional seeding phase, on a fresh run."""
        super().on_train_begin()
        if self.global_steps <= 1:
            self._fit_seed_buffers()

    # ------------------------------------------------------------------ checkpoints
    def save_extra_state(self, folder: str) -> None:
        """The task buffers as JSON lines in ``folder/azr_buffers/``, plus the sampling RNG state."""
        target = self.buffers.save(folder)
        state = {"rng": _rng_state(self.rng), "row": self._row_index, "domain": self.domain.state()}
        (target / "sampler_state.json").write_text(json.dumps(state))

    def load_extra_state(self, folder: str) -> None:
        """Restore the buffers (and sampling RNG) saved by :meth:`save_extra_state`."""
        if not self.buffers.load(folder):
            logger.warning(f"No AZR buffers in {folder}: the buffers start from the seed tasks")
            return
        state_file = os.path.join(folder, "azr_buffers", "sampler_state.json")
        if os.path.exists(state_file):
            state = json.loads(open(state_file).read())
            self.rng.setstate(_rng_from_json(state["rng"]))
            self._row_index = int(state["row"])
            self.domain.load_state(state.get("domain") or {})
        logger.info(f"Restored AZR buffers from {folder}: { {t: len(b) for t, b in self.buffers.items()} }")


def _rng_state(rng: random.Random) -> list:
    version, internal, gauss = rng.getstate()
    return [version, list(internal), gauss]


def _rng_from_json(state: list) -> tuple:
    return (state[0], tuple(state[1]), state[2])


def _check_verl_config(config: DictConfig, azr: AZRConfig, domain: TaskDomain) -> None:
    """Start-up checks of the verl keys AZR depends on (each error names the key)."""
    rows = domain.rows_per_step()
    if int(config.data.train_batch_size) != rows:
        how = (
            f"{len(azr.task_types)} task types x (azr.propose_per_type={azr.propose_per_type} + "
            f"azr.solve_per_type={azr.solve_per_type})"
            if azr.domain == "code"
            else f"the {azr.domain} domain's proposer, solver and label rows"
        )
        raise ValueError(
            f"data.train_batch_size={config.data.train_batch_size} must equal the rows of one AZR step: {how} = {rows}"
        )
    if int(config.actor_rollout_ref.rollout.n) != 1:
        raise ValueError(
            f"actor_rollout_ref.rollout.n={config.actor_rollout_ref.rollout.n}: AZR trains one rollout per row "
            "(the learnability samples are drawn inside the proposer loop); set it to 1"
        )
    filter_groups = config.algorithm.get("filter_groups", None)
    if filter_groups is not None and filter_groups.get("enable", False):
        raise ValueError("algorithm.filter_groups.enable=true cannot be used with AZR (groups hold one row)")
    if config.trainer.get("total_training_steps", None) is None:
        raise ValueError("trainer.total_training_steps must be set for AZR (it has no dataset epoch)")
    if config.algorithm.adv_estimator != ADV_ESTIMATOR:
        logger.warning(
            f"algorithm.adv_estimator={config.algorithm.adv_estimator}: AZR's Task-Relative REINFORCE++ is "
            f"{ADV_ESTIMATOR}"
        )


register()
