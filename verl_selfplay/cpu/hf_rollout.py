"""The ``hf`` rollout: verl's server-mode rollout protocol served by transformers ``generate`` on CPU.

verl 0.9.1 serves rollouts only from vLLM, SGLang and TRT-LLM replicas
(``verl/workers/rollout/replica.py:388-390``, ``verl/workers/rollout/base.py:89-93``); its
``hf_rollout.py`` is not wired into the server path. Three pieces make ``rollout.name=hf`` work:

- :class:`HFServer`: a Ray actor that duck-types ``vLLMHttpServer``
  (``verl/workers/rollout/vllm_rollout/vllm_async_server.py``): ``generate`` returns a
  :class:`~verl.workers.rollout.replica.TokenOutput` with the sampled token ids and their log-probs,
  and the control calls (``wake_up``, ``sleep``, ``abort_all_requests``...) exist. Requests that
  arrive together are generated as one padded batch (:class:`BatchGenerator`), so ``n`` samples of
  a group cost one ``generate`` call, not ``n``.
- :class:`HFReplica`: the :class:`~verl.workers.rollout.replica.RolloutReplica` that launches one
  server per replica, registered as ``hf`` in ``RolloutReplicaRegistry``.
- :class:`HFServerAdapter`: the :class:`~verl.workers.rollout.base.BaseRollout` that lives in the
  hybrid actor worker; verl's naive checkpoint engine hands it the actor's full weights after each
  step, and rank 0 ships them to the server in buckets.

Log-probs are those of the *processed* distribution (temperature, top-k, top-p applied), as vLLM's
default ``logprobs_mode=processed_logprobs``; they are what verl's actor recomputes, and verl logs
their agreement as ``training/rollout_probs_diff_*``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from dataclasses import dataclass, field
from typing import Any

import ray
import torch
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
from verl.workers.rollout.base import BaseRollout
from verl.workers.rollout.replica import RolloutReplica, TokenOutput

from verl_selfplay.cpu.report import LOG_PREFIX

logger = logging.getLogger(__name__)

NAME = "hf"

# Concurrent requests merged into one `generate` call; larger batches waste compute on padding.
DEFAULT_MAX_BATCH = 64
# How long the server waits for more requests before it starts a batch (seconds).
BATCH_WINDOW_S = 0.005


def server_name(replica_rank: int, suffix: str = "") -> str:
    """The Ray actor name of a replica's HF server (the adapter looks it up by this name)."""
    return f"hf_server_{replica_rank}{suffix}"


@dataclass
class Request:
    """One generation request: prompt token ids and verl's sampling parameters."""

    prompt_ids: list[int]
    max_tokens: int
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = -1
    repetition_penalty: float = 1.0
    ignore_eos: bool = False
    future: Any = field(default=None, repr=False, compare=False)

    def sampling_key(self) -> tuple:
        """Requests with equal keys can share one ``generate`` call."""
        return (self.temperature, self.top_p, self.top_k, self.repetition_penalty, self.ignore_eos)


@dataclass
class Result:
    """Generated token ids (EOS included when emitted), their log-probs and verl's stop reason."""

    token_ids: list[int]
    log_probs: list[float]
    stop_reason: str = "completed"


class BatchGenerator:
    """Batched sampling with log-probs from a causal LM (plain torch, no Ray).

    Prompts are left-padded into one batch; each result is cut at its request's ``max_tokens`` and at
    the first EOS (included, as vLLM returns it).
    """

    def __init__(self, model: torch.nn.Module, pad_token_id: int, eos_token_ids: list[int]) -> None:
        self.model = model.eval()
        self.pad_token_id = pad_token_id
        self.eos_token_ids = list(eos_token_ids)

    @torch.no_grad()
    def generate(self, requests: list[Request], seed: int | None = None) -> list[Result]:
        """Generate all ``requests`` (which must share :meth:`Request.sampling_key`) as one left-padded batch."""
        if not requests:
            return []
        first = requests[0]
        if any(r.sampling_key() != first.sampling_key() for r in requests):
            raise ValueError("BatchGenerator.generate: requests in one batch must share sampling parameters")
        device = next(self.model.parameters()).device
        width = max(len(r.prompt_ids) for r in requests)
        input_ids = torch.full((len(requests), width), self.pad_token_id, dtype=torch.long)
        attention_mask = torch.zeros((len(requests), width), dtype=torch.long)
        for i, r in enumerate(requests):
            input_ids[i, width - len(r.prompt_ids) :] = torch.tensor(r.prompt_ids, dtype=torch.long)
            attention_mask[i, width - len(r.prompt_ids) :] = 1
        greedy = first.temperature <= 0
        kwargs: dict[str, Any] = dict(
            max_new_tokens=max(r.max_tokens for r in requests),
            do_sample=not greedy,
            output_scores=True,
            return_dict_in_generate=True,
            pad_token_id=self.pad_token_id,
            eos_token_id=None if first.ignore_eos else self.eos_token_ids,
            repetition_penalty=first.repetition_penalty,
        )
        if first.ignore_eos:
            kwargs["min_new_tokens"] = kwargs["max_new_tokens"]
        if not greedy:
            kwargs.update(
                temperature=first.temperature,
                top_p=first.top_p,
                top_k=first.top_k if first.top_k and first.top_k > 0 else 0,
            )
        else:  # greedy: do not let the model's generation_config sneak sampling warpers in
            kwargs.update(temperature=None, top_p=None, top_k=None)
        if seed is not None:
            torch.manual_seed(seed)
        out = self.model.generate(
            input_ids=input_ids.to(device), attention_mask=attention_mask.to(device), use_cache=True, **kwargs
        )
        # log-softmax of the processed scores (temperature / top-k / top-p applied), per chosen token
        scores = self.model.compute_transition_scores(out.sequences, out.scores, normalize_logits=True)
        new_tokens = out.sequences[:, width:].cpu()
        scores = scores.float().cpu()
        results = []
        eos = set(self.eos_token_ids)
        for i, r in enumerate(requests):
            ids = new_tokens[i].tolist()
            cut = min(r.max_tokens, len(ids))
            if not r.ignore_eos:
                for j, t in enumerate(ids[:cut]):
                    if t in eos:
                        cut = j + 1
                        break
            results.append(Result(token_ids=ids[:cut], log_probs=scores[i, :cut].tolist()))
        return results


