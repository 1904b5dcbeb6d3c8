# ruff: noqa: E402
"""PCL inside verl: a v1 trainer (``trainer.v1.trainer_mode=pcl``) that picks each step's prompts with a value model.

Turn it on with two kinds of overrides (defaults shown)::

    trainer.v1.trainer_mode=pcl
    +pcl.k=4 +pcl.tau=0.5 +pcl.value_model=embedding      # optional: these are the defaults
    +pcl.value_model_kwargs.lr=3e-3                         # options of build_value_model
    +pcl.metric=acc                                         # default: V predicts reward_extra_info["acc"], a pass rate

Each step (:meth:`PCLTrainer._next_train_batch`) draws ``k * data.train_batch_size`` candidates from a
:class:`~verl_selfplay.pcl.selection.CandidatePool` over ``data.train_files``, scores them with the value model,
submits the ``m`` closest to ``tau`` to verl's rollout and returns the others to the pool. After verl's own step
(generation, reward, advantage, actor update) :meth:`PCLTrainer.step` collects every submitted prompt's
``pcl.metric`` values, logs ``pcl/*`` metrics through verl's tracker and fits the value model. The value model
and the pool position are saved in every verl checkpoint (``global_step_N/pcl_state.pt``) and restored on resume.

With a group filter (``GroupFilterSampler``, e.g. the acc filter keeping pass rates in [0.1, 0.8]) the values
come from the sampler's :class:`~verl_selfplay.common.scored_groups.ScoredGroups`, recorded when it judged each
group and *before* it evicted rejected and surplus groups, so V is fitted on every scored prompt (refills
included), not only on the survivors: fitting on survivors alone would censor V's targets to the filter's window.
With verl's own replay buffers the values are read from the trained batch in TransferQueue.

Failure handling: a value model that raises (or returns the wrong shape) at predict time makes that step fall
back to the pool's own shuffled order, i.e. what verl's dataloader would have fed, with a warning and
``pcl/predict_fallback=1``. Prompts whose metric is missing or NaN are left out of the value update and counted
in ``pcl/skipped_rewards``. Bad ``pcl.*`` values and ``data.train_batch_size`` larger than the training set
fail at start-up, naming the key. A bounded (sigmoid) value model fitted to a metric outside [0, 1] is refused
naming ``pcl.metric``: at start-up when the range is known (``reward_fns.compute_score`` with ``pcl.metric=reward``:
its schemes score outside [0, 1]), otherwise at the first step that observes such a value.

verl touch points (verl 0.9.1, ``verl/trainer/ppo/v1/trainer_base.py``), all overridden thinly:

- ``trainer_mode``: reported as ``"sync"`` to verl's base class by
  :class:`~verl_selfplay.common.sync_trainer.SyncModeTrainer`, which also saves the PCL state next to verl's
  checkpoint;
- ``_init_dataloader`` (+ the pool), ``_next_train_batch`` (selection, also called by refills through verl's
  ``_add_prompts_to_generate``), ``step`` (value update and metrics); rewards are read through the replay
  buffer's ``scored_groups`` (:mod:`verl_selfplay.common.scored_groups`) or
  :mod:`verl_selfplay.common.trajectories`.

With ``+pcl.value_model=llm`` the value model is verl's ``TrainingWorker`` (value head) on its own worker group on
the actor's resource pool, created at the end of verl's ``_setup`` (:meth:`PCLTrainer._load_checkpoint`); the
driver only tokenises (:mod:`verl_selfplay.pcl.value_worker`). Its weights and optimiser are saved by the workers
into ``global_step_N/pcl_value_model``.
"""

from __future__ import annotations

from types import ModuleType

TRAINER_MODE = "pcl"
PCL_STATE_FILE = "pcl_state.pt"


def register(v1_module: ModuleType | None = None) -> None:
    """Register :class:`PCLTrainer` as verl trainer mode ``pcl`` (idempotent).

    Called by :mod:`verl_selfplay.registry` when verl imports ``verl.trainer.ppo.v1``, and at the end of this
    module. It is defined before this module imports verl: importing this module first makes verl import
    ``verl.trainer.ppo.v1``, whose import hook calls this function while the class does not exist yet; that call
    is a no-op, and the call at the bottom of the module registers.
    """
    cls = globals().get("PCLTrainer")
    if cls is None:
        return
    from verl.trainer.ppo.v1.trainer_base import TRAINER_REGISTRY, register_trainer

    if TRAINER_REGISTRY.get(TRAINER_MODE) is not cls:
        register_trainer(TRAINER_MODE)(cls)


