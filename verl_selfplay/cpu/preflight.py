"""Start-up checks for CPU runs, executed in the driver before Ray starts.

The CPU preset's Hydra callback (:class:`verl_selfplay.cpu.preset.CPUPreflight`) runs them right before
verl's ``main_ppo`` task function, so a bad configuration fails in a second with a message naming the key to
change, not minutes later inside a Ray worker. The checks are plain functions of the config
(:func:`check_config`), testable without Hydra; the workarounds import them, never the other way round.

Without the preset (``VERL_PLATFORM=cpu`` plus hand-written overrides) the same rollout check still
fires, later, when verl asks the replica registry for a GPU engine (see
:func:`verl_selfplay.cpu.workarounds.register_rollout`).
"""

from __future__ import annotations

import json
import logging
import os
import struct
from pathlib import Path
from typing import Any

from verl_selfplay.cpu.env import ENV_VAR, VALUE

logger = logging.getLogger(__name__)

GPU_ROLLOUTS = ("vllm", "sglang", "trtllm")
PRESET_HINT = "--config-path=pkg://verl_selfplay.config --config-name=cpu"

# Host bytes per parameter for CPU training in fp32: weights 4 + gradients 4 + AdamW moments 8
# (actor), a rollout copy 4, one full-weight sync buffer 4; plus 4 for a reference model when used.
BYTES_ACTOR = 16
BYTES_ROLLOUT = 4
BYTES_SYNC = 4
BYTES_REF = 4


class PreflightError(ValueError):
    """A CPU run that cannot work; the message names the config key or the resource to change."""


def _get(cfg: Any, dotted: str, default: Any = None) -> Any:
    node = cfg
    for part in dotted.split("."):
        try:
            node = node[part] if isinstance(node, dict) else getattr(node, part)
        except (AttributeError, KeyError, TypeError):
            return default
        if node is None:
            return default
    return node


def gpu_available() -> bool:
    """Whether torch sees a CUDA (or ROCm) device in this process."""
    import torch

    return bool(torch.cuda.is_available())


def check_rollout(name: Any, has_gpu: bool) -> None:
    """Refuse a GPU-only rollout engine without a GPU, and a missing rollout name.

    >>> check_rollout("hf", has_gpu=False)
    >>> check_rollout("vllm", has_gpu=False)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    verl_selfplay.cpu.preflight.PreflightError: actor_rollout_ref.rollout.name=vllm needs a GPU, ...
    """
    if name in (None, "", "???"):
        raise PreflightError(
            "actor_rollout_ref.rollout.name is not set (verl 0.9.1 has no default); "
            "on a machine without a GPU set actor_rollout_ref.rollout.name=hf"
        )
    if name in GPU_ROLLOUTS and not has_gpu:
        raise PreflightError(
            f"actor_rollout_ref.rollout.name={name} needs a GPU, and this machine has none (or the CPU backend "
            f"is selected with {ENV_VAR}={VALUE}). Use the CPU rollout: actor_rollout_ref.rollout.name=hf "
            f"(the CPU preset sets it: {PRESET_HINT})"
        )


def _safetensors_params(files: list[Path]) -> int:
    """Parameter count from safetensors headers (reads a few KB per file, loads no weights)."""
    total = 0
    for f in files:
        with open(f, "rb") as fh:
            (n,) = struct.unpack("<Q", fh.read(8))
            header = json.loads(fh.read(n))
        for key, meta in header.items():
            if key == "__metadata__":
                continue
            count = 1
            for dim in meta["shape"]:
                count *= int(dim)
            total += count
    return total


def count_parameters(model_path: str | os.PathLike) -> int | None:
    """Parameters of the model at ``model_path`` without loading its weights; ``None`` if unknown.

    Reads safetensors headers when present, else builds the model from ``config.json`` on the
    ``meta`` device.
    """
    path = Path(os.path.expanduser(str(model_path)))
    if not path.is_dir():
        return None
    files = sorted(path.glob("*.safetensors"))
    if files:
        return _safetensors_params(files)
    if (path / "config.json").exists():
        import torch
        from transformers import AutoConfig, AutoModelForCausalLM

        cfg = AutoConfig.from_pretrained(path)
        with torch.device("meta"):
            model = AutoModelForCausalLM.from_config(cfg)
        return sum(p.numel() for p in model.parameters())
    return None


def available_memory() -> int:
    """Bytes of host memory available to new allocations."""
    from verl_selfplay.cpu.platform import _memory

    return _memory()[0]


def required_memory(n_params: int, use_ref: bool) -> int:
    """Lower bound on host bytes to train ``n_params`` on CPU (activations not counted).

    >>> required_memory(1_000_000, use_ref=False)
    24000000
    """
    return n_params * (BYTES_ACTOR + BYTES_ROLLOUT + BYTES_SYNC + (BYTES_REF if use_ref else 0))


def check_memory(model_path: str, n_params: int | None, available: int, use_ref: bool) -> None:
    """Refuse a model whose fp32 training state cannot fit in ``available`` bytes.

    >>> check_memory("m", 1_000, available=10**9, use_ref=True)
    >>> check_memory("big", 7_600_000_000, available=20 * 2**30, use_ref=False)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    verl_selfplay.cpu.preflight.PreflightError: actor_rollout_ref.model.path=big has 7.60B parameters: ...
    """
    if n_params is None:
        return
    need = required_memory(n_params, use_ref)
    if need > available:
        size = f"{n_params / 1e9:.2f}B" if n_params >= 1e9 else f"{n_params / 1e6:.1f}M"
        parts = "fp32 weights, gradients and AdamW states, the rollout copy, the weight-sync buffer"
        parts += ", the reference model" if use_ref else ""
        raise PreflightError(
            f"actor_rollout_ref.model.path={model_path} has {size} parameters: training it on CPU needs at least "
            f"{need / 2**30:.1f} GiB ({parts}), but only {available / 2**30:.1f} GiB of memory is available. "
            "Use a smaller model (`python -m verl_selfplay.tiny --out DIR` builds a tiny one) or a GPU machine."
        )


def check_resources(config: Any) -> None:
    """The logical Ray GPUs must cover the trainer processes that ask for them."""
    n_gpus = int(_get(config, "trainer.n_gpus_per_node", 1)) * int(_get(config, "trainer.nnodes", 1))
    ray_gpus = _get(config, "ray_kwargs.ray_init.num_gpus")
    if ray_gpus is not None and float(ray_gpus) < n_gpus:
        raise PreflightError(
            f"ray_kwargs.ray_init.num_gpus={ray_gpus} is less than trainer.n_gpus_per_node * trainer.nnodes = "
            f"{n_gpus}: on CPU, Ray's GPUs are logical slots, one per trainer process"
        )
    device = _get(config, "trainer.device")
    if device not in (None, "cpu"):
        raise PreflightError(f"trainer.device={device} on the CPU backend; set trainer.device=cpu")


def check_config(config: Any, *, has_gpu: bool | None = None, available: int | None = None) -> None:
    """Run every CPU start-up check on a composed verl config; raises :class:`PreflightError`."""
    check_rollout(_get(config, "actor_rollout_ref.rollout.name"), gpu_available() if has_gpu is None else has_gpu)
    check_resources(config)
    model_path = _get(config, "actor_rollout_ref.model.path")
    if model_path:
        use_ref = bool(_get(config, "actor_rollout_ref.actor.use_kl_loss", False)) or bool(
            _get(config, "algorithm.use_kl_in_reward", False)
        )
        check_memory(
            str(model_path),
            count_parameters(model_path),
            available_memory() if available is None else available,
            use_ref,
        )
