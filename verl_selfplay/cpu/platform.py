"""The ``cpu`` verl platform: device ``cpu``, collectives over ``gloo``, Ray's logical ``GPU`` resource.

verl 0.9.1 ships platforms for NVIDIA, AMD and Ascend only; on a machine without an accelerator its
detection falls back to ``nvidia`` and the first ``current_device()`` raises "Torch not compiled with
CUDA enabled" (``verl/plugin/platform/platform_manager.py:110-114``). This class is registered under
the name ``cpu`` through verl's own :class:`PlatformRegistry`; verl selects it when
``VERL_PLATFORM=cpu`` (``platform_manager.py:86-90``). It is never auto-detected.

Ray resources: verl's resource pools always ask for accelerators (``use_gpu=True``,
``verl/single_controller/ray/base.py:210``) and count only ``GPU``/``NPU`` when they check capacity
(``base.py:229-232``), so this platform names Ray's ``GPU`` resource, and Ray is started with
``num_gpus`` as a *logical* resource (one "GPU" per trainer process; see the CPU preset).
"""

from __future__ import annotations

import contextlib
import os
from types import ModuleType
from typing import Any

import torch
from verl.plugin.platform.platform_base import PlatformBase

NAME = "cpu"


def _memory() -> tuple[int, int]:
    """(available, total) bytes of host memory."""
    try:
        import psutil

        vm = psutil.virtual_memory()
        return int(vm.available), int(vm.total)
    except ImportError:  # pragma: no cover - psutil ships with ray
        pages, size = os.sysconf("SC_AVPHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
        return pages * size, os.sysconf("SC_PHYS_PAGES") * size


class _CPUDeviceModule(ModuleType):
    """``torch.cpu`` plus the ``torch.cuda`` calls verl makes on its device module.

    verl calls e.g. ``get_torch_device().empty_cache()`` / ``.mem_get_info()`` / ``.get_rng_state()``
    unconditionally (27 ``empty_cache`` call sites in 0.9.1); ``torch.cpu`` lacks them. Memory
    statistics report host memory; caches are no-ops; RNG calls use torch's CPU generator.
    """

    def __init__(self) -> None:
        super().__init__("verl_selfplay.cpu.device")

    def __getattr__(self, name: str) -> Any:
        return getattr(torch.cpu, name)

    # memory
    def empty_cache(self) -> None:
        """No device cache on CPU."""

    def ipc_collect(self) -> None:
        """No IPC handles on CPU."""

    def mem_get_info(self, device: Any = None) -> tuple[int, int]:
        return _memory()

    def memory_allocated(self, device: Any = None) -> int:
        return 0

    def memory_reserved(self, device: Any = None) -> int:
        return 0

    def max_memory_allocated(self, device: Any = None) -> int:
        return 0

    def max_memory_reserved(self, device: Any = None) -> int:
        return 0

    def reset_peak_memory_stats(self, device: Any = None) -> None:
        """Nothing to reset."""

    def set_per_process_memory_fraction(self, fraction: float, device: Any = None) -> None:
        """Not applicable to host memory."""

    def get_device_name(self, device: Any = None) -> str:
        return "cpu"

    # rng
    def manual_seed(self, seed: int) -> None:
        torch.manual_seed(seed)

    def manual_seed_all(self, seed: int) -> None:
        torch.manual_seed(seed)

    def get_rng_state(self, device: Any = None) -> torch.Tensor:
        return torch.get_rng_state()

    def set_rng_state(self, state: torch.Tensor, device: Any = None) -> None:
        torch.set_rng_state(state)


DEVICE_MODULE = _CPUDeviceModule()


class CPUPlatform(PlatformBase):
    """verl platform for hosts without an accelerator (select with ``VERL_PLATFORM=cpu``)."""

    @property
    def device_name(self) -> str:
        return "cpu"

    @property
    def vendor_name(self) -> str:
        return "cpu"

    @property
    def device_module(self) -> ModuleType:
        return DEVICE_MODULE

    def is_available(self) -> bool:
        return True

    def is_platform_available(self, use_smi_check: bool = False) -> bool:
        # only ever selected explicitly (VERL_PLATFORM=cpu), never auto-detected
        return False

    def current_device(self) -> str:  # type: ignore[override]
        # a string, never an index: verl moves tensors with `.to(get_device_id())` (67 call sites),
        # and an int would mean `cuda:N`
        return "cpu"

    def device_count(self) -> int:
        return 1

    def set_device(self, device_index: int) -> None:
        """Single host device: nothing to select."""

    def synchronize(self, device_index: int | None = None) -> None:
        """CPU ops are synchronous."""

    def manual_seed(self, seed: int) -> None:
        torch.manual_seed(seed)

    def manual_seed_all(self, seed: int) -> None:
        torch.manual_seed(seed)

    def set_allocator_settings(self, settings: str) -> None:
        """No caching allocator on CPU."""

    def empty_cache(self) -> None:
        """No device cache on CPU."""

    def get_device_capability(self, device_index: int = 0) -> tuple[int | None, int | None]:
        return None, None

    def communication_backend_name(self) -> str:
        return "gloo"

    def visible_devices_envvar(self) -> str:
        # Ray sets it for its logical GPUs; CPU torch ignores it
        return "CUDA_VISIBLE_DEVICES"

    @contextlib.contextmanager
    def nvtx_range(self, msg: str):
        yield

    def profiler_start(self) -> None:
        """No device profiler."""

    def profiler_stop(self) -> None:
        """No device profiler."""

    def ray_resource_name(self) -> str:
        return "GPU"

    def ray_noset_envvars(self) -> list[str]:
        return []

    def is_ipc_supported(self) -> bool:
        return False

    def cudart(self) -> Any:
        return None


def register(platform_manager: ModuleType) -> None:
    """Register the ``cpu`` platform in verl's ``PlatformRegistry`` (idempotent).

    Harmless when not selected: it is only chosen by ``VERL_PLATFORM=cpu``.
    """
    if platform_manager.PlatformRegistry.get(NAME) is not CPUPlatform:
        platform_manager.PlatformRegistry.register(platform=NAME)(CPUPlatform)
