"""Every place where the CPU backend works around verl 0.9.1, with the verl file:line it works around.

The functions in this module patch or extend verl's registries; each runs when verl imports the module
it touches (see :data:`verl_selfplay.registry.REGISTRATIONS`) and is idempotent. ``docs/upstream.md``
gives the patch verl itself should take for each item.

Code, here:

- :func:`register_fsdp_engine` -- the FSDP engines are registered for ``cuda``/``npu`` only
  (``workers/engine/fsdp/transformer_impl.py:1143,1594``). Always: adds the key ``cpu``.
- :func:`fix_process_group` -- ``cpu:gloo,{device}:{backend}`` becomes ``cpu:gloo,cpu:gloo`` on CPU,
  which torch rejects (``utils/distributed.py:89``; ``:63`` too, used by the SFT trainer only). Only
  when the CPU backend is requested; identity on any other device.
- :func:`register_rollout` -- no server-mode HF replica (``workers/rollout/replica.py:388-390``); adds
  ``hf``. When the CPU backend is requested, the GPU engines' loaders (``replica.py:331-385``) are
  replaced by a clear error instead of an import failure deep inside a Ray worker.
- :func:`register_rollout_adapter` -- rollout classes live in a private dict with no register call
  (``workers/rollout/base.py:89-93``); adds ``("hf", "async")``.
- :func:`fix_valuehead_attention` -- value-head models are always loaded with flash-attention 2
  (``utils/model.py:641-651``); loads them with the configured attention. Only when the CPU backend is requested.

Elsewhere, each next to the code it shapes:

- no CPU platform; detection falls back to ``nvidia`` (``plugin/platform/platform_manager.py:113-117``):
  :class:`verl_selfplay.cpu.platform.CPUPlatform`, whose device module adds the ``torch.cuda`` calls
  verl makes unconditionally (``empty_cache``, ``mem_get_info``...) to ``torch.cpu``;
- resource pools always ask Ray for accelerators (``single_controller/ray/base.py:210,230``): the
  platform names Ray's ``GPU`` resource and the preset starts Ray with logical GPUs;
- a rollout server must return an ``int`` ``global_steps`` (``trainer/ppo/v1/trainer_base.py:1897``):
  :meth:`verl_selfplay.cpu.hf_rollout.HFServer.generate`;
- in ``verl_selfplay/config/cpu.yaml``: ``rollout.name`` has no default (``config/rollout/rollout.yaml:5``);
  TransferQueue's 8 storage actors do not fit a small machine; flash-attention 2 is the default
  attention (``workers/config/model.py:185``); FSDP computes in ``mixed_precision.param_dtype``
  (default bf16, ``workers/engine/fsdp/transformer_impl.py:391-399``), not ``fsdp_config.dtype``.

Nothing listed as "always" can change a GPU run: it only adds a name (device ``cpu``, rollout ``hf``)
that no GPU configuration selects.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from types import ModuleType
from typing import Any

from verl_selfplay.cpu.env import is_requested
from verl_selfplay.cpu.preflight import GPU_ROLLOUTS, check_rollout

ROLLOUT_NAME = "hf"
ADAPTER_FQN = "verl_selfplay.cpu.hf_rollout.HFServerAdapter"


def register_fsdp_engine(transformer_impl: ModuleType) -> None:
    """Register verl's FSDP language-model and value-model engines for device ``cpu`` too.

    Works around ``verl/workers/engine/fsdp/transformer_impl.py:1143`` and ``:1594``
    (``device=["cuda", "npu"]``); FSDP2 over gloo runs forward, backward, the optimiser step and
    full state dicts on CPU.
    """
    registry = transformer_impl.EngineRegistry
    for model_type, cls in (
        ("language_model", transformer_impl.FSDPEngineWithLMHead),
        ("value_model", transformer_impl.FSDPEngineWithValueHead),
    ):
        backends = registry._engines.get(model_type, {})
        todo = [b for b in ("fsdp", "fsdp2") if "cpu" not in backends.get(b, {})]
        if todo:
            registry.register(model_type=model_type, backend=todo, device="cpu")(cls)


def _dedup_backend(backend: str | None, device: str, comm: str) -> str | None:
    """verl's default backend string, minus the duplicate ``cpu`` entry torch rejects.

    >>> _dedup_backend(None, "cpu", "gloo")
    'cpu:gloo'
    >>> _dedup_backend(None, "cuda", "nccl") is None
    True
    >>> _dedup_backend("cpu:gloo", "cpu", "gloo")
    'cpu:gloo'
    """
    if backend is None and device == "cpu":
        return f"cpu:{comm}"
    return backend


def fix_process_group(distributed: ModuleType) -> None:
    """Give ``initialize_global_process_group_ray`` a valid backend on CPU.

    ``verl/utils/distributed.py:89`` builds ``f"cpu:gloo,{get_device_name()}:{get_nccl_backend()}"``,
    which on the CPU platform is ``"cpu:gloo,cpu:gloo"``: torch raises "Duplicate device type cpu".
    The wrapper passes ``backend="cpu:gloo"`` when the device is ``cpu`` and nothing else was
    asked; on any other device it calls verl's function unchanged. Installed only when the CPU
    backend is requested. (``initialize_global_process_group`` at ``:63``, used only by the SFT
    trainer, has the same bug and is left alone.)
    """
    if not is_requested():
        return
    original = distributed.initialize_global_process_group_ray
    if getattr(original, "__verl_selfplay_cpu__", False):
        return

    @functools.wraps(original)
    def initialize_global_process_group_ray(timeout_second: Any = None, backend: str | None = None) -> Any:
        from verl.utils.device import get_device_name, get_nccl_backend

        backend = _dedup_backend(backend, get_device_name(), get_nccl_backend())
        return original(timeout_second=timeout_second, backend=backend)

    initialize_global_process_group_ray.__verl_selfplay_cpu__ = True  # type: ignore[attr-defined]
    distributed.initialize_global_process_group_ray = initialize_global_process_group_ray


def _load_hf_replica() -> type:
    from verl_selfplay.cpu.hf_rollout import HFReplica

    return HFReplica


def _gpu_only(name: str) -> Callable[[], type]:
    def refuse() -> type:
        check_rollout(name, has_gpu=False)  # raises, naming actor_rollout_ref.rollout.name=hf
        raise AssertionError("unreachable")

    refuse.__verl_selfplay_cpu__ = True  # type: ignore[attr-defined]
    return refuse


def register_rollout(replica: ModuleType) -> None:
    """Register the ``hf`` rollout replica with verl's public ``RolloutReplicaRegistry``.

    On the CPU backend it also replaces the loaders of the GPU-only engines (vLLM, SGLang, TRT-LLM)
    with one that raises a message pointing to ``rollout.name=hf``; verl's own loaders
    (``workers/rollout/replica.py:331-385``) would fail with a deep import error (no ``vllm``) or,
    for SGLang, install mock ``vllm`` modules first.
    """
    registry = replica.RolloutReplicaRegistry
    if ROLLOUT_NAME not in registry._registry:
        registry.register(ROLLOUT_NAME, _load_hf_replica)
    if is_requested():
        for name in GPU_ROLLOUTS:
            if not getattr(registry._registry.get(name), "__verl_selfplay_cpu__", False):
                registry.register(name, _gpu_only(name))


def register_rollout_adapter(base: ModuleType) -> None:
    """Insert the ``hf`` adapter into verl's rollout-class table.

    ``verl/workers/rollout/base.py:89-93`` keeps ``_ROLLOUT_REGISTRY`` as a private module dict of
    ``(name, mode) -> "module.Class"`` with no register function; ``get_rollout_class`` (``:96``)
    imports the class from that string.
    """
    base._ROLLOUT_REGISTRY.setdefault((ROLLOUT_NAME, "async"), ADAPTER_FQN)


def fix_valuehead_attention(model: ModuleType) -> None:
    """Load verl's value-head models with the configured attention on CPU.

    ``verl/utils/model.py:641-651`` (``load_valuehead_model``) passes ``attn_implementation="flash_attention_2"``
    to ``AutoModelForTokenClassification.from_pretrained`` whatever the model config says; without flash-attention
    (any CPU) it then falls back to ``trl``'s value head, or raises when ``trl`` is absent. The wrapper loads the
    token-classification model with the config's own attention (``override_config.attn_implementation``, ``sdpa``
    in the CPU preset). Installed only when the CPU backend is requested.
    """
    if not is_requested():
        return
    original = model.load_valuehead_model
    if getattr(original, "__verl_selfplay_cpu__", False):
        return

    @functools.wraps(original)
    def load_valuehead_model(local_path: str, torch_dtype: Any, model_config: Any, trust_remote_code: bool) -> Any:
        from transformers import AutoModelForTokenClassification

        return AutoModelForTokenClassification.from_pretrained(
            pretrained_model_name_or_path=local_path,
            torch_dtype=torch_dtype,
            config=model_config,
            attn_implementation=getattr(model_config, "_attn_implementation", None) or "sdpa",
            trust_remote_code=trust_remote_code,
        )

    load_valuehead_model.__verl_selfplay_cpu__ = True  # type: ignore[attr-defined]
    model.load_valuehead_model = load_valuehead_model
