"""Registration of verl_selfplay's parts into verl's registries, deferred until verl loads them.

verl imports this plugin on every ``import verl``, in every Ray actor (``verl/__init__.py``,
entry-point group ``verl.plugins``). Importing verl's registries eagerly (reward managers, the v1
trainer, core_algos) costs seconds per process and drags TransferQueue into every worker, so each
registration here runs only when verl itself imports the module holding that registry: at once if it
is already imported, else from a post-import hook on ``sys.meta_path``.

To add a component, append one ``(verl module, "our.module:function")`` line to :data:`REGISTRATIONS`;
the function receives the imported verl module and must be idempotent.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import threading
from types import ModuleType

# (verl module whose import triggers the registration, "our.module:register_function")
REGISTRATIONS: list[tuple[str, str]] = [
    ("verl.experimental.reward_loop.reward_manager", "verl_selfplay.reward:register"),
    ("verl.trainer.ppo.v1", "verl_selfplay.pcl.trainer:register"),
    # behaviour/* metrics in every trainer mode: wraps PPOTrainer._compute_metrics
    ("verl.trainer.ppo.v1.trainer_base", "verl_selfplay.behaviours:register"),
    # Absolute Zero: trainer mode `azr`, estimator `task_relative_reinforce_plus_plus`, agent loop `azr`
    ("verl.trainer.ppo.v1", "verl_selfplay.azr.trainer:register"),
    ("verl.trainer.ppo.core_algos", "verl_selfplay.azr.advantage:register"),
    ("verl.experimental.agent_loop.agent_loop", "verl_selfplay.azr.agent_loop:register"),
    # CPU backend (verl_selfplay.cpu): platform `cpu`, FSDP engine for device cpu, `hf` rollout
    ("verl.plugin.platform.platform_manager", "verl_selfplay.cpu.platform:register"),
    ("verl.utils.distributed", "verl_selfplay.cpu.workarounds:fix_process_group"),
    ("verl.workers.engine.fsdp.transformer_impl", "verl_selfplay.cpu.workarounds:register_fsdp_engine"),
    ("verl.workers.rollout.replica", "verl_selfplay.cpu.workarounds:register_rollout"),
    ("verl.workers.rollout.base", "verl_selfplay.cpu.workarounds:register_rollout_adapter"),
    ("verl.utils.model", "verl_selfplay.cpu.workarounds:fix_valuehead_attention"),
]

_lock = threading.RLock()
_pending: dict[str, list[str]] = {}
_done: set[tuple[str, str]] = set()
# registrations waiting until none of our modules is mid-import: (verl module, target, verl module object)
_deferred: list[tuple[str, str, ModuleType]] = []
OWN_PREFIX = "verl_selfplay."
_NEVER_BLOCKING = ("verl_selfplay", "verl_selfplay.registry")  # they call register_all() while importing


def _initializing(name: str) -> bool:
    module = sys.modules.get(name)
    return module is not None and bool(getattr(getattr(module, "__spec__", None), "_initializing", False))


def _blocking() -> list[str]:
    """Our modules that are mid-import: a registration run now could import one of them half-initialised."""
    return [
        name
        for name in list(sys.modules)
        if name.startswith(OWN_PREFIX) and name not in _NEVER_BLOCKING and _initializing(name)
    ]


def _run(module_name: str, target: str, module: ModuleType, *, ready: bool = False) -> None:
    mod_name, fn_name = target.split(":")
    with _lock:
        if (module_name, target) in _done:
            return
        if not ready and _blocking():
            # One of our modules is mid-import and is what pulled verl's module in (e.g. `import
            # verl_selfplay.azr.trainer` imports verl_selfplay.common.sync_trainer, which imports verl's v1
            # trainer): the registration could import that module half-initialised. Run it once it finished.
            _deferred.append((module_name, target, module))
            return
        _done.add((module_name, target))
    try:
        getattr(importlib.import_module(mod_name), fn_name)(module)
    except Exception as e:  # loud, and naming the line to fix: verl itself only logs plugin errors at DEBUG
        raise RuntimeError(f"verl_selfplay: registration {target!r} (on import of {module_name}) failed: {e!r}") from e


def _flush_deferred(finished: str) -> None:
    """Run the deferred registrations once ``finished`` (just executed) was the last of our modules mid-import."""
    with _lock:
        if not _deferred or [name for name in _blocking() if name != finished]:
            return
        waiting = list(_deferred)
        _deferred.clear()
    for verl_module, target, verl_mod in waiting:  # importlib marks `finished` initialised only after we return
        _run(verl_module, target, verl_mod, ready=True)


class _PostImportFinder(importlib.abc.MetaPathFinder):
    """Wraps the loader of watched modules so that callbacks run right after the module executes.

    Watched are verl's registry modules and our own modules (to flush registrations deferred while one of
    them was importing)."""

    def find_spec(self, fullname, path, target=None):  # noqa: D102
        if fullname not in _pending and not fullname.startswith(OWN_PREFIX):
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        loader = spec.loader
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        exec_module = loader.exec_module

        def exec_and_register(module: ModuleType) -> None:
            exec_module(module)
            for target_ in list(_pending.get(fullname, [])):
                _run(fullname, target_, module)
            if fullname.startswith(OWN_PREFIX):
                _flush_deferred(fullname)

        loader.exec_module = exec_and_register  # type: ignore[method-assign]
        return spec


_finder = _PostImportFinder()


def when_imported(module_name: str, target: str) -> None:
    """Call ``target`` ("pkg.mod:fn") with verl's ``module_name`` once that module is imported."""
    with _lock:
        module = sys.modules.get(module_name)
        if module is None or _initializing(module_name):  # not (fully) imported yet: the hook will run it
            if target not in _pending.setdefault(module_name, []):
                _pending[module_name].append(target)
            if _finder not in sys.meta_path:
                sys.meta_path.insert(0, _finder)
            return
    _run(module_name, target, module)


def register_all() -> None:
    """Arrange every registration in :data:`REGISTRATIONS` (idempotent, imports nothing heavy)."""
    for module_name, target in REGISTRATIONS:
        when_imported(module_name, target)


def registered() -> set[tuple[str, str]]:
    """The (verl module, target) registrations that have run in this process."""
    with _lock:
        return set(_done)