# verl imports come after `register` on purpose (see its docstring); hence `ruff: noqa: E402` at the top.
import logging
import os
import time
import uuid
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from tensordict import TensorDict
from transfer_queue import KVBatchMeta
from verl.utils import tensordict_utils as tu
from verl.utils.dataset.rl_dataset import collate_fn

from verl_selfplay.common.scored_groups import ScoredGroups, scored_groups_of
from verl_selfplay.common.sync_trainer import SyncModeTrainer
from verl_selfplay.common.trajectories import group_rewards
from verl_selfplay.pcl.selection import (
    CandidatePool,
    PCLConfig,
    calibration_error,
    check_batch_fits,
    check_target_range,
    effective_ratio,
    select,
)
from verl_selfplay.pcl.value_model import WORKER_VALUE_MODELS, ValueModel, build_value_model
from verl_selfplay.pcl.value_worker import VALUE_MODEL_DIR, check_value_model, create_worker_value_model

logger = logging.getLogger(__name__)
logger.setLevel(os.getenv("VERL_LOGGING_LEVEL", "INFO"))

__all__ = ["PCL_STATE_FILE", "TRAINER_MODE", "PCLTrainer", "prompt_text", "register", "reward_fns_metric_range"]

REWARD_FNS_PATHS = ("pkg://reward_fns", "reward_fns")


def reward_fns_metric_range(config: DictConfig, metric: str) -> tuple[float, float, str] | None:
    """``(low, high, source)`` of ``metric`` when start-up can know it, else ``None``.

    Known when the reward function is ``reward_fns.compute_score``: its ``score`` (verl's ``reward``) follows the
    configured scheme (``reward_kwargs.scheme``; every scheme when rows may pick their own) and its ``acc`` is 0/1.

    >>> cfg = OmegaConf.create({"reward": {"custom_reward_function": {"path": "pkg://reward_fns",
    ...     "name": "compute_score", "reward_kwargs": {"scheme": "r1"}}}})
    >>> reward_fns_metric_range(cfg, "reward"), reward_fns_metric_range(cfg, "acc")
    ((0.0, 2.0, 'reward_fns scheme r1'), (0.0, 1.0, 'reward_fns acc'))
    >>> reward_fns_metric_range(OmegaConf.create({}), "reward") is None
    True
    """
    fn = OmegaConf.select(config, "reward.custom_reward_function", default=None) or {}
    if fn.get("path") not in REWARD_FNS_PATHS or fn.get("name", "compute_score") != "compute_score":
        return None
    if metric == "acc":
        return 0.0, 1.0, "reward_fns acc"
    if metric not in ("reward", "score"):
        return None
    from reward_fns.schemes import SCHEMES, score

    scheme = OmegaConf.select(config, "reward.custom_reward_function.reward_kwargs.scheme", default=None)
    schemes = [str(scheme)] if scheme else list(SCHEMES)
    flags = (False, True)
    values = [score(s, format_ok=f, parsed=p, correct=c) for s in schemes for f in flags for p in flags for c in flags]
    return min(values), max(values), f"reward_fns scheme {'/'.join(schemes)}"


def prompt_text(raw_prompt: Any) -> str:
    """The text a value model sees for one dataset row's ``raw_prompt``: the user turns' contents, one per line.

    System messages are left out: a data set shares one system prompt (e.g. the R1 format instructions), so it
    says nothing about a prompt's difficulty and would only crowd the encoder's window. A row without user turns
    keeps all its messages.

    >>> prompt_text([{"role": "system", "content": "Think first."}, {"role": "user", "content": "1+1?"}])
    '1+1?'
    >>> prompt_text("plain")
    'plain'
    """
    if isinstance(raw_prompt, str):
        return raw_prompt
    messages = [m for m in list(raw_prompt) if isinstance(m, Mapping)]
    user = [m for m in messages if m.get("role") == "user"] or messages
    parts = []
    for message in user:
        content = message.get("content", "")
        if isinstance(content, list):  # multimodal content: keep the text parts
            content = " ".join(c.get("text", "") for c in content if isinstance(c, Mapping))
        parts.append(str(content))
    return "\n".join(parts)