def _max_tokens(config: Any, prompt_len: int, sampling_params: dict[str, Any]) -> int:
    """verl's rule for the token budget of one request (as ``vLLMHttpServer.generate``)."""
    max_model_len = config.max_model_len or (config.prompt_length + config.response_length)
    room = max_model_len - prompt_len
    if room < 1:
        raise ValueError(
            f"Prompt length ({prompt_len}) leaves no room to generate within max_model_len ({max_model_len})"
        )
    if "max_tokens" in sampling_params:
        wanted = sampling_params.pop("max_tokens")
    elif "max_new_tokens" in sampling_params:
        wanted = sampling_params.pop("max_new_tokens")
    else:
        wanted = min(config.response_length, config.prompt_length + config.response_length - prompt_len)
    return max(1, min(int(wanted), room))


class HFServer:
    """Ray actor serving token-in/token-out generation from a transformers model (see module docstring).

    Concurrent :meth:`generate` calls queue up; a single batching task merges what is queued
    (up to ``max_batch``) into one :class:`BatchGenerator` call per sampling setting and runs it off
    the event loop, so new requests keep arriving while a batch runs.
    """

    def __init__(self, config: Any, model_config: Any, replica_rank: int = 0, max_batch: int = DEFAULT_MAX_BATCH):
        from transformers import AutoModelForCausalLM
        from verl.utils.config import omega_conf_to_dataclass
        from verl.workers.config import HFModelConfig

        self.config = omega_conf_to_dataclass(config)
        self.model_config = omega_conf_to_dataclass(model_config, dataclass_type=HFModelConfig)
        self.replica_rank = replica_rank
        self.max_batch = max(1, min(max_batch, self.config.max_num_seqs))
        dtype = _torch_dtype(getattr(self.config, "dtype", "float32"))
        model = AutoModelForCausalLM.from_pretrained(
            self.model_config.local_path,
            dtype=dtype,
            attn_implementation="sdpa",
            trust_remote_code=self.model_config.trust_remote_code,
        )
        gen_cfg = model.generation_config
        tokenizer = self.model_config.tokenizer
        eos = gen_cfg.eos_token_id if gen_cfg.eos_token_id is not None else tokenizer.eos_token_id
        eos_ids = [eos] if isinstance(eos, int) else list(eos or [])
        pad = gen_cfg.pad_token_id if gen_cfg.pad_token_id is not None else tokenizer.pad_token_id
        self.generator = BatchGenerator(model, pad_token_id=eos_ids[0] if pad is None else pad, eos_token_ids=eos_ids)
        self.global_steps = 0
        self._pending: list[Request] = []
        self._worker: asyncio.Task | None = None
        self._batches = 0
        self._staged: dict[str, torch.Tensor] = {}
        # one batch or one weight load at a time: weights never change under a running batch, and each
        # response is tagged with the weight version that generated it
        self._model_lock = asyncio.Lock()
        self.stats = {"batches": 0, "requests": 0, "tokens": 0, "generate_s": 0.0}
        self._window = dict(self.stats)

    # ---- generation -------------------------------------------------------------------------
    async def generate(
        self,
        prompt_ids: list[int],
        sampling_params: dict[str, Any],
        request_id: str,
        image_data: list[Any] | None = None,
        video_data: list[Any] | None = None,
        audio_data: list[Any] | None = None,
        mm_processor_kwargs: dict[str, Any] | None = None,
        **kwargs: Any,
    ):
        """Generate one response; returns verl's ``TokenOutput`` (``extra_fields["global_steps"]`` set)."""
        if image_data or video_data or audio_data:
            raise NotImplementedError("the hf rollout serves text-only models; use vllm or sglang for multimodal")
        params = dict(sampling_params)
        prompt_ids = [int(t) for t in prompt_ids]
        request = Request(
            prompt_ids=prompt_ids,
            max_tokens=_max_tokens(self.config, len(prompt_ids), params),
            temperature=float(params.get("temperature", 1.0)),
            top_p=float(params.get("top_p", 1.0)),
            top_k=int(params.get("top_k", -1) or -1),
            repetition_penalty=float(params.get("repetition_penalty", 1.0) or 1.0),
            ignore_eos=bool(params.get("ignore_eos", getattr(self.config, "ignore_eos", False))),
            future=asyncio.get_running_loop().create_future(),
        )
        self._pending.append(request)
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._drain())
        result, version = await request.future
        return TokenOutput(
            token_ids=result.token_ids,
            log_probs=result.log_probs if params.get("logprobs") else None,
            stop_reason=result.stop_reason,
            extra_fields={"global_steps": version},
        )

    async def _drain(self) -> None:
        while self._pending:
            await asyncio.sleep(BATCH_WINDOW_S)  # let the rest of a burst arrive
            key = self._pending[0].sampling_key()
            batch = [r for r in self._pending if r.sampling_key() == key][: self.max_batch]
            taken = {id(r) for r in batch}
            self._pending = [r for r in self._pending if id(r) not in taken]
            self._batches += 1
            seed = self.config.seed * 1_000_003 + self.replica_rank * 10_007 + self._batches
            start = time.perf_counter()
            try:
                async with self._model_lock:
                    version = int(self.global_steps)
                    results = await asyncio.to_thread(self.generator.generate, batch, seed)
            except Exception as e:  # fail the requests, keep serving
                logger.exception("hf rollout: batch of %d failed", len(batch))
                for r in batch:
                    if not r.future.done():
                        r.future.set_exception(e)
                continue
            for stats in (self.stats, self._window):
                stats["batches"] += 1
                stats["requests"] += len(batch)
                stats["tokens"] += sum(len(res.token_ids) for res in results)
                stats["generate_s"] += time.perf_counter() - start
            for r, res in zip(batch, results, strict=True):
                if not r.future.done():
                    r.future.set_result((res, version))

    # ---- weights ------------------------------------------------------------------------------
    async def stage_weights(self, named_tensors: list[tuple[str, torch.Tensor]]) -> None:
        """Receive one bucket of the actor's weights (applied by :meth:`commit_weights`)."""
        for name, tensor in named_tensors:
            self._staged[name] = tensor

    async def commit_weights(self, global_steps: int | None = None) -> dict[str, Any]:
        """Load the staged weights into the model (after any running batch) and record the weight version."""
        async with self._model_lock:
            return self._commit(global_steps)

    def _commit(self, global_steps: int | None) -> dict[str, Any]:
        staged, self._staged = self._staged, {}
        model = self.generator.model
        result = model.load_state_dict(staged, strict=False)
        tied = set(getattr(model, "_tied_weights_keys", None) or [])
        missing = [k for k in result.missing_keys if k not in tied and not k.endswith("lm_head.weight")]
        if result.unexpected_keys or missing:
            raise RuntimeError(
                f"hf rollout weight sync: unexpected keys {result.unexpected_keys[:5]}, missing keys {missing[:5]}"
            )
        window, self._window = self._window, {k: type(v)() for k, v in self.stats.items()}
        if window["requests"]:
            # one line per weight version (verl_selfplay.cpu.report parses it)
            print(
                f"{LOG_PREFIX} version={self.global_steps} batches={window['batches']} requests={window['requests']} "
                f"tokens={window['tokens']} generate_s={window['generate_s']:.4f}",
                flush=True,
            )
        if global_steps is not None:
            self.global_steps = int(global_steps)
        return {"tensors": len(staged)}

    # ---- control calls verl makes on every rollout server -------------------------------------
    async def set_global_steps(self, global_steps: int) -> None:
        self.global_steps = int(global_steps)

    async def wake_up(self, tags: list[str] | None = None) -> None:
        """Weights and cache stay in host memory: nothing to restore."""

    async def sleep(self) -> None:
        """Nothing to release on CPU."""

    async def clear_kv_cache(self) -> None:
        """The KV cache lives only for one ``generate`` call."""

    async def release_kv_cache(self) -> None:
        """The KV cache lives only for one ``generate`` call."""

    async def resume_kv_cache(self) -> None:
        """The KV cache lives only for one ``generate`` call."""

    async def abort_all_requests(self, reject_request: bool = False) -> dict[str, Any]:
        """A batch runs to completion; nothing is aborted."""
        return {"aborted_count": 0, "request_ids": []}

    async def resume_generation(self) -> None:
        """Generation is never paused."""

    async def start_profile(self, **kwargs: Any) -> None:
        """No profiler."""

    async def stop_profile(self) -> None:
        """No profiler."""

    async def get_stats(self) -> dict[str, Any]:
        """Batches, requests and seconds spent in ``generate`` so far."""
        return dict(self.stats, global_steps=self.global_steps)


