"""verl finds verl_selfplay through its ``verl.plugins`` entry point, and every registration lands in verl.

verl loads entry points on ``import verl`` and swallows a plugin's import error at DEBUG level
(``verl/__init__.py``), so a broken plugin would be silent: these tests run fresh interpreters, record what
verl logs while loading plugins, and then look our components up in verl's own registries.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap


def _run(code: str) -> dict:
    proc = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_entry_point_is_discovered_and_imports_cleanly():
    out = _run(
        """
        import json, logging, sys
        from importlib.metadata import entry_points
        debug = []
        original = logging.Logger.debug
        def record(self, msg, *args, **kwargs):
            debug.append(str(msg) % args if args else str(msg))
            return original(self, msg, *args, **kwargs)
        logging.Logger.debug = record          # verl reports plugin import errors only here
        import verl
        eps = [(ep.name, ep.value) for ep in entry_points(group="verl.plugins")]
        print(json.dumps({
            "eps": eps,
            "failures": [m for m in debug if "Failed to load plugin" in m],
            "loaded": "verl_selfplay" in sys.modules,
            "heavy": [m for m in ("verl.trainer.ppo.v1", "verl_selfplay.filters.sampler", "verl_selfplay.data")
                      if m in sys.modules],
        }))
        """
    )
    assert ["verl_selfplay", "verl_selfplay"] in out["eps"]
    assert out["failures"] == []
    assert out["loaded"]
    assert out["heavy"] == []  # `import verl` in every Ray actor stays cheap


def test_every_registration_runs_when_verl_loads_its_module():
    out = _run(
        """
        import importlib, json
        import verl                             # loads the plugin through the entry point
        from verl_selfplay.registry import REGISTRATIONS, registered
        errors = {}
        for module, target in REGISTRATIONS:
            try:
                importlib.import_module(module)  # as verl's trainer / workers would
            except Exception as e:
                errors[module] = repr(e)
        from verl.experimental.reward_loop.reward_manager import get_reward_manager_cls
        from verl.utils.import_utils import load_extern_type
        from verl.trainer.ppo.v1.replay_buffer import ReplayBuffer
        sampler = load_extern_type("pkg://verl_selfplay.filters.sampler", "GroupFilterSampler")
        print(json.dumps({
            "expected": [list(r) for r in REGISTRATIONS],
            "ran": sorted(list(r) for r in registered()),
            "errors": errors,
            "selfplay_manager": get_reward_manager_cls("selfplay").__module__,
            "sampler_is_replay_buffer": issubclass(sampler, ReplayBuffer),
        }))
        """
    )
    assert out["errors"] == {}
    assert sorted(out["expected"]) == out["ran"]  # every line of REGISTRATIONS ran without raising
    assert out["selfplay_manager"] == "verl_selfplay.reward"
    assert out["sampler_is_replay_buffer"]


def test_registration_targets_import_first():
    out = _run(
        """
        import importlib, json
        from verl_selfplay.registry import REGISTRATIONS
        for _, target in REGISTRATIONS:           # a user importing our module before verl's registry
            module, function = target.split(":")
            assert callable(getattr(importlib.import_module(module), function)), target
        print(json.dumps({"ok": True}))
        """
    )
    assert out["ok"]
