"""A tripwire for tests and audits: model text must never execute outside the sandbox.

:func:`install` adds a ``sys.addaudithook`` hook to the current process. While armed, it raises ``RuntimeError``
(and appends a line to ``$VERL_SELFPLAY_MODEL_TEXT_GUARD_LOG`` when set) on:

- ``exec``/``eval`` of a code object compiled from a string that defines a function ``f`` (AZR programs are
  functions ``f``; everything of our own and of the libraries we use comes from files);
- a subprocess or ``os.exec*``/``os.system``/``os.posix_spawn`` call whose arguments contain ``def f(``.

The sandbox runs programs in its own fork-server processes, never in the caller, so the hook never fires in a
correct run. ``VERL_SELFPLAY_MODEL_TEXT_GUARD=1`` arms it in every process that imports the plugin (verl imports it
in every Ray actor: the trainer, the agent-loop workers, the reward workers); the end-to-end test runs that way.
Audit hooks cannot be removed: this is for test and audit runs, not production.
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path
from types import CodeType

ENV_VAR = "VERL_SELFPLAY_MODEL_TEXT_GUARD"
LOG_ENV_VAR = "VERL_SELFPLAY_MODEL_TEXT_GUARD_LOG"
MARKER = "def f("
_SPAWN_EVENTS = ("subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn")


class ModelTextGuard:
    """The audit hook (see the module docstring); ``armed`` switches it on and off, ``violations`` lists hits."""

    def __init__(self) -> None:
        self.armed = False
        self.violations: list[str] = []
        self._lock = threading.Lock()
        sys.addaudithook(self._hook)

    @staticmethod
    def _is_model_code(code: CodeType) -> bool:
        return any(
            isinstance(c, CodeType) and c.co_name == "f" and not Path(c.co_filename).exists() for c in code.co_consts
        )

    def _hook(self, event: str, args: tuple) -> None:
        if not self.armed:
            return
        if event == "exec" and args and isinstance(args[0], CodeType) and self._is_model_code(args[0]):
            self._violation(f"exec of model code compiled from {args[0].co_filename}")
        elif event in _SPAWN_EVENTS and MARKER in repr(args):
            self._violation(f"{event} with model text in its arguments")

    def _violation(self, what: str) -> None:
        message = f"model text outside the sandbox (pid {os.getpid()}): {what}"
        with self._lock:
            self.violations.append(what)
        log = os.environ.get(LOG_ENV_VAR)
        if log:
            with open(log, "a") as f:
                f.write(message + "\n")
        raise RuntimeError(message)


_guard: ModelTextGuard | None = None


def install() -> ModelTextGuard:
    """The process's guard (installed once, unarmed)."""
    global _guard
    if _guard is None:
        _guard = ModelTextGuard()
    return _guard


def install_from_env() -> None:
    """Install and arm the guard when ``VERL_SELFPLAY_MODEL_TEXT_GUARD=1`` (called on plugin import)."""
    if os.environ.get(ENV_VAR) == "1":
        install().armed = True
        log = os.environ.get(LOG_ENV_VAR)
        if log:  # one line per armed process, so a run can show where the guard was on
            with open(log, "a") as f:
                f.write(f"armed pid {os.getpid()}: {' '.join(sys.argv)[:200]}\n")