def _torch_dtype(name: Any) -> torch.dtype:
    if isinstance(name, torch.dtype):
        return name
    table = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16}
    table.update({"float16": torch.float16, "fp16": torch.float16, "half": torch.float16})
    try:
        return table[str(name).lower()]
    except KeyError:
        raise ValueError(f"actor_rollout_ref.rollout.dtype={name!r} is not one of {sorted(table)}") from None


class HFReplica(RolloutReplica):
    """One :class:`HFServer` per replica, colocated with the hybrid actor workers."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.server_class = ray.remote(HFServer)

    async def launch_servers(self) -> None:
        """Start the replica's server actor on the node of its first worker and wait until it has loaded."""
        role = "_reward" if self.is_reward_model else "_teacher" if self.is_teacher_model else ""
        name = server_name(self.replica_rank, role + self.name_suffix)
        node_id = ray.get_runtime_context().get_node_id()
        if self.workers:
            node_id = await self.workers[0].__ray_call__.remote(lambda self: ray.get_runtime_context().get_node_id())
        server = self.server_class.options(
            name=name,
            num_cpus=0,  # shares the trainer's cores: generation and training alternate in a sync step
            max_concurrency=self.max_concurrency,
            scheduling_strategy=NodeAffinitySchedulingStrategy(node_id=node_id, soft=False),
        ).remote(config=self.config, model_config=self.model_config, replica_rank=self.replica_rank)
        await server.get_stats.remote()  # surfaces model-loading errors here, at start-up
        self.servers = [server]
        self._server_handle = server
        self._server_address = f"hf://{name}"

    def rollout_worker_use_gpu(self) -> bool:
        return False


