"""PCL's ``llm`` value model on a verl worker group: verl's ``TrainingWorker`` with a value head, not in the driver.

Turn it on with ``+pcl.value_model=llm`` (trainer mode ``pcl``). Options (``+pcl.value_model_kwargs.*``):

- ``model_path``: the value model's initialisation, default ``actor_rollout_ref.model.path`` (the policy's base
  model); or a smaller model of the same family (e.g. Qwen2.5-1.5B beside a Qwen2.5-7B policy). PCL (Gao et al.,
  arXiv 2510.01135) fits V(x) "concurrently updated based on the current policy"; the passage on its initialisation
  could not be read here, so both choices are offered and the default is the policy's base model **[ours]**.
- ``tokenizer_path``: default ``model_path``. The value model must share the policy's tokenizer (same vocabulary):
  prompts are scored as the policy reads them. A mismatch is refused at start-up, naming the key.
- ``bounded`` (default true): predictions are ``sigmoid(v)`` of the value head's output ``v`` (a pass rate);
  ``chat_template`` (default true): wrap each prompt as a user turn with the tokenizer's chat template;
  ``max_prompt_length`` (default ``data.max_prompt_length``): left truncation; ``steps_per_update`` (default 1):
  optimiser steps per update.

Everything else is verl's own critic configuration, read from ``critic.*`` exactly as verl's trainer builds its
critic ``TrainingWorkerConfig`` (``verl/trainer/ppo/v1/trainer_base.py:264-283``): the engine and its offload
switches (``critic.model.fsdp_config`` / ``critic.fsdp``: ``param_offload``, ``optimizer_offload``, ``model_dtype``
fp32 = fp32 master weights), the optimiser (``critic.optim``: AdamW, ``lr``, ``clip_grad``; its own state), the
micro-batches (``critic.use_dynamic_bsz`` + ``critic.ppo_max_token_len_per_gpu`` /
``critic.forward_max_token_len_per_gpu``, or ``critic.ppo_micro_batch_size_per_gpu`` /
``critic.forward_micro_batch_size_per_gpu``) and the checkpoint contents (``critic.checkpoint``). The critic itself
stays off (GRPO needs none): this is a second ``TrainingWorker`` group, ``model_type="value_model"``, built the way
verl's SFT trainer builds its training client (``verl/trainer/sft_trainer_ray.py:108-146``), on the actor's
resource pool (one worker per GPU, data-parallel).

Each step: :meth:`WorkerValueModel.predict` sends all ``k*m`` candidates as one batch to ``infer_batch`` (verl
splits it across the data-parallel workers and into micro-batches); the value is the head's output at each prompt's
last token. After the policy update, :meth:`WorkerValueModel.update` runs ``train_mini_batch`` on the ``m`` trained
prompts with :func:`prompt_value_loss` (MSE against each prompt's mean reward). The driver tokenises and holds no
model weights. With ``param_offload``/``optimizer_offload`` the engine moves weights and optimiser state to CPU
after each call (verl's ``EngineEvalModeCtx``/``EngineTrainModeCtx``), as verl's critic does, so they hold no GPU
memory during generation. The model is saved into verl's checkpoint folder (``global_step_N/pcl_value_model``,
verl's FSDP checkpoint format) and restored on resume.

**Memory per GPU** (a 1.5B value model, Qwen2.5-1.5B: 1.54e9 parameters, beside a 7B policy on 8 x 80 GB; computed
from how verl's FSDP engine holds a trained model, not measured: no GPU was available to this work). verl keeps the
trained model's master weights in ``critic.fsdp.model_dtype`` = fp32 (4 B/parameter), fp32 gradients (4 B) and AdamW's
two fp32 moments (8 B), all sharded over the 8 data-parallel ranks (``fsdp_size=-1``): 16 B x 1.54e9 / 8 = 3.1 GB per
GPU while the value model predicts or trains (weights 0.77 GB, gradients 0.77 GB during the update, moments 1.54 GB),
plus activations bounded by the token budget (``critic.forward_max_token_len_per_gpu`` /
``critic.ppo_max_token_len_per_gpu``; gradient checkpointing is on by default) and one gathered FSDP unit in bf16
(the largest is the 0.47 GB embedding). Between uses, with ``critic.fsdp.param_offload=True`` and
``critic.fsdp.optimizer_offload=True``, weights and moments sit in host memory (verl's offload on leaving
``eval_mode``/``train_mode``) and the value model holds only its worker process's CUDA context on each GPU (about
0.5 GB: a second process per GPU, whereas verl's own critic shares the actor's process); without offload it keeps
2.3 GB per GPU (weights + moments) through generation. The 7B policy under the same accounting holds 16 B x 7.6e9 / 8
= 15.2 GB per GPU while it trains. So the value model adds at most 3.1 GB (4 %) per 80 GB GPU while it runs and
about 0.5 GB during generation.

Failure handling: the trainer catches any exception of ``predict`` (uniform selection for that step, a warning and
``pcl/predict_fallback=1``) and of ``update`` (``pcl/update_failed=1``). A wrong ``model_path`` or a tokenizer
mismatch fails at start-up (:func:`check_value_model`), before any worker starts.

verl touch points: ``TrainingWorker`` / ``TrainingWorkerConfig`` (``verl/workers/engine_workers.py``),
``RayWorkerGroup`` / ``RayClassWithInitArgs``, ``omega_conf_to_dataclass(config.critic)``, the input layout of
verl's engines (jagged ``input_ids`` / ``position_ids`` / ``loss_mask``; ``values`` per token out of
``FSDPEngineWithValueHead``), and the loss-function signature ``(model_output, data, dp_group)``.
"""