class PCLTrainer(SyncModeTrainer):
    """verl's synchronous v1 trainer with PCL prompt selection (see the module docstring)."""

    def __init__(self, config: DictConfig) -> None:
        pcl_node = config.get("pcl", None)
        raw = OmegaConf.to_container(pcl_node, resolve=True) if isinstance(pcl_node, DictConfig) else pcl_node
        self.pcl = PCLConfig.from_mapping(raw)  # fails here, before any worker starts, on a bad pcl.* value
        if self.pcl.enable:
            known = reward_fns_metric_range(config, self.pcl.metric)
            if known is not None:
                check_target_range(self.pcl.metric, self.pcl.bounded, *known)
        super().__init__(config)
        # The replay buffer records every judged group's values of pcl.metric before it evicts any (rejected or
        # surplus groups of GroupFilterSampler), so V learns from every scored prompt; None for verl's own buffers.
        self.scored_groups: ScoredGroups | None = scored_groups_of(self.replay_buffer)
        if self.pcl.enable and self.scored_groups is not None:
            self.scored_groups.watch(self.pcl.metric)
        self.value_model: ValueModel | None = None
        self._worker_value_model: dict[str, Any] | None = None  # checked options; built with the worker groups
        if self.pcl.enable and self.pcl.value_model in WORKER_VALUE_MODELS:
            self._worker_value_model = check_value_model(config, self.pcl.value_model_kwargs)
        elif self.pcl.enable:
            self.value_model = build_value_model(self.pcl.value_model, **self.pcl.value_model_kwargs)
        self.pool: CandidatePool | None = None
        self._inflight: dict[str, tuple[str, float]] = {}  # uid -> (prompt text, predicted value)
        self._step_stats: dict[str, float] = defaultdict(float)
        logger.info(f"PCL {'on' if self.pcl.enable else 'off'}: {self.pcl}")

    # ------------------------------------------------------------------ data
    def _init_dataloader(self) -> None:
        """verl's dataloaders, plus PCL's candidate pool over the training set (checks m <= dataset size)."""
        super()._init_dataloader()
        if not self.pcl.enable:
            return
        check_batch_fits(int(self.config.data.train_batch_size), len(self.train_dataset))
        seed = self.pcl.seed if self.pcl.seed is not None else self.config.data.get("seed", None)
        self.pool = CandidatePool(
            len(self.train_dataset),
            seed=1 if seed is None else int(seed),
            shuffle=bool(self.config.data.get("shuffle", True)),
        )
        k_m = self.pcl.k * int(self.config.data.train_batch_size)
        if k_m > len(self.train_dataset):
            logger.warning(
                f"pcl.k * data.train_batch_size = {k_m} exceeds the training set ({len(self.train_dataset)} "
                "prompts): every prompt is a candidate each step"
            )

    def _predict(self, texts: list[str]) -> np.ndarray | None:
        """Value predictions, or None (with a warning) if the value model fails."""
        try:
            preds = np.asarray(self.value_model.predict(texts), dtype=np.float64)
            if preds.shape != (len(texts),):
                raise ValueError(f"predict returned shape {preds.shape} for {len(texts)} prompts")
            return preds
        except Exception as e:  # a broken value model must not kill the training step
            logger.warning(f"PCL value model failed at predict time ({e!r}); this step keeps the pool's order")
            return None

    def _next_train_batch(self, num_prompts: int | None = None) -> TensorDict:
        """``num_prompts`` (default ``data.train_batch_size``) prompts chosen by PCL from ``k`` times as many."""
        if not self.pcl.enable:
            return super()._next_train_batch(num_prompts)
        m = int(num_prompts or self.config.data.train_batch_size)
        start = time.perf_counter()
        candidates = self.pool.draw(self.pcl.k * m)
        rows = [self.train_dataset[i] for i in candidates]
        texts = [prompt_text(row["raw_prompt"]) for row in rows]
        preds = self._predict(texts)
        if preds is None:
            chosen = np.arange(m)  # the pool's shuffled order: what verl's dataloader would feed
            preds = np.full(len(candidates), np.nan)
            self._step_stats["predict_fallback"] = 1.0
        else:
            chosen = select(preds, m, self.pcl.tau)
        self.pool.commit(candidates, chosen.tolist())

        batch_dict = collate_fn([rows[i] for i in chosen])
        batch_dict["uid"] = np.array([str(uuid.uuid4()) for _ in range(m)], dtype=object)
        batch = tu.get_tensordict(batch_dict)
        tu.assign_non_tensor_data(batch, "global_steps", self.global_steps)
        for uid, i in zip(batch_dict["uid"], chosen, strict=True):
            self._inflight[uid] = (texts[i], float(preds[i]))

        self._step_stats["selection_s"] += time.perf_counter() - start
        self._step_stats["candidates"] += len(candidates)
        self._step_stats["candidate_predicted_sum"] += float(np.nansum(preds))
        return batch

    # ------------------------------------------------------------------ step
    def step(self, metrics: dict, timing_raw: dict) -> KVBatchMeta:
        """verl's step, then the value-model update and the ``pcl/*`` metrics of this step."""
        batch = super().step(metrics, timing_raw)
        if self.pcl.enable:
            metrics.update(self._after_step(batch, timing_raw))
        return batch

    def _group_rewards(self, batch: KVBatchMeta) -> dict[str, list[float]]:
        """Per prompt uid submitted by PCL, one ``pcl.metric`` value per rollout session (NaN where missing).

        From the replay buffer's :class:`~verl_selfplay.common.scored_groups.ScoredGroups` when it has one: every
        group it judged, kept or evicted. Otherwise (verl's own buffers) from the trained batch in TransferQueue.
        """
        if self.scored_groups is not None:
            groups = self.scored_groups.pop(self._inflight, self.pcl.metric)
            self.scored_groups.clear()  # groups PCL did not submit (none in sync training); keep memory bounded
            return groups
        return group_rewards(batch.partition_id, batch.keys, batch.tags, self.pcl.metric, self._inflight)

    def _after_step(self, batch: KVBatchMeta, timing_raw: Mapping[str, float]) -> dict[str, float]:
        groups = self._group_rewards(batch)
        observed = np.asarray([v for values in groups.values() for v in values], dtype=np.float64)
        observed = observed[np.isfinite(observed)]
        if observed.size:  # what start-up could not know (a custom reward function): refuse at the first step
            check_target_range(
                self.pcl.metric,
                self.pcl.bounded,
                float(observed.min()),
                float(observed.max()),
                f"observed at step {self.global_steps}",
            )
        texts, preds, means, skipped = [], [], [], 0
        for uid, rewards in groups.items():
            text, pred = self._inflight[uid]
            if not rewards or not np.isfinite(rewards).all():
                skipped += 1  # a NaN or missing reward: keep this prompt out of the value update
                continue
            texts.append(text)
            preds.append(pred)
            means.append(float(np.mean(rewards)))
        # Submitted prompts with no scored rollout: neither judged by the buffer nor in the trained batch.
        unreturned = sum(1 for uid in self._inflight if uid not in groups)
        self._inflight.clear()  # sync training: every submitted prompt was trained on or evicted this step

        out: dict[str, float] = {}
        preds_a, means_a = np.asarray(preds, dtype=np.float64), np.asarray(means, dtype=np.float64)
        if len(means):
            out["pcl/actual_reward/mean"] = float(means_a.mean())
            if np.isfinite(preds_a).all():
                out["pcl/predicted_reward/mean"] = float(preds_a.mean())
                out["pcl/value_mse"] = float(np.mean((preds_a - means_a) ** 2))
                out["pcl/calibration_error"] = calibration_error(preds_a, means_a)
        out["pcl/effective_ratio"] = effective_ratio(groups.values()) if groups else float("nan")
        out["pcl/skipped_rewards"] = float(skipped)
        out["pcl/unreturned_prompts"] = float(unreturned)

        start = time.perf_counter()
        if texts:
            try:
                out["pcl/value_loss"] = float(self.value_model.update(texts, means))
            except Exception as e:  # keep training; the value model will be retried next step
                logger.warning(f"PCL value model update failed ({e!r}); the policy step is unaffected")
                out["pcl/update_failed"] = 1.0
        out["pcl/time/value_update_s"] = time.perf_counter() - start

        stats, self._step_stats = self._step_stats, defaultdict(float)
        generation_s = float(timing_raw.get("gen", float("nan")))
        out["pcl/time/selection_s"] = stats["selection_s"]
        out["pcl/time/generation_s"] = generation_s
        out["pcl/time/selection_over_generation"] = stats["selection_s"] / generation_s if generation_s > 0 else np.nan
        out["pcl/candidates"] = stats["candidates"]
        out["pcl/candidate_predicted/mean"] = (
            stats["candidate_predicted_sum"] / stats["candidates"] if stats["candidates"] else float("nan")
        )
        out["pcl/predict_fallback"] = stats["predict_fallback"]
        out["pcl/pool/lap"] = float(self.pool.lap)  # laps over the training set: k per verl epoch
        out["pcl/pool/left_in_lap"] = float(len(self.pool))
        out["pcl/pool/trained_fraction"] = self.pool.trained / max(self.pool.offered, 1)  # about 1/k
        return out

    # ------------------------------------------------------------------ checkpoints
    def _load_checkpoint(self) -> None:
        """The ``llm`` value model's worker group on the actor's resource pool, then verl's resume (+ PCL state).

        verl's ``_setup`` creates the worker groups and resource pools and ends with ``_load_checkpoint``
        (``trainer_base.py:226-397``): the first point where the pools exist and the value model is still needed
        before the PCL state is restored.
        """
        if self._worker_value_model is not None and self.value_model is None:
            pool = self.resource_pool_manager.get_resource_pool(self._actor_role())
            self.value_model = create_worker_value_model(self.config, pool, self._worker_value_model)
        super()._load_checkpoint()

    def _actor_role(self) -> Any:
        from verl.trainer.ppo.utils import Role

        for role in (Role.Actor, Role.ActorRolloutRef, Role.ActorRollout):
            if role in self.role_worker_mapping:
                return role
        raise RuntimeError("no actor role in verl's role_worker_mapping")

    def pcl_state_dict(self) -> dict[str, Any]:
        """Value model and candidate pool state, saved with every verl checkpoint."""
        return {"version": 1, "value_model": self.value_model.state_dict(), "pool": self.pool.state_dict()}

    def load_pcl_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`pcl_state_dict`."""
        if int(state.get("version", 0)) != 1:
            raise ValueError(f"unsupported PCL checkpoint version {state.get('version')!r}")
        self.value_model.load_state_dict(state["value_model"])
        self.pool.load_state_dict(state["pool"])

    def save_extra_state(self, folder: str) -> None:
        """The PCL state (value model, candidate pool) into verl's ``global_step_N`` folder."""
        if self.pcl.enable:
            torch.save(self.pcl_state_dict(), os.path.join(folder, PCL_STATE_FILE))
            if hasattr(self.value_model, "save_checkpoint"):  # weights and optimiser live on the workers
                self.value_model.save_checkpoint(os.path.join(folder, VALUE_MODEL_DIR), self.global_steps)

    def load_extra_state(self, folder: str) -> None:
        """Restore the PCL state saved by :meth:`save_extra_state` (a warning and a fresh start if absent)."""
        if not self.pcl.enable:
            return
        path = os.path.join(folder, PCL_STATE_FILE)
        if not os.path.exists(path):
            logger.warning(f"No PCL state at {path}: the value model and candidate pool start fresh")
            return
        self.load_pcl_state_dict(torch.load(path, weights_only=True))
        if hasattr(self.value_model, "load_checkpoint"):
            self.value_model.load_checkpoint(os.path.join(folder, VALUE_MODEL_DIR))
            logger.info(f"Restored the value model's weights and optimiser on its workers from {folder}")
        logger.info(f"Restored PCL value model and candidate pool from {path}")


register()