class HFServerAdapter(BaseRollout):
    """Hybrid-worker side of the ``hf`` rollout: pushes the actor's weights to the replica's server."""

    def __init__(self, config: Any, model_config: Any, device_mesh: Any, replica_rank: int = -1) -> None:
        super().__init__(config, model_config, device_mesh)
        rank = int(os.environ.get("RANK", "0"))
        world = (
            self.config.tensor_model_parallel_size
            * self.config.data_parallel_size
            * self.config.pipeline_model_parallel_size
        )
        self.replica_rank = rank // world if replica_rank == -1 else replica_rank
        self.rollout_rank = rank % world
        self.is_leader_rank = self.rollout_rank == 0
        self.server_handle = None
        self.bucket_bytes = int(self.config.checkpoint_engine.update_weights_bucket_megabytes) << 20

    def _server(self):
        if self.server_handle is None:
            self.server_handle = ray.get_actor(server_name(self.replica_rank))
        return self.server_handle

    async def resume(self, tags: list[str]) -> None:
        """Host memory is never released, so there is nothing to resume."""

    async def release(self) -> None:
        """Host memory is never released."""

    @torch.no_grad()
    async def update_weights(self, weights, wire_format: str = "named_tensors", **kwargs: Any) -> None:
        """Ship ``(name, tensor)`` pairs to the server in buckets of ``update_weights_bucket_megabytes``."""
        if wire_format != "named_tensors":
            raise NotImplementedError(f"hf rollout supports wire_format='named_tensors' only, got {wire_format!r}")
        if kwargs.get("peft_config") is not None:
            raise NotImplementedError("hf rollout: LoRA adapter sync is not supported; set model.lora.merge=True")
        bucket: list[tuple[str, torch.Tensor]] = []
        size = 0
        pending = []
        for name, tensor in weights:
            if hasattr(tensor, "full_tensor"):  # a DTensor shard: every rank joins the gather
                tensor = tensor.full_tensor()
            if not self.is_leader_rank:
                continue
            t = tensor.detach().to("cpu", copy=True).contiguous()
            bucket.append((name, t))
            size += t.numel() * t.element_size()
            if size >= self.bucket_bytes:
                pending.append(self._server().stage_weights.remote(bucket))
                bucket, size = [], 0
        if not self.is_leader_rank:
            return
        if bucket:
            pending.append(self._server().stage_weights.remote(bucket))
        await asyncio.gather(*pending)
        await self._server().commit_weights.remote(kwargs.get("global_steps"))