from __future__ import annotations

import copy
import functools
import logging
import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf, open_dict

logger = logging.getLogger(__name__)

__all__ = [
    "VALUE_MODEL_DIR",
    "WorkerValueModel",
    "check_value_model",
    "last_token_values",
    "prompt_value_loss",
    "value_worker_config",
]

VALUE_MODEL_DIR = "pcl_value_model"  # inside verl's global_step_N folder
OPTIONS = ("model_path", "tokenizer_path", "bounded", "chat_template", "max_prompt_length", "steps_per_update")


def last_token_values(values: torch.Tensor) -> torch.Tensor:
    """Each sequence's value at its last token, from verl's jagged per-token ``values`` ``(bsz, j)``.

    >>> v = torch.nested.as_nested_tensor([torch.tensor([1.0, 2.0]), torch.tensor([3.0])], layout=torch.jagged)
    >>> last_token_values(v).tolist()
    [2.0, 3.0]
    """
    offsets = values.offsets()
    return values.values()[offsets[1:] - 1]


def prompt_value_loss(
    model_output: dict, data: Any, dp_group: Any = None, *, bounded: bool = True
) -> tuple[torch.Tensor, dict]:
    """MSE between each prompt's predicted value and ``pcl_target``, weighted by ``pcl_weight`` (0 for padding).

    A loss function for verl's ``TrainingWorker.set_loss_fn``: called per micro-batch; normalised by the number of
    real prompts in the whole batch (``pcl_num_prompts``) times the data-parallel size, so the gradient summed over
    micro-batches and averaged over workers is that of the batch mean.
    """
    from verl.utils import tensordict_utils as tu

    v = last_token_values(model_output["values"]).float()
    pred = torch.sigmoid(v) if bounded else v
    target = data["pcl_target"].to(pred)
    weight = data["pcl_weight"].to(pred)
    total = float(tu.get_non_tensor_data(data=data, key="pcl_num_prompts", default=len(pred)))
    dp_size = float(data["dp_size"])
    loss = torch.sum(weight * (pred - target) ** 2) / max(total, 1.0) * dp_size
    return loss, {}


