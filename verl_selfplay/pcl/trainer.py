# ruff: noqa: E402
"""PCL inside verl: a v1 trainer (``trainer.v1.trainer_mode=pcl``) that picks each step's prompts with a value model.

Turn it on with two kinds of overrides (defaults shown)::

    trainer.v1.trainer_mode=pcl
    +pcl.k=4 +pcl.tau=0.5 +pcl.value_model=embedding      # optional: these are the defaults
    +pcl.value_model_kwargs.lr=3e-3                         # options of build_value_model
    +pcl.metric=acc                                         # fit V to reward_extra_info["acc"] instead of the reward

Each step (:meth:`PCLTrainer._next_train_batch`) draws ``k * data.train_batch_size`` candidates from a
:class:`~verl_selfplay.pcl.selection.CandidatePool` over ``data.train_files``, scores them with the value model,
submits the ``m`` closest to ``tau`` to verl's rollout and returns the others to the pool. After verl's own step
(generation, reward, advantage, actor update) :meth:`PCLTrainer.step` reads each kept prompt's rewards back from
TransferQueue, logs ``pcl/*`` metrics through verl's tracker and fits the value model. The value model and the
pool position are saved in every verl checkpoint (``global_step_N/pcl_state.pt``) and restored on resume.

Failure handling: a value model that raises (or returns the wrong shape) at predict time makes that step fall
back to the pool's own shuffled order, i.e. what verl's dataloader would have fed, with a warning and
``pcl/predict_fallback=1``. Prompts whose reward is missing or NaN are left out of the value update and counted
in ``pcl/skipped_rewards``. Bad ``pcl.*`` values and ``data.train_batch_size`` larger than the training set
fail at start-up, naming the key.

verl touch points (verl 0.9.1, ``verl/trainer/ppo/v1/trainer_base.py``), all overridden thinly:

- ``trainer_mode``: reported as ``"sync"`` to verl's base class by
  :class:`~verl_selfplay.common.sync_trainer.SyncModeTrainer`, which also saves the PCL state next to verl's
  checkpoint;
- ``_init_dataloader`` (+ the pool), ``_next_train_batch`` (selection), ``step`` (value update and metrics);
  rewards are read back through :mod:`verl_selfplay.common.trajectories`.

Not wired yet: hosting the ``llm`` value model on verl's critic worker group (it runs in the driver process; see
:mod:`verl_selfplay.pcl.value_model`).
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

from verl_selfplay.common.sync_trainer import SyncModeTrainer
from verl_selfplay.common.trajectories import group_rewards
from verl_selfplay.pcl.selection import (
    CandidatePool,
    PCLConfig,
    calibration_error,
    check_batch_fits,
    effective_ratio,
    select,
)
from verl_selfplay.pcl.value_model import ValueModel, build_value_model

logger = logging.getLogger(__name__)
logger.setLevel(os.getenv("VERL_LOGGING_LEVEL", "INFO"))

__all__ = ["PCL_STATE_FILE", "TRAINER_MODE", "PCLTrainer", "prompt_text", "register"]


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
        super().__init__(config)
        self.value_model: ValueModel | None = None
        if self.pcl.enable:
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
        """Per prompt uid submitted by PCL, one reward per rollout session (NaN where the metric is missing)."""
        return group_rewards(batch.partition_id, batch.keys, batch.tags, self.pcl.metric, self._inflight)

    def _after_step(self, batch: KVBatchMeta, timing_raw: Mapping[str, float]) -> dict[str, float]:
        groups = self._group_rewards(batch)
        texts, preds, means, skipped = [], [], [], 0
        for uid, rewards in groups.items():
            text, pred = self._inflight[uid]
            if not rewards or not np.isfinite(rewards).all():
                skipped += 1  # a NaN or missing reward: keep this prompt out of the value update
                continue
            texts.append(text)
            preds.append(pred)
            means.append(float(np.mean(rewards)))
        # Submitted prompts that came back with no trajectory in the trained batch (group filters, failures).
        unreturned = sum(1 for uid in self._inflight if uid not in groups)
        self._inflight.clear()  # sync training: every submitted prompt was trained on or evicted this step

        out: dict[str, float] = {}
        preds_a, means_a = np.asarray(preds, dtype=np.float64), np.asarray(means, dtype=np.float64)
        if len(means) and ((means_a < 0) | (means_a > 1)).any() and not getattr(self, "_warned_range", False):
            self._warned_range = True
            logger.warning(
                f"PCL fits V to pcl.metric={self.pcl.metric!r}, whose group means leave [0, 1] "
                f"(e.g. {means_a.min():.3g}..{means_a.max():.3g}); tau is a pass rate, so point pcl.metric at a "
                "0/1 reward_extra_info key such as 'acc'"
            )
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

    def load_extra_state(self, folder: str) -> None:
        """Restore the PCL state saved by :meth:`save_extra_state` (a warning and a fresh start if absent)."""
        if not self.pcl.enable:
            return
        path = os.path.join(folder, PCL_STATE_FILE)
        if not os.path.exists(path):
            logger.warning(f"No PCL state at {path}: the value model and candidate pool start fresh")
            return
        self.load_pcl_state_dict(torch.load(path, weights_only=True))
        logger.info(f"Restored PCL value model and candidate pool from {path}")


register()