def value_worker_config(config: DictConfig, model_path: str, tokenizer_path: str) -> Any:
    """verl's critic ``TrainingWorkerConfig`` (``model_type="value_model"``) built from ``config.critic``, with the
    value model's path; the same recipe as verl's trainer (``trainer_base.py:264-283``)."""
    from verl.utils.config import omega_conf_to_dataclass
    from verl.workers.engine_workers import TrainingWorkerConfig

    critic = copy.deepcopy(config.critic)
    with open_dict(critic):
        critic.model.path = model_path
        critic.model.tokenizer_path = tokenizer_path
        critic.enable = True
    critic_cfg = omega_conf_to_dataclass(critic)
    # verl's trainer sets only the two token budgets (both to ppo_infer_max_token_len_per_gpu) and leaves the engine's
    # own default use_dynamic_bsz=True; the critic's batch keys are mapped here the way verl maps the actor's
    # (verl/workers/engine_workers.py:618-628), so critic.use_dynamic_bsz=false with micro-batches works too.
    engine = critic_cfg.engine
    engine.use_dynamic_bsz = critic_cfg.use_dynamic_bsz
    engine.max_token_len_per_gpu = critic_cfg.ppo_max_token_len_per_gpu
    engine.infer_max_token_len_per_gpu = critic_cfg.forward_max_token_len_per_gpu
    engine.micro_batch_size_per_gpu = critic_cfg.ppo_micro_batch_size_per_gpu
    engine.infer_micro_batch_size_per_gpu = critic_cfg.forward_micro_batch_size_per_gpu
    return TrainingWorkerConfig(
        model_type="value_model",
        model_config=critic_cfg.model,
        engine_config=critic_cfg.engine,
        optimizer_config=critic_cfg.optim,
        checkpoint_config=critic_cfg.checkpoint,
    )


def _same_vocab(a: Any, b: Any) -> bool:
    return a.get_vocab() == b.get_vocab()


def check_value_model(config: DictConfig, options: dict[str, Any]) -> dict[str, Any]:
    """Resolve and check the ``llm`` value model's options at start-up; returns them complete.

    Fails naming the key on: an unknown option, a ``model_path`` whose config or tokenizer cannot be loaded, and a
    tokenizer that differs from the policy's (``actor_rollout_ref.model``). Loads configs and tokenizers only.
    """
    from transformers import AutoConfig, AutoTokenizer

    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise ValueError(
            f"unknown option pcl.value_model_kwargs.{unknown[0]} for value model 'llm'; valid: {', '.join(OPTIONS)}"
        )
    policy_path = str(config.actor_rollout_ref.model.path)
    policy_tok_path = config.actor_rollout_ref.model.get("tokenizer_path", None) or policy_path
    opts = dict(options)
    opts["model_path"] = os.path.expanduser(str(opts.get("model_path") or policy_path))
    opts["tokenizer_path"] = os.path.expanduser(str(opts.get("tokenizer_path") or opts["model_path"]))
    opts.setdefault("bounded", True)
    opts.setdefault("chat_template", True)
    opts.setdefault("max_prompt_length", int(config.data.get("max_prompt_length", 1024)))
    opts.setdefault("steps_per_update", 1)
    if int(opts["steps_per_update"]) < 1 or int(opts["max_prompt_length"]) < 1:
        key = "steps_per_update" if int(opts["steps_per_update"]) < 1 else "max_prompt_length"
        raise ValueError(f"pcl.value_model_kwargs.{key}={opts[key]} is out of range (>= 1)")
    try:
        AutoConfig.from_pretrained(opts["model_path"])
    except Exception as e:
        raise ValueError(
            f"pcl.value_model_kwargs.model_path={opts['model_path']!r} is not a loadable model ({e})"
        ) from None
    try:
        tok = AutoTokenizer.from_pretrained(opts["tokenizer_path"])
    except Exception as e:
        raise ValueError(
            f"pcl.value_model_kwargs.tokenizer_path={opts['tokenizer_path']!r} is not a loadable tokenizer ({e})"
        ) from None
    try:
        value_worker_config(config, opts["model_path"], opts["tokenizer_path"])
    except Exception as e:
        raise ValueError(f"the llm value model is configured by verl's critic.* keys, which are invalid: {e}") from None
    policy_tok = AutoTokenizer.from_pretrained(os.path.expanduser(str(policy_tok_path)))
    if not _same_vocab(tok, policy_tok):
        raise ValueError(
            f"pcl.value_model_kwargs.tokenizer_path={opts['tokenizer_path']!r}: the value model's tokenizer differs "
            f"from the policy's ({policy_tok_path}); PCL's llm value model must share the policy's tokenizer "
            "(use the policy's base model or a smaller model of the same family)"
        )
    return opts


class WorkerValueModel:
    """The :class:`~verl_selfplay.pcl.value_model.ValueModel` interface over a verl ``TrainingWorker`` group.

    Args:
        worker_group: a ``RayWorkerGroup`` of verl's ``TrainingWorker`` with ``model_type="value_model"``, reset
            (engine initialised); its loss function is set here.
        tokenizer: the value model's (= the policy's) tokenizer; the only model piece in the driver.
        bounded, chat_template, max_prompt_length, steps_per_update: see the module docstring.
        micro_batch_size_per_gpu: the fixed micro-batch of ``infer``/``train`` (``None`` with dynamic batch sizes);
            batches are padded with zero-weight rows to a multiple of it times the data-parallel size.
    """

    def __init__(
        self,
        worker_group: Any,
        tokenizer: Any,
        *,
        bounded: bool = True,
        chat_template: bool = True,
        max_prompt_length: int = 1024,
        steps_per_update: int = 1,
        micro_batch_size_per_gpu: int | None = None,
    ) -> None:
        self.wg = worker_group
        self.tokenizer = tokenizer
        self.bounded = bool(bounded)
        self.chat_template = bool(chat_template) and bool(getattr(tokenizer, "chat_template", None))
        self.max_prompt_length = int(max_prompt_length)
        self.steps_per_update = int(steps_per_update)
        self.dp_size = max(self.wg._query_dispatch_info("train")) + 1
        self.pad_multiple = self.dp_size * int(micro_batch_size_per_gpu or 1)
        self.updates = 0
        self.wg.set_loss_fn(functools.partial(prompt_value_loss, bounded=self.bounded))

    # ------------------------------------------------------------------ batches
    def _token_ids(self, prompts: Sequence[str]) -> list[list[int]]:
        if self.chat_template:
            texts = [
                self.tokenizer.apply_chat_template(
                    [{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True
                )
                for p in prompts
            ]
        else:
            texts = list(prompts)
        enc = self.tokenizer(texts, add_special_tokens=not self.chat_template)["input_ids"]
        out = [list(ids)[-self.max_prompt_length :] for ids in enc]  # keep the end: where the answer starts
        return [ids or [self.tokenizer.pad_token_id or 0] for ids in out]

    def _batch(self, prompts: Sequence[str], targets: np.ndarray | None = None) -> tuple[Any, int]:
        """verl's no-padding layout for ``prompts`` (padded to the worker multiple); returns it and the real size."""
        from verl.utils import tensordict_utils as tu

        ids = self._token_ids(prompts)
        n = len(ids)
        padded = math.ceil(n / self.pad_multiple) * self.pad_multiple
        ids = ids + [ids[0]] * (padded - n)
        weight = torch.zeros(padded)
        weight[:n] = 1.0
        target = torch.zeros(padded)
        if targets is not None:
            target[:n] = torch.as_tensor(targets, dtype=torch.float32)

        def jagged(rows: list[torch.Tensor]) -> torch.Tensor:
            return torch.nested.as_nested_tensor(rows, layout=torch.jagged)

        tensors = {
            "input_ids": jagged([torch.tensor(x, dtype=torch.long) for x in ids]),
            "position_ids": jagged([torch.arange(len(x), dtype=torch.long) for x in ids]),
            "loss_mask": jagged([torch.ones(len(x), dtype=torch.long) for x in ids]),
            "pcl_target": target,
            "pcl_weight": weight,
        }
        meta = {
            "temperature": 1.0,
            "pad_token_id": self.tokenizer.pad_token_id or 0,
            "pcl_num_prompts": n,
            "global_token_num": [len(x) for x in ids],
        }
        return tu.get_tensordict(tensor_dict=tensors, non_tensor_dict=meta), n

    # ------------------------------------------------------------------ ValueModel
    def predict(self, prompts: Sequence[str]) -> np.ndarray:
        """Predicted expected reward of each prompt: one batched forward on the workers."""
        if len(prompts) == 0:
            return np.zeros(0, dtype=np.float64)
        from verl.utils import tensordict_utils as tu

        batch, n = self._batch(prompts)
        tu.assign_non_tensor(batch, compute_loss=False)
        output = self.wg.infer_batch(batch).get()
        v = last_token_values(output["values"]).double()[:n]
        return (torch.sigmoid(v) if self.bounded else v).cpu().numpy()

    def update(self, prompts: Sequence[str], mean_rewards: Sequence[float]) -> float:
        """``steps_per_update`` optimiser steps of MSE on the workers (non-finite targets skipped); returns the MSE
        on this batch before the update."""
        from verl.utils import tensordict_utils as tu

        from verl_selfplay.pcl.value_model import _finite_targets

        prompts, targets = _finite_targets(prompts, mean_rewards)
        if not prompts:
            return float("nan")
        before = float(np.mean((self.predict(prompts) - targets) ** 2))
        batch, _ = self._batch(prompts, targets)
        tu.assign_non_tensor(
            batch,
            mini_batch_size=len(batch),
            epochs=self.steps_per_update,
            seed=self.updates,
            dataloader_kwargs={"shuffle": False},
        )
        self.wg.train_mini_batch(batch).get()
        self.updates += 1
        return before

    def state_dict(self) -> dict[str, Any]:
        """The driver's part of the state (the weights and optimiser are in :meth:`save_checkpoint`'s folder)."""
        return {"kind": "llm", "updates": self.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        if state.get("kind") != "llm":
            raise ValueError(f"not an llm value model state (kind={state.get('kind')!r})")
        self.updates = int(state["updates"])

    def save_checkpoint(self, folder: str, global_step: int = 0) -> None:
        """Weights, optimiser and scheduler state, saved by the workers into ``folder`` (verl's FSDP format)."""
        self.wg.save_checkpoint(folder, None, global_step, None)

    def load_checkpoint(self, folder: str) -> None:
        """Restore :meth:`save_checkpoint`."""
        self.wg.load_checkpoint(folder, None, False)


def create_worker_value_model(config: DictConfig, resource_pool: Any, options: dict[str, Any]) -> WorkerValueModel:
    """A ``TrainingWorker`` group (value head) on ``resource_pool`` and its :class:`WorkerValueModel`.

    ``options`` come from :func:`check_value_model`.
    """
    import ray
    from transformers import AutoTokenizer
    from verl.single_controller.ray import RayClassWithInitArgs, RayWorkerGroup
    from verl.workers.engine_workers import TrainingWorker

    worker_cfg = value_worker_config(config, options["model_path"], options["tokenizer_path"])
    wg = RayWorkerGroup(
        resource_pool=resource_pool,
        ray_cls_with_init=RayClassWithInitArgs(cls=ray.remote(TrainingWorker), config=worker_cfg),
        device_name=config.trainer.device,
        name_prefix="pcl_value",
    )
    wg.reset()
    dynamic = bool(OmegaConf.select(config, "critic.use_dynamic_bsz", default=False))
    micro = None if dynamic else worker_cfg.engine_config.micro_batch_size_per_gpu
    infer_micro = None if dynamic else worker_cfg.engine_config.infer_micro_batch_size_per_gpu
    tokenizer = AutoTokenizer.from_pretrained(options["tokenizer_path"])
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    multiple = math.lcm(int(micro or 1), int(infer_micro or 1))
    return WorkerValueModel(
        wg,
        tokenizer,
        bounded=options["bounded"],
        chat_template=options["chat_template"],
        max_prompt_length=options["max_prompt_length"],
        steps_per_update=options["steps_per_update"],
        micro_batch_size_per_gpu=multiple,
    )
